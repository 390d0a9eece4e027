//! The address-space constants XNU gives a user task, by architecture:
//! page size, where the stack goes and how large it is, where the user map
//! ends. The loader judges segments against them and every backend lays
//! the guest out with them.

use super::Arch;

/// `PAGE_SIZE` on x86 (osfmk/mach/i386/vm_param.h).
pub const PAGE_X86: u64 = 4096;
/// The page size of an Apple Silicon user map (16 KiB): segments' file
/// offsets must be multiples of it (`load_segment`).
pub const PAGE_ARM64: u64 = 16 * 1024;

/// `VM_USRSTACK64` (osfmk/mach/i386/vm_param.h): where XNU puts the top of
/// a 64-bit x86 process's stack. A static image is not `MH_PIE`, so
/// `load_unixthread` slides it by 0.
pub const USRSTACK64_X86: u64 = 0x0000_7FF7_C000_0000 - 1024 * 1024;
/// `VM_USRSTACK32`, the same for 32-bit processes.
pub const USRSTACK32: u64 = 0xC000_0000;
/// `USRSTACK64` (bsd/arm/vmparam.h): the top of an arm64 main thread's stack.
pub const USRSTACK64_ARM64: u64 = 0x0000_0001_6FE0_0000;

/// `MAXSSIZ` (bsd/i386/vmparam.h): `load_unixthread` asks for a stack of
/// this size, and `create_unix_stack` (kern_exec.c) reserves all of it.
pub const MAXSSIZ: u64 = 64 * 1024 * 1024;
/// `DFLSSIZ`, the default `RLIMIT_STACK`: `create_unix_stack` leaves only
/// this much of the reservation accessible.
pub const DFLSSIZ: u64 = 8 * 1024 * 1024;

/// Highest user address + 1 for 64-bit x86 maps (`VM_MAX_PAGE_ADDRESS`).
pub const VM_MAX_PAGE_ADDRESS64: u64 = 0x0000_7FFF_FFE0_0000;
/// Highest user address + 1 for 32-bit maps (`VM_MAX_ADDRESS`).
pub const VM_MAX_ADDRESS32: u64 = 0xFFE0_0000;
/// `MACH_VM_MAX_ADDRESS` for an arm64 user map (osfmk/mach/arm/vm_param.h).
pub const VM_MAX_ADDRESS_ARM64: u64 = 0x0000_7FFF_FE00_0000;

/// `load_machfile`: the hard page zero a 64-bit image must leave, at least
/// (x86_64: one page; arm64: 4 GiB). 32-bit images are exempt on x86.
pub fn pagezero_min(arch: Arch) -> u64 {
    match arch {
        Arch::X86_64 => PAGE_X86,
        Arch::I386 => 0,
        Arch::Arm64 => 0x1_0000_0000,
    }
}

/// Whether readable memory outside the stack is executable for the ABI:
/// `allow_data_exec = VM_ABI_32` on x86 (osfmk/x86_64/pmap.c, xnu-4903 as
/// in xnu-11417): 32-bit processes may run data, 64-bit ones may not, and
/// arm64 never (osfmk/arm64/sptm/pmap/pmap.c: 0).
pub fn data_exec(arch: Arch) -> bool {
    arch == Arch::I386
}

/// Where the main thread's stack ends (`USRSTACK*`), before any slide.
pub fn usrstack(arch: Arch) -> u64 {
    match arch {
        Arch::X86_64 => USRSTACK64_X86,
        Arch::I386 => USRSTACK32,
        Arch::Arm64 => USRSTACK64_ARM64,
    }
}

/// The page size of the task's map.
pub fn page(arch: Arch) -> u64 {
    match arch {
        Arch::X86_64 | Arch::I386 => PAGE_X86,
        Arch::Arm64 => PAGE_ARM64,
    }
}

/// The end of the task's user map.
pub fn max_address(arch: Arch) -> u64 {
    match arch {
        Arch::X86_64 => VM_MAX_PAGE_ADDRESS64,
        Arch::I386 => VM_MAX_ADDRESS32,
        Arch::Arm64 => VM_MAX_ADDRESS_ARM64,
    }
}

/// Rounds `x` up to a multiple of `page` (a power of two), saturating at
/// the last page.
pub fn round(x: u64, page: u64) -> u64 {
    x.checked_add(page - 1).map_or(!(page - 1), |v| v & !(page - 1))
}

/// Rounds down to a multiple of `page`.
pub fn trunc(x: u64, page: u64) -> u64 {
    x & !(page - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rounding up past the top of the address space stays on the last
    /// page instead of wrapping to 0, so a segment that claims to end there
    /// is judged against the map's end, never taken for an empty one.
    #[test]
    fn round_saturates_at_the_last_page() {
        assert_eq!(round(u64::MAX - 5, 4096), 0xFFFF_FFFF_FFFF_F000);
        assert_eq!(round(u64::MAX - 5, PAGE_ARM64), 0xFFFF_FFFF_FFFF_C000);
        assert_eq!(round(0x1001, 4096), 0x2000);
        assert_eq!(round(0x2000, 4096), 0x2000);
    }
}
