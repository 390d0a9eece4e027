//! Atoms and dead-stripping.
//!
//! Dead-stripping works on atoms, ld64's unit: with
//! `MH_SUBSECTIONS_VIA_SYMBOLS` (which rustc's objects carry) the compiler
//! promises that code never falls through or refers past a symbol without a
//! relocation, so each section splits at its symbols into blocks that can
//! be kept or dropped on their own. Assembler-temporary labels (`L...`,
//! `.L...`) and `N_ALT_ENTRY` names do not split. An object without the
//! flag keeps whole sections together. An atom is live when the entry
//! symbol is in it, when it is marked no-dead-strip, or when a relocation
//! in a live atom refers into it; everything else is left out. Atom
//! granularity matters for archives of many functions per section, and
//! costs no more than section granularity.

use object::macho;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::model::{Action, Def, Fixup, Object, Target};
use crate::placement;
use crate::resolve::Resolution;

/// An atom, numbered densely in input order (by object, then section,
/// then address), which is also the order of the image: per-atom tables
/// are plain vectors indexed by it.
pub type AtomId = usize;

pub struct AtomInfo {
    pub obj: usize,
    pub section: usize,
    /// The object-address range `[start, end)`.
    pub start: u64,
    pub end: u64,
    /// The atom's fixups: `sections[section].fixups[fixups.0..fixups.1]`.
    fixups: (usize, usize),
}

/// Where a relocation target lies: inside an atom (at an object address in
/// the atom's section) or at a fixed address.
#[derive(Clone, Copy, Debug)]
pub enum Place {
    Atom(AtomId, u64),
    Absolute(u64),
}

pub struct Atoms {
    /// `starts[obj][section]`: object addresses where atoms begin, sorted,
    /// the first being the section's own address.
    starts: Vec<Vec<Vec<u64>>>,
    /// `first[obj][section]`: the id of the section's first atom.
    first: Vec<Vec<AtomId>>,
    pub info: Vec<AtomInfo>,
    /// `symbols[obj][sym]`: where a reference to the symbol lands, `None`
    /// when nothing defines it; decided once per symbol rather than once
    /// per relocation.
    symbols: Vec<Vec<Option<Place>>>,
}

impl Atoms {
    /// One pass over each object's symbols and fixups: linear in the input.
    pub fn new(res: &Resolution<'_>) -> Atoms {
        let objects = &res.objects;
        let starts: Vec<Vec<Vec<u64>>> = objects.par_iter().map(starts_of).collect();
        let mut first = Vec::with_capacity(objects.len());
        let mut info = Vec::new();
        for (obj, object) in objects.iter().enumerate() {
            let mut firsts = Vec::with_capacity(object.sections.len());
            for (section, s) in object.sections.iter().enumerate() {
                firsts.push(info.len());
                let list = &starts[obj][section];
                let mut from = 0;
                for (i, &start) in list.iter().enumerate() {
                    let end = list.get(i + 1).copied().unwrap_or_else(|| s.end());
                    let to = from + s.fixups[from..].partition_point(|f| f.offset < end - s.addr);
                    info.push(AtomInfo { obj, section, start, end, fixups: (from, to) });
                    from = to;
                }
            }
            first.push(firsts);
        }
        let mut atoms = Atoms { starts, first, info, symbols: Vec::new() };
        atoms.symbols = objects
            .par_iter()
            .enumerate()
            .map(|(obj, object)| {
                (0..object.symbols.len())
                    .map(|sym| {
                        let def = res.definition(obj, sym)?;
                        match res.objects[def.obj].symbols[def.sym].def {
                            Def::Section { section, value } => {
                                Some(Place::Atom(atoms.find(def.obj, section, value)?, value))
                            }
                            Def::Absolute(value) => Some(Place::Absolute(value)),
                            _ => None,
                        }
                    })
                    .collect()
            })
            .collect();
        atoms
    }

    /// The atom holding object address `addr`; the section's end belongs to
    /// its last atom.
    pub fn find(&self, obj: usize, section: usize, addr: u64) -> Option<AtomId> {
        let starts = self.starts.get(obj)?.get(section)?;
        let index = starts.partition_point(|&s| s <= addr).checked_sub(1)?;
        Some(self.first[obj][section] + index)
    }

    /// The object-address range `[start, end)` of an atom.
    pub fn range(&self, id: AtomId) -> (u64, u64) {
        (self.info[id].start, self.info[id].end)
    }

    /// The fixups that lie in an atom.
    pub fn fixups<'o>(&self, objects: &'o [Object<'_>], id: AtomId) -> &'o [Fixup] {
        let a = &self.info[id];
        &objects[a.obj].sections[a.section].fixups[a.fixups.0..a.fixups.1]
    }

    pub fn len(&self) -> usize {
        self.info.len()
    }

    pub fn is_empty(&self) -> bool {
        self.info.is_empty()
    }

    /// Where `objects[obj].symbols[sym]` lands, the symbol resolved.
    pub fn symbol(&self, obj: usize, sym: usize) -> Option<Place> {
        *self.symbols.get(obj)?.get(sym)?
    }
}

fn starts_of(o: &Object<'_>) -> Vec<Vec<u64>> {
    let mut starts: Vec<Vec<u64>> = o.sections.iter().map(|s| vec![s.addr]).collect();
    if o.subsections_via_symbols {
        for sym in &o.symbols {
            let Def::Section { section, value } = sym.def else { continue };
            let s = &o.sections[section];
            if value > s.addr && value < s.end() && splits(sym.name) && !sym.alt_entry {
                starts[section].push(value);
            }
        }
    }
    for list in &mut starts {
        list.sort_unstable();
        list.dedup();
    }
    starts
}

fn splits(name: &[u8]) -> bool {
    !(name.is_empty() || name.starts_with(b"L") || name.starts_with(b".L"))
}

/// Where a fixup's target is, and the symbol or section it names for errors.
pub fn place(res: &Resolution<'_>, atoms: &Atoms, obj: usize, target: &Target) -> Result<(Place, i64)> {
    match *target {
        Target::Symbol { index, addend } => match atoms.symbol(obj, index) {
            Some(place) => Ok((place, addend)),
            None => {
                let object = &res.objects[obj];
                Err(Error::new(&object.name, format!("symbol {} is undefined", object.symbols[index].display())))
            }
        },
        Target::Local { section, anchor, addend } => {
            let id = atoms.find(obj, section, anchor).ok_or_else(|| {
                Error::new(&res.objects[obj].name, format!("relocation target {anchor:#x} is in no atom"))
            })?;
            Ok((Place::Atom(id, anchor), addend))
        }
    }
}

/// The first symbol naming an atom, for errors about it.
fn atom_name(res: &Resolution<'_>, atoms: &Atoms, id: AtomId) -> Option<String> {
    let a = &atoms.info[id];
    let (start, end) = (a.start, a.end);
    res.objects[a.obj]
        .symbols
        .iter()
        .filter(|s| matches!(s.def, Def::Section { section, value } if section == a.section && value >= start && (value < end || start == end)))
        .min_by_key(|s| match s.def {
            Def::Section { value, .. } => value,
            _ => u64::MAX,
        })
        .map(|s| s.display())
}

/// Which atoms are in the image, indexed by [`AtomId`].
pub fn live(res: &Resolution<'_>, atoms: &Atoms, entry: &str, dead_strip: bool, image: &str) -> Result<Vec<bool>> {
    let mut roots = Vec::new();
    let Some(start) = res.global(entry.as_bytes()) else {
        return Err(Error::new(image, format!("entry symbol {entry} is not defined by any input")));
    };
    match res.objects[start.obj].symbols[start.sym].def {
        Def::Section { section, value } => roots.extend(atoms.find(start.obj, section, value)),
        _ => return Err(Error::new(&res.objects[start.obj].name, format!("entry symbol {entry} is not in a section"))),
    }
    for (obj, object) in res.objects.iter().enumerate() {
        for (section, s) in object.sections.iter().enumerate() {
            if s.dropped {
                continue;
            }
            if !dead_strip || s.flags.contains(macho::S_ATTR_NO_DEAD_STRIP) {
                let first = atoms.first[obj][section];
                let ids = first..first + atoms.starts[obj][section].len();
                roots.extend(ids.filter(|&id| atoms.info[id].start < atoms.info[id].end));
            }
        }
        for sym in &object.symbols {
            if let (true, Def::Section { section, value }) = (sym.no_dead_strip, sym.def) {
                roots.extend(atoms.find(obj, section, value));
            }
        }
    }

    let mut live = vec![false; atoms.len()];
    // Whether each section may be in the image is asked once, when its
    // first atom turns out live.
    let mut checked: Vec<Vec<bool>> = res.objects.iter().map(|o| vec![false; o.sections.len()]).collect();
    while let Some(id) = roots.pop() {
        if std::mem::replace(&mut live[id], true) {
            continue;
        }
        let a = &atoms.info[id];
        let object = &res.objects[a.obj];
        let section = &object.sections[a.section];
        if !std::mem::replace(&mut checked[a.obj][a.section], true) {
            let placement = if section.dropped { Err("is dropped by machlink".to_string()) } else { placement::of(section).map(drop) };
            if let Err(why) = placement {
                let what = match atom_name(res, atoms, id) {
                    Some(symbol) => format!("section {}: symbol {symbol} is needed, but the section {why}", section.full_name()),
                    None => format!("section {} is needed, but it {why}", section.full_name()),
                };
                return Err(Error::new(&object.name, what));
            }
        }
        for fixup in atoms.fixups(&res.objects, id) {
            let at = |what: String| Error::new(&object.name, format!("{}+{:#x}: {what}", section.full_name(), fixup.offset));
            if fixup.offset + u64::from(fixup.size) > a.end - section.addr {
                return Err(at("relocation crosses into the next symbol's block".into()));
            }
            let (target, minus) = match &fixup.action {
                Action::Unsupported(what) => return Err(at(what.clone())),
                Action::Apply { target, minus, .. } => (target, minus),
            };
            for t in std::iter::once(target).chain(minus.iter()) {
                if let (Place::Atom(atom, _), _) = place(res, atoms, a.obj, t)?
                    && !live[atom]
                {
                    roots.push(atom);
                }
            }
        }
    }
    Ok(live)
}
