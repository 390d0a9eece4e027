//! The file: the Mach-O header and load commands written over the bytes
//! the segments map, then the symbol table after them.
//!
//! The load commands are exactly what XNU's exec path needs for a static
//! executable (`parse_machfile`, bsd/kern/mach_loader.c), and nothing that
//! would call for dyld: no `LC_MAIN`, `LC_LOAD_DYLINKER`, `LC_LOAD_DYLIB`
//! or `LC_DYLD_INFO`.
//!
//! Without `__DATA`, `__TEXT` maps the whole file, symbol table included,
//! padded to a page: a hello is one 4096-byte page. With `__DATA`, the
//! symbol table follows `__DATA`'s file bytes and no segment maps it
//! (XNU's loader never reads `LC_SYMTAB` of a static image).

use object::pod::bytes_of;
use object::{LittleEndian as LE, U32, macho};

use crate::arch::PAGE_SIZE;
use crate::error::{Error, Result};
use crate::format::{self, Header, NlistEntry, SectionHeader, SegmentHeader, Width, align_up};
use crate::layout::{Layout, OutSection};
use crate::symtab::Symtab;

struct Segments {
    text_size: u64,
    symoff: u64,
    stroff: u64,
    file_size: u64,
}

fn arrange(layout: &Layout, w: &dyn Width, symtab: &Symtab, image: &str) -> Result<Segments> {
    let symoff = align_up(layout.file_end, w.word());
    let stroff = symoff + symtab.symbols.len() as u64 * w.nlist_size() as u64;
    let file_size = align_up(stroff + symtab.strings.len() as u64, PAGE_SIZE);
    let text_size = layout.segments.first().map_or(file_size, |s| s.offset);
    if file_size > u64::from(u32::MAX) || text_size > layout.arch.max_image() {
        return Err(Error::new(image, "image too large"));
    }
    Ok(Segments { text_size, symoff, stroff, file_size })
}

/// The whole file, from the segments' bytes (`contents`, `layout.file_end`
/// long, zero where the header goes) and the symbol table.
pub fn image(layout: &Layout, mut contents: Vec<u8>, symtab: &Symtab, image: &str) -> Result<Vec<u8>> {
    let w = format::width(layout.arch);
    let seg = arrange(layout, w, symtab, image)?;
    let size = usize::try_from(seg.file_size).map_err(|_| Error::new(image, "image too large"))?;
    contents.resize(size, 0);
    headers(layout, w, &seg, symtab, &mut contents);
    Ok(contents)
}

fn headers(layout: &Layout, w: &dyn Width, seg: &Segments, symtab: &Symtab, image: &mut [u8]) {
    let arch = layout.arch;
    let e = LE;
    let mut out: Vec<u8> = Vec::new();
    let text = layout.text_sections;
    let counts: Vec<usize> = std::iter::once(text).chain(layout.segments.iter().map(|s| s.sections.len())).collect();
    // Flags: MH_NOUNDEFS only. Without MH_DYLDLINK, `parse_machfile` runs
    // no dynamic linker (and accepts the static image only for x86_64 on
    // release kernels; i386 static images ran up to macOS 10.14). Without
    // MH_PIE the image is not slid, so the absolute addresses written by
    // the relocations stay right.
    w.write_header(
        &mut out,
        &Header {
            cputype: arch.cputype(),
            cpusubtype: arch.cpusubtype(),
            filetype: macho::MH_EXECUTE,
            ncmds: 4 + layout.segments.len() as u32,
            sizeofcmds: w.commands_size(&counts) as u32,
            flags: macho::MH_NOUNDEFS,
        },
    );

    // __PAGEZERO: address 0, no file data, no access. `load_segment` turns
    // exactly this shape into a raised map minimum, the "hard page zero"
    // `load_machfile` demands of 64-bit images.
    let pagezero =
        SegmentHeader { name: "__PAGEZERO", vmaddr: 0, vmsize: arch.page_zero_size(), fileoff: 0, filesize: 0, prot: macho::VmProt(0), nsects: 0 };
    w.write_segment(&mut out, &pagezero);
    // __TEXT maps the file from offset 0 (all of it when no other segment
    // follows): `parse_machfile` requires exactly one segment mapping
    // offset 0 and that it be r-x, and the entry point must lie in an r-x
    // segment (`validentry`). maxprot = r-x too: nothing ever needs to make
    // this memory writable.
    let rx = macho::VmProt(macho::VM_PROT_READ.0 | macho::VM_PROT_EXECUTE.0);
    segment(&mut out, w, "__TEXT", layout.base, seg.text_size, 0, seg.text_size, rx, &layout.sections[..text], layout);
    for s in &layout.segments {
        // __DATA and the inputs' own segments: after __TEXT in memory and
        // in the file alike. A zero-fill tail is vmsize beyond filesize,
        // which `load_segment` maps as anonymous zeroed memory.
        let sections = &layout.sections[s.sections.clone()];
        segment(&mut out, w, &s.name, layout.base + s.offset, s.vm_size, s.offset, s.file_size, s.prot, sections, layout);
    }

    out.extend_from_slice(bytes_of(&macho::SymtabCommand {
        cmd: U32::new(e, macho::LC_SYMTAB),
        cmdsize: U32::new(e, format::symtab_command_size() as u32),
        symoff: U32::new(e, seg.symoff as u32),
        nsyms: U32::new(e, symtab.symbols.len() as u32),
        stroff: U32::new(e, seg.stroff as u32),
        strsize: U32::new(e, symtab.strings.len() as u32),
    }));

    // LC_UNIXTHREAD: `load_unixthread` takes the entry from the state's
    // rip/eip (`thread_entrypoint`). Every other register is 0: a zero
    // stack pointer tells `thread_userstack` to have the kernel allocate the
    // stack (a non-zero one would be a "custom stack" it does not map), and
    // zero segment selectors are replaced by the user ones when the state
    // is set (`set_thread_state32`/`64`, osfmk/i386/pcb.c).
    let (flavor, count) = w.thread_state();
    out.extend_from_slice(bytes_of(&macho::ThreadCommand {
        cmd: U32::new(e, macho::LC_UNIXTHREAD),
        cmdsize: U32::new(e, w.thread_command_size() as u32),
    }));
    for word in [flavor, count].into_iter().chain(w.entry_state(layout.entry)) {
        out.extend_from_slice(&word.to_le_bytes());
    }

    image[..out.len()].copy_from_slice(&out);

    let mut syms: Vec<u8> = Vec::new();
    for s in &symtab.symbols {
        let n_type = macho::SymbolFlags(macho::N_SECT.0 | if s.external { macho::N_EXT.0 } else { 0 });
        w.write_nlist(&mut syms, &NlistEntry { strx: s.strx, n_type, sect: s.sect, value: s.value });
    }
    let symoff = seg.symoff as usize;
    image[symoff..symoff + syms.len()].copy_from_slice(&syms);
    let stroff = seg.stroff as usize;
    image[stroff..stroff + symtab.strings.len()].copy_from_slice(&symtab.strings);
}

#[allow(clippy::too_many_arguments)]
fn segment(
    out: &mut Vec<u8>,
    w: &dyn Width,
    name: &str,
    vmaddr: u64,
    vmsize: u64,
    fileoff: u64,
    filesize: u64,
    prot: macho::VmProt,
    sections: &[OutSection],
    layout: &Layout,
) {
    let nsects = sections.len() as u32;
    w.write_segment(out, &SegmentHeader { name, vmaddr, vmsize, fileoff, filesize, prot, nsects });
    for s in sections {
        w.write_section(
            out,
            &SectionHeader {
                sectname: &s.placement.sectname,
                segname: &s.placement.segname,
                addr: layout.base + s.offset,
                size: s.size,
                offset: file_offset(s),
                align: s.align,
                flags: s.flags,
            },
        );
    }
}

/// A zero-fill section has no bytes in the file: offset 0, as ld64 writes
/// it and as `llvm-objdump` expects.
fn file_offset(s: &OutSection) -> u32 {
    if s.placement.is_zerofill() { 0 } else { s.offset as u32 }
}
