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

use std::collections::BTreeSet;

use object::macho;

use crate::error::{Error, Result};
use crate::model::{Action, Def, Fixup, Object, Section, Target};
use crate::placement;
use crate::resolve::Resolution;

/// Ordered by object, then section, then address: the input order, which
/// is also the order of the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AtomId {
    pub obj: usize,
    pub section: usize,
    pub index: usize,
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
}

impl Atoms {
    /// One pass over each object's symbols: linear in the input.
    pub fn new(objects: &[Object<'_>]) -> Atoms {
        let starts = objects
            .iter()
            .map(|o| {
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
            })
            .collect();
        Atoms { starts }
    }

    /// The atom holding object address `addr`; the section's end belongs to
    /// its last atom.
    pub fn find(&self, obj: usize, section: usize, addr: u64) -> Option<usize> {
        let starts = self.starts.get(obj)?.get(section)?;
        starts.partition_point(|&s| s <= addr).checked_sub(1)
    }

    /// The object-address range `[start, end)` of an atom.
    pub fn range(&self, objects: &[Object<'_>], id: AtomId) -> (u64, u64) {
        let starts = &self.starts[id.obj][id.section];
        let end = starts.get(id.index + 1).copied().unwrap_or_else(|| objects[id.obj].sections[id.section].end());
        (starts[id.index], end)
    }

    pub fn count(&self, obj: usize, section: usize) -> usize {
        self.starts[obj][section].len()
    }
}

fn splits(name: &[u8]) -> bool {
    !(name.is_empty() || name.starts_with(b"L") || name.starts_with(b".L"))
}

/// Where a fixup's target is, and the symbol or section it names for errors.
pub fn place(res: &Resolution<'_>, atoms: &Atoms, obj: usize, target: &Target) -> Result<(Place, i64)> {
    let object = &res.objects[obj];
    match *target {
        Target::Symbol { index, addend } => {
            let symbol = &object.symbols[index];
            let Some(def) = res.definition(obj, index) else {
                return Err(Error::new(&object.name, format!("symbol {} is undefined", symbol.display())));
            };
            let defining = &res.objects[def.obj];
            match defining.symbols[def.sym].def {
                Def::Section { section, value } => {
                    let index = atoms.find(def.obj, section, value).ok_or_else(|| {
                        Error::new(&defining.name, format!("symbol {} is in no atom", symbol.display()))
                    })?;
                    Ok((Place::Atom(AtomId { obj: def.obj, section, index }, value), addend))
                }
                Def::Absolute(value) => Ok((Place::Absolute(value), addend)),
                _ => Err(Error::new(&object.name, format!("symbol {} is undefined", symbol.display()))),
            }
        }
        Target::Local { section, anchor, addend } => {
            let index = atoms
                .find(obj, section, anchor)
                .ok_or_else(|| Error::new(&object.name, format!("relocation target {anchor:#x} is in no atom")))?;
            Ok((Place::Atom(AtomId { obj, section, index }, anchor), addend))
        }
    }
}

/// The fixups of a section that lie in `[start, end)` (object addresses),
/// found by binary search in the sorted list.
pub fn fixups_in<'f>(section: &'f Section<'_>, start: u64, end: u64) -> &'f [Fixup] {
    let (lo, hi) = (start - section.addr, end - section.addr);
    let from = section.fixups.partition_point(|f| f.offset < lo);
    let to = section.fixups.partition_point(|f| f.offset < hi);
    &section.fixups[from..to.max(from)]
}

/// The first symbol naming an atom, for errors about it.
fn atom_name(res: &Resolution<'_>, atoms: &Atoms, id: AtomId) -> Option<String> {
    let (start, end) = atoms.range(&res.objects, id);
    res.objects[id.obj]
        .symbols
        .iter()
        .filter(|s| matches!(s.def, Def::Section { section, value } if section == id.section && value >= start && (value < end || start == end)))
        .min_by_key(|s| match s.def {
            Def::Section { value, .. } => value,
            _ => u64::MAX,
        })
        .map(|s| s.display())
}

pub fn live(res: &Resolution<'_>, atoms: &Atoms, entry: &str, dead_strip: bool, image: &str) -> Result<BTreeSet<AtomId>> {
    let mut roots = Vec::new();
    let Some(start) = res.global(entry.as_bytes()) else {
        return Err(Error::new(image, format!("entry symbol {entry} is not defined by any input")));
    };
    match res.objects[start.obj].symbols[start.sym].def {
        Def::Section { section, value } => {
            if let Some(index) = atoms.find(start.obj, section, value) {
                roots.push(AtomId { obj: start.obj, section, index });
            }
        }
        _ => return Err(Error::new(&res.objects[start.obj].name, format!("entry symbol {entry} is not in a section"))),
    }
    for (obj, object) in res.objects.iter().enumerate() {
        for (section, s) in object.sections.iter().enumerate() {
            if s.dropped {
                continue;
            }
            let all = !dead_strip || s.flags.contains(macho::S_ATTR_NO_DEAD_STRIP);
            for index in 0..atoms.count(obj, section) {
                let id = AtomId { obj, section, index };
                let (start, end) = atoms.range(&res.objects, id);
                if all && start < end {
                    roots.push(id);
                }
            }
        }
        for sym in &object.symbols {
            if let (true, Def::Section { section, value }) = (sym.no_dead_strip, sym.def)
                && let Some(index) = atoms.find(obj, section, value)
            {
                roots.push(AtomId { obj, section, index });
            }
        }
    }

    let mut live = BTreeSet::new();
    while let Some(id) = roots.pop() {
        if !live.insert(id) {
            continue;
        }
        let object = &res.objects[id.obj];
        let section = &object.sections[id.section];
        let placement = if section.dropped { Err("is dropped by machlink".to_string()) } else { placement::of(section) };
        if let Err(why) = placement {
            let what = match atom_name(res, atoms, id) {
                Some(symbol) => format!("section {}: symbol {symbol} is needed, but the section {why}", section.full_name()),
                None => format!("section {} is needed, but it {why}", section.full_name()),
            };
            return Err(Error::new(&object.name, what));
        }
        let (start, end) = atoms.range(&res.objects, id);
        for fixup in fixups_in(section, start, end) {
            let at = |what: String| Error::new(&object.name, format!("{}+{:#x}: {what}", section.full_name(), fixup.offset));
            if fixup.offset + u64::from(fixup.size) > end - section.addr {
                return Err(at("relocation crosses into the next symbol's block".into()));
            }
            let (target, minus) = match &fixup.action {
                Action::Unsupported(what) => return Err(at(what.clone())),
                Action::Apply { target, minus, .. } => (target, minus),
            };
            for t in std::iter::once(target).chain(minus.iter()) {
                if let (Place::Atom(atom, _), _) = place(res, atoms, id.obj, t)? {
                    roots.push(atom);
                }
            }
        }
    }
    Ok(live)
}
