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

use std::ops::Range;

use object::macho;
use rustc_hash::FxHashMap;

use crate::arch::{Arch, PAGE_SIZE};
use crate::atoms::{AtomId, Atoms, Place};
use crate::error::{Error, Result};
use crate::format::align_up;
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

/// A segment after `__TEXT`: `__DATA`, or one the inputs named. Its
/// extent is from `base` and in the file alike.
pub struct OutSegment {
    pub name: String,
    pub prot: macho::VmProt,
    pub offset: u64,
    pub file_size: u64,
    pub vm_size: u64,
    /// Its sections, in `Layout::sections`.
    pub sections: Range<usize>,
}

/// The 8-byte slots of the GOT, one per target, in first-use order.
#[derive(Default)]
pub struct Got {
    pub section: Option<usize>,
    pub slots: Vec<SymRef>,
    index: FxHashMap<SymRef, usize>,
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
    /// In load-command order: `__TEXT`'s sections, then each other
    /// segment's.
    pub sections: Vec<OutSection>,
    /// The live atoms of each output section, in image order.
    pub members: Vec<Vec<AtomId>>,
    /// Offset (from `base`) and output section of each atom in the image,
    /// indexed by [`AtomId`].
    pub atoms: Vec<Option<(u64, usize)>>,
    pub got: Got,
    /// How many of `sections` are `__TEXT`'s.
    pub text_sections: usize,
    /// The segments after `__TEXT`, in image order.
    pub segments: Vec<OutSegment>,
    /// Where the bytes the segments map end in the file.
    pub file_end: u64,
    pub entry: u64,
}

/// Output sections in order, each with its live atoms. `__TEXT,__text`
/// comes first, as ld64 orders it; then the others in the order the inputs
/// first mention them, each segment's sorted by rank, segments the inputs
/// name after `__DATA` in the order they first appear. A section's
/// placement is decided once, not once per atom.
fn group(res: &Resolution<'_>, atoms: &Atoms, live: &[bool]) -> Result<(Vec<OutSection>, Vec<Vec<AtomId>>)> {
    let mut sections: Vec<OutSection> = Vec::new();
    let mut members: Vec<Vec<AtomId>> = Vec::new();
    let mut by_name: FxHashMap<(String, String), usize> = FxHashMap::default();
    let mut custom_order: Vec<String> = Vec::new();
    let mut current: Option<((usize, usize), usize)> = None;
    for (id, _) in live.iter().enumerate().filter(|(_, l)| **l) {
        let a = &atoms.info[id];
        let out = match current {
            Some((key, out)) if key == (a.obj, a.section) => out,
            _ => {
                let object = &res.objects[a.obj];
                let s = &object.sections[a.section];
                let placement =
                    placement::of(s).map_err(|why| Error::new(&object.name, format!("section {} {why}", s.full_name())))?;
                if placement.segment == Segment::Custom && !custom_order.contains(&placement.segname) {
                    custom_order.push(placement.segname.clone());
                }
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
                // zero-fill input has none to copy, and the bytes of another
                // would be lost in a zero-fill output.
                let first = &sections[out].placement;
                if first.segment != placement.segment || first.is_zerofill() != placement.is_zerofill() {
                    return Err(Error::new(&object.name, format!("section {} is zero-fill in one input and not in another", s.full_name())));
                }
                // Attributes merge as ld64 merges them; the relocation bits
                // go, since the image carries no relocations.
                let attrs = s.flags.0 & macho::SECTION_ATTRIBUTES & !(macho::S_ATTR_EXT_RELOC.0 | macho::S_ATTR_LOC_RELOC.0);
                sections[out].flags.0 |= attrs;
                sections[out].align = sections[out].align.max(s.align);
                current = Some(((a.obj, a.section), out));
                out
            }
        };
        members[out].push(id);
    }
    let mut grouped: Vec<(OutSection, Vec<AtomId>)> = sections.into_iter().zip(members).collect();
    // Stable: ties keep first-mention order.
    grouped.sort_by_key(|(s, _)| {
        let p = &s.placement;
        let custom = custom_order.iter().position(|n| *n == p.segname).filter(|_| p.segment == Segment::Custom);
        (p.segment, custom, !(p.segname == "__TEXT" && p.sectname == "__text"), p.rank)
    });
    Ok(grouped.into_iter().unzip())
}

/// How a GOT reference is finally made. ld64 turns a GOT load into `leaq`
/// only for a target in the image's sections; an absolute symbol keeps its
/// slot (`gotFixup`, src/ld/passes/got.cpp), since its address need not be
/// within reach of a 32-bit displacement.
pub fn effective_via(atoms: &Atoms, obj: usize, target: &Target, via: Via) -> Via {
    if via != Via::GotLoadAsLea {
        return via;
    }
    let absolute = match *target {
        Target::Symbol { index, .. } => matches!(atoms.symbol(obj, index), Some(Place::Absolute(_))),
        Target::Local { .. } => false,
    };
    if absolute { Via::Got } else { via }
}

/// The targets of live `GOT` references, in first-use order.
fn got_slots(res: &Resolution<'_>, atoms: &Atoms, members: &[Vec<AtomId>]) -> Result<Got> {
    let mut got = Got::default();
    for &id in members.iter().flatten() {
        let obj = atoms.info[id].obj;
        for fixup in atoms.fixups(&res.objects, id) {
            let Action::Apply { target, via, .. } = &fixup.action else { continue };
            let Target::Symbol { index, .. } = *target else { continue };
            if effective_via(atoms, obj, target, *via) != Via::Got {
                continue;
            }
            let def = res.definition(obj, index).ok_or_else(|| {
                let object = &res.objects[obj];
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

/// The name and protection of the segment a placement goes to. A segment
/// an input names is rw-, ld64's default for any segment but `__TEXT`
/// (`Options::initialSegProtection`, src/ld/Options.cpp).
fn segment_of(p: &Placement) -> (&str, macho::VmProt) {
    let rw = macho::VmProt(macho::VM_PROT_READ.0 | macho::VM_PROT_WRITE.0);
    match p.segment {
        Segment::Text => ("__TEXT", macho::VmProt(macho::VM_PROT_READ.0 | macho::VM_PROT_EXECUTE.0)),
        Segment::Data => ("__DATA", rw),
        Segment::Custom => (&p.segname, rw),
    }
}

pub fn layout(res: &Resolution<'_>, atoms: &Atoms, live: &[bool], entry: &str, image: &str) -> Result<Layout> {
    let arch = res.arch;
    let (mut sections, mut members) = group(res, atoms, live)?;
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
    if sections.len() > usize::from(macho::MAX_SECT) {
        return Err(Error::new(image, "more than 255 output sections"));
    }
    let text_sections = sections.iter().filter(|s| s.placement.segment == Segment::Text).count();
    // Segments after __TEXT: (name, protection, first section), each
    // section run with one segment name.
    let mut starts: Vec<(String, macho::VmProt, usize)> = Vec::new();
    for (i, s) in sections.iter().enumerate().skip(text_sections) {
        let (name, prot) = segment_of(&s.placement);
        if starts.last().is_none_or(|(last, _, _)| last != name) {
            starts.push((name.to_string(), prot, i));
        }
    }
    let counts: Vec<usize> = std::iter::once(text_sections)
        .chain(starts.iter().enumerate().map(|(k, (_, _, first))| starts.get(k + 1).map_or(sections.len(), |n| n.2) - first))
        .collect();

    let base = arch.page_zero_size();
    // Sizes come from the inputs (a zero-fill section's from its header
    // alone): every step is checked against the address space, so a
    // hostile size is an error, never an overflow.
    let limit = arch.max_image();
    let too_large = || Error::new(image, "image too large");
    let grow = |cursor: u64, by: u64| cursor.checked_add(by).filter(|&c| c <= limit).ok_or_else(too_large);
    // Alignment is of the address, not of the offset from `base`: they
    // differ above a page on i386, whose `base` is one page.
    let align_to = |cursor: u64, align: u64| grow(align_up(base + cursor, align) - base, 0);
    let mut cursor = crate::format::width(arch).commands_end(&counts);
    let mut placed = vec![None; atoms.len()];
    let mut segments: Vec<OutSegment> = Vec::new();
    let mut file_end = cursor;
    for (out, ids) in members.iter().enumerate() {
        if let Some(k) = starts.iter().position(|(_, _, first)| *first == out) {
            cursor = align_to(cursor, PAGE_SIZE)?;
            let end = starts.get(k + 1).map_or(sections.len(), |n| n.2);
            let (name, prot, _) = &starts[k];
            segments.push(OutSegment { name: name.clone(), prot: *prot, offset: cursor, file_size: 0, vm_size: 0, sections: out..end });
        }
        cursor = align_to(cursor, 1 << sections[out].align)?;
        sections[out].offset = cursor;
        for &id in ids {
            let a = &atoms.info[id];
            let s = &res.objects[a.obj].sections[a.section];
            // Keep the atom's position modulo its section's alignment, so an
            // atom that was 16-aligned in its object is 16-aligned here.
            let align = 1u64 << s.align;
            let want = (a.start - s.addr) % align;
            let at = (base + cursor) % align;
            cursor = grow(cursor, (want + align - at) % align)?;
            placed[id] = Some((cursor, out));
            cursor = grow(cursor, a.end - a.start).map_err(|_| {
                let object = &res.objects[a.obj];
                let what = format!("section {}: {:#x} bytes do not fit in the image's address space", s.full_name(), a.end - a.start);
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
        if let Some(segment) = segments.last_mut().filter(|g| g.sections.end == out + 1) {
            // The segment's file bytes end at its last initialised byte,
            // in whole pages; its zero-fill tail is memory only.
            let file = file_end.saturating_sub(segment.offset);
            segment.file_size = if file > 0 { align_up(file, PAGE_SIZE) } else { 0 };
            segment.vm_size = align_up(cursor - segment.offset, PAGE_SIZE);
            file_end = segment.offset + segment.file_size;
            cursor = segment.offset + segment.vm_size;
        }
    }
    if grow(cursor, 0).is_err() || file_end > u64::from(u32::MAX) {
        return Err(too_large());
    }
    let mut layout = Layout { arch, base, sections, members, atoms: placed, got, text_sections, segments, file_end, entry: 0 };
    layout.entry = layout.entry_address(res, atoms, entry, image)?;
    Ok(layout)
}

impl Layout {
    /// The entry's address, which must be in `__TEXT`: XNU starts a
    /// program only in an r-x segment (`load_machfile` refuses an entry
    /// point outside one, bsd/kern/mach_loader.c), so a data symbol as the
    /// entry would make an image that cannot be executed.
    fn entry_address(&self, res: &Resolution<'_>, atoms: &Atoms, entry: &str, image: &str) -> Result<u64> {
        let not_in_image = || Error::new(image, format!("entry symbol {entry} is not in the image"));
        let def = res.global(entry.as_bytes()).ok_or_else(not_in_image)?;
        let Def::Section { section, value } = res.objects[def.obj].symbols[def.sym].def else { return Err(not_in_image()) };
        let id = atoms.find(def.obj, section, value).ok_or_else(not_in_image)?;
        let (_, out) = self.atoms[id].ok_or_else(not_in_image)?;
        if out >= self.text_sections {
            let object = &res.objects[def.obj];
            let what = format!(
                "entry symbol {entry} is in {}, which is not executable: XNU starts a program only in __TEXT (r-x)",
                object.sections[section].full_name()
            );
            return Err(Error::new(&object.name, what));
        }
        self.address(atoms, Place::Atom(id, value), 0).and_then(|a| u64::try_from(a).ok()).ok_or_else(not_in_image)
    }

    /// Final virtual address of a place plus an addend; `None` for a place
    /// in an atom that is not in the image.
    pub fn address(&self, atoms: &Atoms, place: Place, addend: i64) -> Option<i128> {
        let base = match place {
            Place::Absolute(value) => i128::from(value),
            Place::Atom(id, addr) => {
                let (offset, _) = (*self.atoms.get(id)?)?;
                i128::from(self.base) + i128::from(offset) + i128::from(addr) - i128::from(atoms.info[id].start)
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
