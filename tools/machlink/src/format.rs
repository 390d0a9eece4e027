//! Sizes of the Mach-O structures machlink writes, which both the layout
//! (where the sections may begin) and the writer need.

use std::mem::size_of;

use object::{LittleEndian as LE, macho};

use crate::arch::Arch;

/// `x86_THREAD_STATE32` and `x86_THREAD_STATE64` with their counts in
/// 32-bit words (osfmk/mach/i386/thread_status.h), the only flavors
/// `thread_userstack` and `thread_entrypoint` (osfmk/i386/bsd_i386.c)
/// accept from `load_unixthread` for an Intel image.
pub const THREAD_STATE32: (u32, u32) = (1, 16);
pub const THREAD_STATE64: (u32, u32) = (4, 42);

pub fn thread_state(arch: Arch) -> (u32, u32) {
    if arch.is_64() { THREAD_STATE64 } else { THREAD_STATE32 }
}

pub fn thread_command_size(arch: Arch) -> usize {
    size_of::<macho::ThreadCommand<LE>>() + 8 + 4 * thread_state(arch).1 as usize
}

pub fn segment_size(arch: Arch, nsects: usize) -> usize {
    if arch.is_64() {
        size_of::<macho::SegmentCommand64<LE>>() + nsects * size_of::<macho::Section64<LE>>()
    } else {
        size_of::<macho::SegmentCommand32<LE>>() + nsects * size_of::<macho::Section32<LE>>()
    }
}

pub fn header_size(arch: Arch) -> usize {
    if arch.is_64() { size_of::<macho::MachHeader64<LE>>() } else { size_of::<macho::MachHeader32<LE>>() }
}

pub fn symtab_command_size() -> usize {
    size_of::<macho::SymtabCommand<LE>>()
}

/// `__PAGEZERO`, `__TEXT` with `text` sections, `__DATA` with `data`
/// sections when there are any, `LC_SYMTAB`, `LC_UNIXTHREAD`.
pub fn commands_size(arch: Arch, text: usize, data: usize) -> usize {
    let data_segment = if data > 0 { segment_size(arch, data) } else { 0 };
    segment_size(arch, 0) + segment_size(arch, text) + data_segment + symtab_command_size() + thread_command_size(arch)
}

/// Where the load commands end and the sections may begin.
pub fn commands_end(arch: Arch, text: usize, data: usize) -> u64 {
    (header_size(arch) + commands_size(arch, text, data)) as u64
}

pub fn nlist_size(arch: Arch) -> u64 {
    if arch.is_64() { size_of::<macho::Nlist64<LE>>() as u64 } else { size_of::<macho::Nlist32<LE>>() as u64 }
}

pub fn align_up(value: u64, align: u64) -> u64 {
    value.div_ceil(align) * align
}
