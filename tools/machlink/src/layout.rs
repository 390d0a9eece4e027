//! Addresses: where each live atom, each output section and the GOT go.
//!
//! `__TEXT` maps the file from offset 0: the Mach-O header and load
//! commands first (XNU's `parse_machfile` reads them from there), then the
//! code and read-only sections. `__DATA`, only when some input needs it,
//! starts at the next page, in the file and in memory alike: its
//! initialised sections are file bytes, its zero-fill sections come last
//! and are memory only (`vmsize > filesize`). So for every byte the file
//! holds, virtual address = `base` + file offset, and a section's
//! `offset` here is both. Where the symbol table goes is the writer's
//! business: nothing maps it.

use std::collections::{BTreeSet, HashMap};

use object::macho;

use crate::arch::{Arch, PAGE_SIZE};
use crate::atoms::{self, AtomId, Atoms, Place};
use crate::error::{Error, Result};
use crate::format::{self, align_up};
use crate::model::{Action, Def, Target, Via};
use crate::placement::{self, Placement, Segment};
use crate::resolve::{Resolution, SymRef};

pub struct OutSection {
    pub placement: Placement,
    /// The type, and the attributes of the inputs merged.
    pub flags: macho::SectionFlags,
    pub align: u32,
    /// From `base`: the virtual address less `base`, and for a section
    /// that is not zero-fill, also its file offset.
    pub offset: u64,
    pub size: u64,
}

/// `__DATA`'s extent, from `base` (and in the file).
pub struct DataSegment {
    pub offset: u64,
    pub file_size: u64,
    pub vm_size: u64,
}

/// The 8-byte slots of the GOT, one per target, in first-use order.
#[derive(Default)]
pub struct Got {
    pub section: Option<usize>,
    pub slots: Vec<SymRef>,
    index: HashMap<SymRef, usize>,
}

impl Got {
    pub fn slot(&self, target: SymRef) -> Option<usize> {
        self.index.get(&target).copied()
    }
}

pub struct Layout {
    pub arch: Arch,
    /// Virtual address of file offset 0, i.e. of `__TEXT`.
    pub base: u64,
    /// In load-command order: `__TEXT`'s sections, then `__DATA`'s.
    pub sections: Vec<OutSection>,
    /// The live atoms of each output section, in image order.
    pub members: Vec<Vec<AtomId>>,
    /// Offset (from `base`) and output section of every live atom.
    pub atoms: HashMap<AtomId, (u64, usize)>,
    pub got: Got,
    /// Where `__TEXT`'s sections end.
    pub text_end: u64,
    pub data: Option<DataSegment>,
    /// Where the bytes the segments map end in the file.
    pub file_end: u64,
    pub entry: u64,
}

impl Layout {
    pub fn text_sections(&self) -> usize {
        self.sections.iter().filter(|s| s.placement.segment == Segment::Text).count()
    }
}

/// Output sections in order, each with its live atoms. `__TEXT,__text`
/// comes first, as ld64 orders it; then the others in the order the inputs
/// first mention them, `__DATA`'s sorted by rank.
fn group(res: &Resolution<'_>, live: &BTreeSet<AtomId>) -> Result<(Vec<OutSection>, Vec<Vec<AtomId>>)> {
    let mut sections: Vec<OutSection> = Vec::new();
    let mut members: Vec<Vec<AtomId>> = Vec::new();
    let mut by_name: HashMap<(String, String), usize> = HashMap::new();
    for &id in live {
        let object = &res.objects[id.obj];
        let s = &object.sections[id.section];
        let placement = placement::of(s).map_err(|why| Error::new(&object.name, format!("section {} {why}", s.full_name())))?;
        let key = (placement.segname.clone(), placement.sectname.clone());
        let out = *by_name.entry(key).or_insert_with(|| {
            sections.push(OutSection {
                flags: macho::SectionFlags(0).with_type(placement.typ),
                placement: placement.clone(),
                align: 0,
                offset: 0,
                size: 0,
            });
            members.push(Vec::new());
            sections.len() - 1
        });
        // Inputs of one name must agree on where their bytes are: a
        // zero-fill input has none to copy, and the bytes of another would
        // be lost in a zero-fill output.
        let first = &sections[out].placement;
        if first.segment != placement.segment || first.is_zerofill() != placement.is_zerofill() {
            return Err(Error::new(&object.name, format!("section {} is zero-fill in one input and not in another", s.full_name())));
        }
        members[out].push(id);
        // Attributes merge as ld64 merges them; the relocation bits go,
        // since the image carries no relocations.
        let attrs = s.flags.0 & macho::SECTION_ATTRIBUTES & !(macho::S_ATTR_EXT_RELOC.0 | macho::S_ATTR_LOC_RELOC.0);
        sections[out].flags.0 |= attrs;
        sections[out].align = sections[out].align.max(s.align);
    }
    let mut grouped: Vec<(OutSection, Vec<AtomId>)> = sections.into_iter().zip(members).collect();
    // Stable: ties keep first-mention order.
    grouped.sort_by_key(|(s, _)| {
        let p = &s.placement;
        (p.segment, !(p.segname == "__TEXT" && p.sectname == "__text"), p.rank)
    });
    Ok(grouped.into_iter().unzip())
}

/// How a GOT reference is finally made. ld64 turns a GOT load into `leaq`
/// only for a target in the image's sections; an absolute symbol keeps its
/// slot (`gotFixup`, src/ld/passes/got.cpp), since its address need not be
/// within reach of a 32-bit displacement.
pub fn effective_via(res: &Resolution<'_>, obj: usize, target: &Target, via: Via) -> Via {
    if via != Via::GotLoadAsLea {
        return via;
    }
    let absolute = match *target {
        Target::Symbol { index, .. } => {
            res.definition(obj, index).is_some_and(|d| matches!(res.objects[d.obj].symbols[d.sym].def, Def::Absolute(_)))
        }
        Target::Local { .. } => false,
    };
    if absolute { Via::Got } else { via }
}

/// The targets of live `GOT` references, in first-use order.
fn got_slots(res: &Resolution<'_>, atoms: &Atoms, members: &[Vec<AtomId>]) -> Result<Got> {
    let mut got = Got::default();
    for &id in members.iter().flatten() {
        let object = &res.objects[id.obj];
        let section = &object.sections[id.section];
        let (start, end) = atoms.range(&res.objects, id);
        for fixup in atoms::fixups_in(section, start, end) {
            let Action::Apply { target, via, .. } = &fixup.action else { continue };
            let Target::Symbol { index, .. } = *target else { continue };
            if effective_via(res, id.obj, target, *via) != Via::Got {
                continue;
            }
            let def = res.definition(id.obj, index).ok_or_else(|| {
                Error::new(&object.name, format!("symbol {} is undefined", object.symbols[index].display()))
            })?;
            if !got.index.contains_key(&def) {
                got.index.insert(def, got.slots.len());
                got.slots.push(def);
            }
        }
    }
    Ok(got)
}

pub fn layout(res: &Resolution<'_>, atoms: &Atoms, live: &BTreeSet<AtomId>, entry: &str, image: &str) -> Result<Layout> {
    let arch = res.arch;
    let (mut sections, mut members) = group(res, live)?;
    let mut got = got_slots(res, atoms, &members)?;
    if !got.slots.is_empty() {
        let placement = placement::got();
        let at = sections.iter().position(|s| (s.placement.segment, s.placement.rank) > (Segment::Data, 0)).unwrap_or(sections.len());
        sections.insert(
            at,
            OutSection { flags: macho::SectionFlags(0).with_type(placement.typ), placement, align: 3, offset: 0, size: 8 * got.slots.len() as u64 },
        );
        members.insert(at, Vec::new());
        got.section = Some(at);
    }
    let text = sections.iter().filter(|s| s.placement.segment == Segment::Text).count();
    let data = sections.len() - text;
    if sections.len() > usize::from(macho::MAX_SECT) {
        return Err(Error::new(image, "more than 255 output sections"));
    }

    let base = arch.page_zero_size();
    // Sizes come from the inputs (a zero-fill section's from its header
    // alone): every step is checked against the address space, so a
    // hostile size is an error, never an overflow.
    let limit = arch.max_image();
    let too_large = || Error::new(image, "image too large");
    let grow = |cursor: u64, by: u64| cursor.checked_add(by).filter(|&c| c <= limit).ok_or_else(too_large);
    let mut cursor = format::commands_end(arch, text, data);
    let mut placed = HashMap::with_capacity(live.len());
    let mut text_end = cursor;
    let mut data_start = None;
    let mut file_end = cursor;
    for (out, ids) in members.iter().enumerate() {
        if sections[out].placement.segment == Segment::Data && data_start.is_none() {
            text_end = cursor;
            cursor = grow(align_up(cursor, PAGE_SIZE), 0)?;
            data_start = Some(cursor);
        }
        cursor = grow(align_up(cursor, 1 << sections[out].align), 0)?;
        sections[out].offset = cursor;
        for &id in ids {
            let s = &res.objects[id.obj].sections[id.section];
            let (start, end) = atoms.range(&res.objects, id);
            // Keep the atom's position modulo its section's alignment, so an
            // atom that was 16-aligned in its object is 16-aligned here.
            let align = 1u64 << s.align;
            let want = (start - s.addr) % align;
            cursor = grow(cursor, (want + align - cursor % align) % align)?;
            placed.insert(id, (cursor, out));
            cursor = grow(cursor, end - start).map_err(|_| {
                let object = &res.objects[id.obj];
                let what = format!("section {}: {:#x} bytes do not fit in the image's address space", s.full_name(), end - start);
                Error::new(&object.name, what)
            })?;
        }
        if members[out].is_empty() {
            cursor = grow(cursor, sections[out].size)?;
        }
        sections[out].size = cursor - sections[out].offset;
        if !sections[out].placement.is_zerofill() {
            file_end = cursor;
        }
    }
    let data = match data_start {
        None => {
            text_end = cursor;
            None
        }
        Some(offset) => {
            let file_size = if file_end > offset { align_up(file_end - offset, PAGE_SIZE) } else { 0 };
            file_end = offset + file_size;
            Some(DataSegment { offset, file_size, vm_size: align_up(cursor - offset, PAGE_SIZE) })
        }
    };

    if grow(cursor, 0).is_err() || file_end > u64::from(u32::MAX) {
        return Err(too_large());
    }
    let mut layout = Layout { arch, base, sections, members, atoms: placed, got, text_end, data, file_end, entry: 0 };
    let entry_place = res.global(entry.as_bytes()).and_then(|d| match res.objects[d.obj].symbols[d.sym].def {
        Def::Section { section, value } => {
            atoms.find(d.obj, section, value).map(|index| Place::Atom(AtomId { obj: d.obj, section, index }, value))
        }
        _ => None,
    });
    let entry_address = entry_place.and_then(|p| layout.address(res, atoms, p, 0));
    layout.entry = entry_address
        .and_then(|a| u64::try_from(a).ok())
        .ok_or_else(|| Error::new(image, format!("entry symbol {entry} is not in the image")))?;
    Ok(layout)
}

impl Layout {
    /// Final virtual address of a place plus an addend; `None` for a place
    /// in an atom that is not in the image.
    pub fn address(&self, res: &Resolution<'_>, atoms: &Atoms, place: Place, addend: i64) -> Option<i128> {
        let base = match place {
            Place::Absolute(value) => i128::from(value),
            Place::Atom(id, addr) => {
                let (offset, _) = *self.atoms.get(&id)?;
                let (start, _) = atoms.range(&res.objects, id);
                i128::from(self.base) + i128::from(offset) + i128::from(addr) - i128::from(start)
            }
        };
        Some(base + i128::from(addend))
    }

    /// The virtual address of GOT slot `slot`.
    pub fn got_slot_address(&self, slot: usize) -> Option<u64> {
        let section = &self.sections[self.got.section?];
        Some(self.base + section.offset + 8 * slot as u64)
    }
}
