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
use object::{LittleEndian as LE, U32, U64, macho};

use crate::arch::{Arch, PAGE_SIZE};
use crate::error::{Error, Result};
use crate::format::{self, align_up};
use crate::layout::{Layout, OutSection};
use crate::symtab::Symtab;

/// Index of `eip` in `x86_thread_state32_t` (eax ebx ecx edx edi esi ebp
/// esp ss eflags eip ...), in 32-bit words.
const EIP_WORD: usize = 10;
/// Index of `rip` in `x86_thread_state64_t` (rax rbx rcx rdx rdi rsi rbp
/// rsp r8..r15 rip ...), in 32-bit words.
const RIP_WORD: usize = 16 * 2;

fn name16(name: &str) -> [u8; 16] {
    let mut out = [0; 16];
    let bytes = name.as_bytes();
    let n = bytes.len().min(16);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

struct Segments {
    text_size: u64,
    symoff: u64,
    stroff: u64,
    file_size: u64,
}

fn arrange(layout: &Layout, symtab: &Symtab, image: &str) -> Result<Segments> {
    let arch = layout.arch;
    let word = if arch.is_64() { 8 } else { 4 };
    let symoff = align_up(layout.file_end, word);
    let stroff = symoff + symtab.symbols.len() as u64 * format::nlist_size(arch);
    let file_size = align_up(stroff + symtab.strings.len() as u64, PAGE_SIZE);
    let text_size = match &layout.data {
        Some(data) => data.offset,
        None => file_size,
    };
    let limit = if arch.is_64() { u64::MAX - layout.base } else { u64::from(u32::MAX) - layout.base };
    if file_size > u64::from(u32::MAX) || text_size > limit {
        return Err(Error::new(image, "image too large"));
    }
    Ok(Segments { text_size, symoff, stroff, file_size })
}

/// The whole file, from the segments' bytes (`contents`, `layout.file_end`
/// long, zero where the header goes) and the symbol table.
pub fn image(layout: &Layout, mut contents: Vec<u8>, symtab: &Symtab, image: &str) -> Result<Vec<u8>> {
    let seg = arrange(layout, symtab, image)?;
    let size = usize::try_from(seg.file_size).map_err(|_| Error::new(image, "image too large"))?;
    contents.resize(size, 0);
    headers(layout, &seg, symtab, &mut contents);
    Ok(contents)
}

fn headers(layout: &Layout, seg: &Segments, symtab: &Symtab, image: &mut [u8]) {
    let arch = layout.arch;
    let e = LE;
    let mut out: Vec<u8> = Vec::new();
    let text = layout.text_sections();
    let (text_sections, data_sections) = layout.sections.split_at(text);
    let sizeofcmds = format::commands_size(arch, text, data_sections.len()) as u32;
    let ncmds = if layout.data.is_some() { 5 } else { 4 };
    // Flags: MH_NOUNDEFS only. Without MH_DYLDLINK, `parse_machfile` runs
    // no dynamic linker (and accepts the static image only for x86_64 on
    // release kernels; i386 static images ran up to macOS 10.14). Without
    // MH_PIE the image is not slid, so the absolute addresses written by
    // the relocations stay right.
    let flags = macho::MH_NOUNDEFS;
    if arch.is_64() {
        out.extend_from_slice(bytes_of(&macho::MachHeader64 {
            magic: U32::new(object::BigEndian, macho::MH_CIGAM_64),
            cputype: U32::new(e, arch.cputype()),
            cpusubtype: U32::new(e, arch.cpusubtype()),
            filetype: U32::new(e, macho::MH_EXECUTE),
            ncmds: U32::new(e, ncmds),
            sizeofcmds: U32::new(e, sizeofcmds),
            flags: U32::new(e, flags),
            reserved: U32::new(e, 0),
        }));
    } else {
        out.extend_from_slice(bytes_of(&macho::MachHeader32 {
            magic: U32::new(object::BigEndian, macho::MH_CIGAM),
            cputype: U32::new(e, arch.cputype()),
            cpusubtype: U32::new(e, arch.cpusubtype()),
            filetype: U32::new(e, macho::MH_EXECUTE),
            ncmds: U32::new(e, ncmds),
            sizeofcmds: U32::new(e, sizeofcmds),
            flags: U32::new(e, flags),
        }));
    }

    // __PAGEZERO: address 0, no file data, no access. `load_segment` turns
    // exactly this shape into a raised map minimum, the "hard page zero"
    // `load_machfile` demands of 64-bit images.
    let none = macho::VmProt(0);
    segment(&mut out, arch, "__PAGEZERO", 0, arch.page_zero_size(), 0, 0, none, &[], layout);
    // __TEXT maps the file from offset 0 (all of it when there is no
    // __DATA): `parse_machfile` requires
    // exactly one segment mapping offset 0 and that it be r-x, and the
    // entry point must lie in an r-x segment (`validentry`). maxprot = r-x
    // too: nothing ever needs to make this memory writable.
    let rx = macho::VmProt(macho::VM_PROT_READ.0 | macho::VM_PROT_EXECUTE.0);
    segment(&mut out, arch, "__TEXT", layout.base, seg.text_size, 0, seg.text_size, rx, text_sections, layout);
    if let Some(data) = &layout.data {
        // __DATA: rw-, after __TEXT in memory and in the file alike. Its
        // zero-fill tail is vmsize beyond filesize, which `load_segment`
        // maps as anonymous zeroed memory.
        let rw = macho::VmProt(macho::VM_PROT_READ.0 | macho::VM_PROT_WRITE.0);
        let vmaddr = layout.base + data.offset;
        segment(&mut out, arch, "__DATA", vmaddr, data.vm_size, data.offset, data.file_size, rw, data_sections, layout);
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
    let (flavor, count) = format::thread_state(arch);
    out.extend_from_slice(bytes_of(&macho::ThreadCommand {
        cmd: U32::new(e, macho::LC_UNIXTHREAD),
        cmdsize: U32::new(e, format::thread_command_size(arch) as u32),
    }));
    let mut state = vec![0u32; count as usize];
    if arch.is_64() {
        state[RIP_WORD] = layout.entry as u32;
        state[RIP_WORD + 1] = (layout.entry >> 32) as u32;
    } else {
        state[EIP_WORD] = layout.entry as u32;
    }
    for word in [flavor, count].into_iter().chain(state) {
        out.extend_from_slice(&word.to_le_bytes());
    }

    image[..out.len()].copy_from_slice(&out);

    let mut syms: Vec<u8> = Vec::new();
    for s in &symtab.symbols {
        let n_type = macho::SymbolFlags(macho::N_SECT.0 | if s.external { macho::N_EXT.0 } else { 0 });
        if arch.is_64() {
            syms.extend_from_slice(bytes_of(&macho::Nlist64 {
                n_strx: U32::new(e, s.strx),
                n_type,
                n_sect: s.sect,
                n_desc: object::U16::new(e, macho::SymbolDesc(0)),
                n_value: U64::new(e, s.value),
            }));
        } else {
            syms.extend_from_slice(bytes_of(&macho::Nlist32 {
                n_strx: U32::new(e, s.strx),
                n_type,
                n_sect: s.sect,
                n_desc: object::U16::new(e, macho::SymbolDesc(0)),
                n_value: U32::new(e, s.value as u32),
            }));
        }
    }
    let symoff = seg.symoff as usize;
    image[symoff..symoff + syms.len()].copy_from_slice(&syms);
    let stroff = seg.stroff as usize;
    image[stroff..stroff + symtab.strings.len()].copy_from_slice(&symtab.strings);
}

#[allow(clippy::too_many_arguments)]
fn segment(
    out: &mut Vec<u8>,
    arch: Arch,
    name: &str,
    vmaddr: u64,
    vmsize: u64,
    fileoff: u64,
    filesize: u64,
    prot: macho::VmProt,
    sections: &[OutSection],
    layout: &Layout,
) {
    let e = LE;
    let cmdsize = format::segment_size(arch, sections.len()) as u32;
    let nsects = sections.len() as u32;
    if arch.is_64() {
        out.extend_from_slice(bytes_of(&macho::SegmentCommand64 {
            cmd: U32::new(e, macho::LC_SEGMENT_64),
            cmdsize: U32::new(e, cmdsize),
            segname: name16(name),
            vmaddr: U64::new(e, vmaddr),
            vmsize: U64::new(e, vmsize),
            fileoff: U64::new(e, fileoff),
            filesize: U64::new(e, filesize),
            maxprot: U32::new(e, prot),
            initprot: U32::new(e, prot),
            nsects: U32::new(e, nsects),
            flags: U32::new(e, macho::SegmentFlags(0)),
        }));
        for s in sections {
            out.extend_from_slice(bytes_of(&macho::Section64 {
                sectname: name16(&s.placement.sectname),
                segname: name16(&s.placement.segname),
                addr: U64::new(e, layout.base + s.offset),
                size: U64::new(e, s.size),
                offset: U32::new(e, file_offset(s)),
                align: U32::new(e, s.align),
                reloff: U32::new(e, 0),
                nreloc: U32::new(e, 0),
                flags: U32::new(e, s.flags),
                reserved1: U32::new(e, 0),
                reserved2: U32::new(e, 0),
                reserved3: U32::new(e, 0),
            }));
        }
    } else {
        out.extend_from_slice(bytes_of(&macho::SegmentCommand32 {
            cmd: U32::new(e, macho::LC_SEGMENT),
            cmdsize: U32::new(e, cmdsize),
            segname: name16(name),
            vmaddr: U32::new(e, vmaddr as u32),
            vmsize: U32::new(e, vmsize as u32),
            fileoff: U32::new(e, fileoff as u32),
            filesize: U32::new(e, filesize as u32),
            maxprot: U32::new(e, prot),
            initprot: U32::new(e, prot),
            nsects: U32::new(e, nsects),
            flags: U32::new(e, macho::SegmentFlags(0)),
        }));
        for s in sections {
            out.extend_from_slice(bytes_of(&macho::Section32 {
                sectname: name16(&s.placement.sectname),
                segname: name16(&s.placement.segname),
                addr: U32::new(e, (layout.base + s.offset) as u32),
                size: U32::new(e, s.size as u32),
                offset: U32::new(e, file_offset(s)),
                align: U32::new(e, s.align),
                reloff: U32::new(e, 0),
                nreloc: U32::new(e, 0),
                flags: U32::new(e, s.flags),
                reserved1: U32::new(e, 0),
                reserved2: U32::new(e, 0),
            }));
        }
    }
}

/// A zero-fill section has no bytes in the file: offset 0, as ld64 writes
/// it and as `llvm-objdump` expects.
fn file_offset(s: &OutSection) -> u32 {
    if s.placement.is_zerofill() { 0 } else { s.offset as u32 }
}
