//! The Mach-O header and load commands, and the symbol table, written over
//! the image whose section contents are already in place.
//!
//! The load commands are exactly what XNU's exec path needs for a static
//! executable (`parse_machfile`, bsd/kern/mach_loader.c), and nothing that
//! would call for dyld: no `LC_MAIN`, `LC_LOAD_DYLINKER`, `LC_LOAD_DYLIB`
//! or `LC_DYLD_INFO`.

use std::mem::size_of;

use object::pod::bytes_of;
use object::{LittleEndian as LE, U32, U64, macho};

use crate::arch::Arch;
use crate::layout::{Layout, OutSection};

/// `x86_THREAD_STATE32` and `x86_THREAD_STATE64` with their counts in
/// 32-bit words (osfmk/mach/i386/thread_status.h), the only flavors
/// `thread_userstack` and `thread_entrypoint` (osfmk/i386/bsd_i386.c)
/// accept from `load_unixthread` for an Intel image.
const THREAD_STATE32: (u32, u32) = (1, 16);
const THREAD_STATE64: (u32, u32) = (4, 42);
/// Index of `eip` in `x86_thread_state32_t` (eax ebx ecx edx edi esi ebp
/// esp ss eflags eip ...), in 32-bit words.
const EIP_WORD: usize = 10;
/// Index of `rip` in `x86_thread_state64_t` (rax rbx rcx rdx rdi rsi rbp
/// rsp r8..r15 rip ...), in 32-bit words.
const RIP_WORD: usize = 16 * 2;

const NCMDS: u32 = 4;

fn thread_state(arch: Arch) -> (u32, u32) {
    if arch.is_64() { THREAD_STATE64 } else { THREAD_STATE32 }
}

fn thread_command_size(arch: Arch) -> usize {
    size_of::<macho::ThreadCommand<LE>>() + 8 + 4 * thread_state(arch).1 as usize
}

fn segment_size(arch: Arch, nsects: usize) -> usize {
    if arch.is_64() {
        size_of::<macho::SegmentCommand64<LE>>() + nsects * size_of::<macho::Section64<LE>>()
    } else {
        size_of::<macho::SegmentCommand32<LE>>() + nsects * size_of::<macho::Section32<LE>>()
    }
}

fn header_size(arch: Arch) -> usize {
    if arch.is_64() { size_of::<macho::MachHeader64<LE>>() } else { size_of::<macho::MachHeader32<LE>>() }
}

fn commands_size(arch: Arch, nsects: usize) -> usize {
    segment_size(arch, 0) + segment_size(arch, nsects) + size_of::<macho::SymtabCommand<LE>>() + thread_command_size(arch)
}

/// Where the load commands end and the sections may begin.
pub fn commands_end(arch: Arch, nsects: usize) -> u64 {
    (header_size(arch) + commands_size(arch, nsects)) as u64
}

pub fn nlist_size(arch: Arch) -> u64 {
    if arch.is_64() { size_of::<macho::Nlist64<LE>>() as u64 } else { size_of::<macho::Nlist32<LE>>() as u64 }
}

fn name16(name: &str) -> [u8; 16] {
    let mut out = [0; 16];
    let bytes = name.as_bytes();
    let n = bytes.len().min(16);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

/// Fills in everything but the section contents. `image` is `file_size`
/// bytes long, zero outside the sections.
pub fn headers(layout: &Layout, image: &mut [u8]) {
    let arch = layout.arch;
    let e = LE;
    let mut out: Vec<u8> = Vec::new();
    let sizeofcmds = commands_size(arch, layout.sections.len()) as u32;
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
            ncmds: U32::new(e, NCMDS),
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
            ncmds: U32::new(e, NCMDS),
            sizeofcmds: U32::new(e, sizeofcmds),
            flags: U32::new(e, flags),
        }));
    }

    // __PAGEZERO: address 0, no file data, no access. `load_segment` turns
    // exactly this shape into a raised map minimum, the "hard page zero"
    // `load_machfile` demands of 64-bit images.
    let none = macho::VmProt(0);
    segment(&mut out, arch, "__PAGEZERO", 0, arch.page_zero_size(), 0, 0, none, &[], layout);
    // __TEXT maps the whole file from offset 0: `parse_machfile` requires
    // exactly one segment mapping offset 0 and that it be r-x, and the
    // entry point must lie in an r-x segment (`validentry`). maxprot = r-x
    // too: nothing ever needs to make this memory writable.
    let rx = macho::VmProt(macho::VM_PROT_READ.0 | macho::VM_PROT_EXECUTE.0);
    segment(&mut out, arch, "__TEXT", layout.base, layout.file_size, 0, layout.file_size, rx, &layout.sections, layout);

    out.extend_from_slice(bytes_of(&macho::SymtabCommand {
        cmd: U32::new(e, macho::LC_SYMTAB),
        cmdsize: U32::new(e, size_of::<macho::SymtabCommand<LE>>() as u32),
        symoff: U32::new(e, layout.symoff as u32),
        nsyms: U32::new(e, layout.symtab.symbols.len() as u32),
        stroff: U32::new(e, layout.stroff as u32),
        strsize: U32::new(e, layout.symtab.strings.len() as u32),
    }));

    // LC_UNIXTHREAD: `load_unixthread` takes the entry from the state's
    // rip/eip (`thread_entrypoint`). Every other register is 0: a zero
    // stack pointer tells `thread_userstack` to have the kernel allocate the
    // stack (a non-zero one would be a "custom stack" it does not map), and
    // zero segment selectors are replaced by the user ones when the state
    // is set (`set_thread_state32`/`64`, osfmk/i386/pcb.c).
    let (flavor, count) = thread_state(arch);
    out.extend_from_slice(bytes_of(&macho::ThreadCommand {
        cmd: U32::new(e, macho::LC_UNIXTHREAD),
        cmdsize: U32::new(e, thread_command_size(arch) as u32),
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
    for s in &layout.symtab.symbols {
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
    let symoff = layout.symoff as usize;
    image[symoff..symoff + syms.len()].copy_from_slice(&syms);
    let stroff = layout.stroff as usize;
    image[stroff..stroff + layout.symtab.strings.len()].copy_from_slice(&layout.symtab.strings);
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
    let cmdsize = segment_size(arch, sections.len()) as u32;
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
                sectname: name16(&s.sectname),
                segname: name16(&s.segname),
                addr: U64::new(e, layout.base + s.offset),
                size: U64::new(e, s.size),
                offset: U32::new(e, s.offset as u32),
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
                sectname: name16(&s.sectname),
                segname: name16(&s.segname),
                addr: U32::new(e, (layout.base + s.offset) as u32),
                size: U32::new(e, s.size as u32),
                offset: U32::new(e, s.offset as u32),
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
