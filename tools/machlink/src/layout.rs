//! Addresses: where each live atom, each output section and the symbol
//! table go in the one-segment image.
//!
//! The file is mapped whole, from offset 0, as `__TEXT`: the Mach-O header
//! and load commands first (XNU's `parse_machfile` reads them from there),
//! then the sections, then the symbol and string tables, padded to a page.
//! So a file offset plus the segment's address is a virtual address.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use object::macho;

use crate::arch::{Arch, PAGE_SIZE};
use crate::atoms::{AtomId, Atoms, Place};
use crate::error::{Error, Result};
use crate::resolve::Resolution;
use crate::symtab::{self, Symtab};
use crate::write;

pub struct OutSection {
    pub segname: String,
    pub sectname: String,
    pub flags: macho::SectionFlags,
    pub align: u32,
    pub offset: u64,
    pub size: u64,
}

pub struct Layout {
    pub arch: Arch,
    /// Virtual address of file offset 0, i.e. of `__TEXT`.
    pub base: u64,
    pub sections: Vec<OutSection>,
    /// File offset and output section of every live atom, in image order.
    pub atoms: BTreeMap<AtomId, (u64, usize)>,
    pub entry: u64,
    pub symtab: Symtab,
    pub symoff: u64,
    pub stroff: u64,
    pub file_size: u64,
}

fn align_up(value: u64, align: u64) -> u64 {
    value.div_ceil(align) * align
}

pub fn layout(res: &Resolution<'_>, atoms: &Atoms, live: &BTreeSet<AtomId>, entry: &str, image: &str) -> Result<Layout> {
    let arch = res.arch;
    // Output sections: `__text` first, as ld64 orders it, the others in the
    // order the inputs first mention them.
    let mut sections: Vec<OutSection> = Vec::new();
    let mut members: Vec<Vec<AtomId>> = Vec::new();
    let mut seen = BTreeSet::new();
    let text_first = live.iter().filter(|id| res.objects[id.obj].sections[id.section].sectname == "__text");
    for &id in text_first.chain(live.iter()) {
        let s = &res.objects[id.obj].sections[id.section];
        let out = match sections.iter().position(|o| o.segname == s.segname && o.sectname == s.sectname) {
            Some(i) => i,
            None => {
                sections.push(OutSection {
                    segname: s.segname.clone(),
                    sectname: s.sectname.clone(),
                    flags: macho::SectionFlags(s.flags.0 & macho::SECTION_TYPE),
                    align: 0,
                    offset: 0,
                    size: 0,
                });
                members.push(Vec::new());
                sections.len() - 1
            }
        };
        if seen.insert(id) {
            members[out].push(id);
        }
        // Attributes merge as ld64 merges them; the relocation bits go,
        // since the image carries no relocations.
        let attrs = s.flags.0 & macho::SECTION_ATTRIBUTES & !(macho::S_ATTR_EXT_RELOC.0 | macho::S_ATTR_LOC_RELOC.0);
        sections[out].flags.0 |= attrs;
        sections[out].align = sections[out].align.max(s.align);
    }
    if sections.len() > usize::from(macho::MAX_SECT) {
        return Err(Error::new(image, "more than 255 output sections"));
    }

    let mut cursor = write::commands_end(arch, sections.len());
    let mut placed = BTreeMap::new();
    for (out, ids) in members.iter().enumerate() {
        cursor = align_up(cursor, 1 << sections[out].align);
        sections[out].offset = cursor;
        for &id in ids {
            let s = &res.objects[id.obj].sections[id.section];
            let (start, end) = atoms.range(&res.objects, id);
            // Keep the atom's position modulo its section's alignment, so an
            // atom that was 16-aligned in its object is 16-aligned here.
            let align = 1u64 << s.align;
            let want = (start - s.addr) % align;
            cursor += (want + align - cursor % align) % align;
            placed.insert(id, (cursor, out));
            cursor += end - start;
        }
        sections[out].size = cursor - sections[out].offset;
    }

    let base = arch.page_zero_size();
    let mut layout = Layout {
        arch,
        base,
        sections,
        atoms: placed,
        entry: 0,
        symtab: Symtab::default(),
        symoff: 0,
        stroff: 0,
        file_size: 0,
    };
    let entry_place = res.global(entry.as_bytes()).and_then(|d| match res.objects[d.obj].symbols[d.sym].def {
        crate::input::Def::Section { section, value } => {
            atoms.find(d.obj, section, value).map(|index| Place::Atom(AtomId { obj: d.obj, section, index }, value))
        }
        _ => None,
    });
    let entry_address = entry_place.and_then(|p| layout.address(res, atoms, p, 0));
    layout.entry = entry_address
        .and_then(|a| u64::try_from(a).ok())
        .ok_or_else(|| Error::new(image, format!("entry symbol {entry} is not in the image")))?;

    layout.symtab = symtab::collect(res, atoms, &layout);
    let word = if arch.is_64() { 8 } else { 4 };
    layout.symoff = align_up(cursor, word);
    layout.stroff = layout.symoff + layout.symtab.symbols.len() as u64 * write::nlist_size(arch);
    let end = layout.stroff + layout.symtab.strings.len() as u64;
    layout.file_size = align_up(end, PAGE_SIZE);
    let limit = if arch.is_64() { u64::MAX - base } else { u64::from(u32::MAX) - base };
    if layout.file_size > limit || layout.file_size > u64::from(u32::MAX) {
        return Err(Error::new(image, "image too large"));
    }
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
}
