//! The Mach-O structures machlink writes, in their 32-bit or 64-bit form:
//! one small trait, [`Width`], with an implementation per word size, chosen
//! once per link by [`width`], so that neither the layout (where the
//! sections may begin) nor the writer branches on the architecture for a
//! structure's shape. Modelled on the `object` crate's own writer
//! (`MachO32`/`MachO64` behind a `MachO` trait, write/macho.rs).

use std::mem::size_of;

use object::pod::bytes_of;
use object::{LittleEndian as LE, U16, U32, U64, macho};

use crate::arch::Arch;

/// A header's fields that do not depend on the word size.
pub struct Header {
    pub cputype: macho::CpuType,
    pub cpusubtype: macho::CpuSubtype,
    pub filetype: macho::FileType,
    pub ncmds: u32,
    pub sizeofcmds: u32,
    pub flags: macho::FileFlags,
}

pub struct SegmentHeader<'n> {
    pub name: &'n str,
    pub vmaddr: u64,
    pub vmsize: u64,
    pub fileoff: u64,
    pub filesize: u64,
    pub prot: macho::VmProt,
    pub nsects: u32,
}

pub struct SectionHeader<'n> {
    pub sectname: &'n str,
    pub segname: &'n str,
    pub addr: u64,
    pub size: u64,
    pub offset: u32,
    pub align: u32,
    pub flags: macho::SectionFlags,
}

pub struct NlistEntry {
    pub strx: u32,
    pub n_type: macho::SymbolFlags,
    pub sect: u8,
    pub value: u64,
}

/// Sizes and encodings of the structures whose shape depends on the word
/// size. Values too wide for a 32-bit field are cut to it: the layout has
/// checked every address and size against the 32-bit address space.
pub trait Width {
    fn header_size(&self) -> usize;
    fn segment_command_size(&self) -> usize;
    fn section_size(&self) -> usize;
    fn nlist_size(&self) -> usize;
    /// The pointer size: what the symbol table is aligned to.
    fn word(&self) -> u64;
    /// `x86_THREAD_STATE32` or `x86_THREAD_STATE64`, with its count in
    /// 32-bit words (osfmk/mach/i386/thread_status.h): the only flavors
    /// `thread_userstack` and `thread_entrypoint` (osfmk/i386/bsd_i386.c)
    /// accept from `load_unixthread` for an Intel image.
    fn thread_state(&self) -> (u32, u32);
    /// The thread state with the program counter set to `entry`, every
    /// other register 0.
    fn entry_state(&self, entry: u64) -> Vec<u32>;
    fn write_header(&self, out: &mut Vec<u8>, h: &Header);
    fn write_segment(&self, out: &mut Vec<u8>, s: &SegmentHeader<'_>);
    fn write_section(&self, out: &mut Vec<u8>, s: &SectionHeader<'_>);
    fn write_nlist(&self, out: &mut Vec<u8>, n: &NlistEntry);

    fn segment_size(&self, nsects: usize) -> usize {
        self.segment_command_size() + nsects * self.section_size()
    }

    fn thread_command_size(&self) -> usize {
        size_of::<macho::ThreadCommand<LE>>() + 8 + 4 * self.thread_state().1 as usize
    }

    /// `__PAGEZERO`, `__TEXT` with `counts[0]` sections, one segment per
    /// further count, `LC_SYMTAB`, `LC_UNIXTHREAD`.
    fn commands_size(&self, counts: &[usize]) -> usize {
        self.segment_size(0)
            + counts.iter().map(|&n| self.segment_size(n)).sum::<usize>()
            + symtab_command_size()
            + self.thread_command_size()
    }

    /// Where the load commands end and the sections may begin.
    fn commands_end(&self, counts: &[usize]) -> u64 {
        (self.header_size() + self.commands_size(counts)) as u64
    }
}

pub struct MachO32;
pub struct MachO64;

/// The structures' form for `arch`, chosen once per link.
pub fn width(arch: Arch) -> &'static dyn Width {
    match arch {
        Arch::X86_64 => &MachO64,
        Arch::I386 => &MachO32,
    }
}

pub fn name16(name: &str) -> [u8; 16] {
    let mut out = [0; 16];
    let bytes = name.as_bytes();
    let n = bytes.len().min(16);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

/// Index of `eip` in `x86_thread_state32_t` (eax ebx ecx edx edi esi ebp
/// esp ss eflags eip ...), in 32-bit words.
const EIP_WORD: usize = 10;
/// Index of `rip` in `x86_thread_state64_t` (rax rbx rcx rdx rdi rsi rbp
/// rsp r8..r15 rip ...), in 32-bit words.
const RIP_WORD: usize = 16 * 2;

impl Width for MachO32 {
    fn header_size(&self) -> usize {
        size_of::<macho::MachHeader32<LE>>()
    }
    fn segment_command_size(&self) -> usize {
        size_of::<macho::SegmentCommand32<LE>>()
    }
    fn section_size(&self) -> usize {
        size_of::<macho::Section32<LE>>()
    }
    fn nlist_size(&self) -> usize {
        size_of::<macho::Nlist32<LE>>()
    }
    fn word(&self) -> u64 {
        4
    }
    fn thread_state(&self) -> (u32, u32) {
        (1, 16)
    }
    fn entry_state(&self, entry: u64) -> Vec<u32> {
        let mut state = vec![0; self.thread_state().1 as usize];
        state[EIP_WORD] = entry as u32;
        state
    }
    fn write_header(&self, out: &mut Vec<u8>, h: &Header) {
        out.extend_from_slice(bytes_of(&macho::MachHeader32 {
            magic: U32::new(object::BigEndian, macho::MH_CIGAM),
            cputype: U32::new(LE, h.cputype),
            cpusubtype: U32::new(LE, h.cpusubtype),
            filetype: U32::new(LE, h.filetype),
            ncmds: U32::new(LE, h.ncmds),
            sizeofcmds: U32::new(LE, h.sizeofcmds),
            flags: U32::new(LE, h.flags),
        }));
    }
    fn write_segment(&self, out: &mut Vec<u8>, s: &SegmentHeader<'_>) {
        out.extend_from_slice(bytes_of(&macho::SegmentCommand32 {
            cmd: U32::new(LE, macho::LC_SEGMENT),
            cmdsize: U32::new(LE, self.segment_size(s.nsects as usize) as u32),
            segname: name16(s.name),
            vmaddr: U32::new(LE, s.vmaddr as u32),
            vmsize: U32::new(LE, s.vmsize as u32),
            fileoff: U32::new(LE, s.fileoff as u32),
            filesize: U32::new(LE, s.filesize as u32),
            maxprot: U32::new(LE, s.prot),
            initprot: U32::new(LE, s.prot),
            nsects: U32::new(LE, s.nsects),
            flags: U32::new(LE, macho::SegmentFlags(0)),
        }));
    }
    fn write_section(&self, out: &mut Vec<u8>, s: &SectionHeader<'_>) {
        out.extend_from_slice(bytes_of(&macho::Section32 {
            sectname: name16(s.sectname),
            segname: name16(s.segname),
            addr: U32::new(LE, s.addr as u32),
            size: U32::new(LE, s.size as u32),
            offset: U32::new(LE, s.offset),
            align: U32::new(LE, s.align),
            reloff: U32::new(LE, 0),
            nreloc: U32::new(LE, 0),
            flags: U32::new(LE, s.flags),
            reserved1: U32::new(LE, 0),
            reserved2: U32::new(LE, 0),
        }));
    }
    fn write_nlist(&self, out: &mut Vec<u8>, n: &NlistEntry) {
        out.extend_from_slice(bytes_of(&macho::Nlist32 {
            n_strx: U32::new(LE, n.strx),
            n_type: n.n_type,
            n_sect: n.sect,
            n_desc: U16::new(LE, macho::SymbolDesc(0)),
            n_value: U32::new(LE, n.value as u32),
        }));
    }
}

impl Width for MachO64 {
    fn header_size(&self) -> usize {
        size_of::<macho::MachHeader64<LE>>()
    }
    fn segment_command_size(&self) -> usize {
        size_of::<macho::SegmentCommand64<LE>>()
    }
    fn section_size(&self) -> usize {
        size_of::<macho::Section64<LE>>()
    }
    fn nlist_size(&self) -> usize {
        size_of::<macho::Nlist64<LE>>()
    }
    fn word(&self) -> u64 {
        8
    }
    fn thread_state(&self) -> (u32, u32) {
        (4, 42)
    }
    fn entry_state(&self, entry: u64) -> Vec<u32> {
        let mut state = vec![0; self.thread_state().1 as usize];
        state[RIP_WORD] = entry as u32;
        state[RIP_WORD + 1] = (entry >> 32) as u32;
        state
    }
    fn write_header(&self, out: &mut Vec<u8>, h: &Header) {
        out.extend_from_slice(bytes_of(&macho::MachHeader64 {
            magic: U32::new(object::BigEndian, macho::MH_CIGAM_64),
            cputype: U32::new(LE, h.cputype),
            cpusubtype: U32::new(LE, h.cpusubtype),
            filetype: U32::new(LE, h.filetype),
            ncmds: U32::new(LE, h.ncmds),
            sizeofcmds: U32::new(LE, h.sizeofcmds),
            flags: U32::new(LE, h.flags),
            reserved: U32::new(LE, 0),
        }));
    }
    fn write_segment(&self, out: &mut Vec<u8>, s: &SegmentHeader<'_>) {
        out.extend_from_slice(bytes_of(&macho::SegmentCommand64 {
            cmd: U32::new(LE, macho::LC_SEGMENT_64),
            cmdsize: U32::new(LE, self.segment_size(s.nsects as usize) as u32),
            segname: name16(s.name),
            vmaddr: U64::new(LE, s.vmaddr),
            vmsize: U64::new(LE, s.vmsize),
            fileoff: U64::new(LE, s.fileoff),
            filesize: U64::new(LE, s.filesize),
            maxprot: U32::new(LE, s.prot),
            initprot: U32::new(LE, s.prot),
            nsects: U32::new(LE, s.nsects),
            flags: U32::new(LE, macho::SegmentFlags(0)),
        }));
    }
    fn write_section(&self, out: &mut Vec<u8>, s: &SectionHeader<'_>) {
        out.extend_from_slice(bytes_of(&macho::Section64 {
            sectname: name16(s.sectname),
            segname: name16(s.segname),
            addr: U64::new(LE, s.addr),
            size: U64::new(LE, s.size),
            offset: U32::new(LE, s.offset),
            align: U32::new(LE, s.align),
            reloff: U32::new(LE, 0),
            nreloc: U32::new(LE, 0),
            flags: U32::new(LE, s.flags),
            reserved1: U32::new(LE, 0),
            reserved2: U32::new(LE, 0),
            reserved3: U32::new(LE, 0),
        }));
    }
    fn write_nlist(&self, out: &mut Vec<u8>, n: &NlistEntry) {
        out.extend_from_slice(bytes_of(&macho::Nlist64 {
            n_strx: U32::new(LE, n.strx),
            n_type: n.n_type,
            n_sect: n.sect,
            n_desc: U16::new(LE, macho::SymbolDesc(0)),
            n_value: U64::new(LE, n.value),
        }));
    }
}

pub fn symtab_command_size() -> usize {
    size_of::<macho::SymtabCommand<LE>>()
}

pub fn align_up(value: u64, align: u64) -> u64 {
    value.div_ceil(align) * align
}
