//! The two architectures machlink links, and what differs between their
//! images.

use object::macho;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    I386,
}

/// XNU maps and protects whole pages; 4 KiB on every Intel Mac.
pub const PAGE_SIZE: u64 = 0x1000;

impl Arch {
    pub fn from_name(name: &str) -> Option<Arch> {
        match name {
            "x86_64" => Some(Arch::X86_64),
            "i386" => Some(Arch::I386),
            _ => None,
        }
    }

    pub fn from_cputype(cputype: macho::CpuType) -> Option<Arch> {
        match cputype {
            macho::CPU_TYPE_X86_64 => Some(Arch::X86_64),
            macho::CPU_TYPE_X86 => Some(Arch::I386),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::I386 => "i386",
        }
    }

    pub fn cputype(self) -> macho::CpuType {
        match self {
            Arch::X86_64 => macho::CPU_TYPE_X86_64,
            Arch::I386 => macho::CPU_TYPE_X86,
        }
    }

    pub fn cpusubtype(self) -> macho::CpuSubtype {
        match self {
            Arch::X86_64 => macho::CPU_SUBTYPE_X86_64_ALL.into(),
            Arch::I386 => macho::CPU_SUBTYPE_I386_ALL.into(),
        }
    }

    /// The most an image may span from `__TEXT`'s start: the 32-bit
    /// address space above the page zero, or for x86_64 a bound far beyond
    /// any static program, low enough that no page rounding can overflow.
    pub fn max_image(self) -> u64 {
        match self {
            Arch::X86_64 => 1 << 40,
            Arch::I386 => u64::from(u32::MAX) - self.page_zero_size(),
        }
    }

    pub fn is_64(self) -> bool {
        self == Arch::X86_64
    }

    /// Size of `__PAGEZERO`, which is also where `__TEXT` starts.
    ///
    /// x86_64: `load_machfile` (bsd/kern/mach_loader.c) refuses a 64-bit
    /// image whose map lacks a hard page zero, and `load_segment` makes one
    /// only from a segment at 0 with no file data and no access; 4 GiB is
    /// what ld64 gives, so no 32-bit truncated pointer is ever valid.
    /// i386: `load_machfile` does not enforce the hard page zero for 32-bit
    /// images on x86; one page still catches null pointers.
    pub fn page_zero_size(self) -> u64 {
        match self {
            Arch::X86_64 => 0x1_0000_0000,
            Arch::I386 => PAGE_SIZE,
        }
    }
}
