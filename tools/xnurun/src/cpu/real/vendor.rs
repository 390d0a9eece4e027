//! The one place xnurun asks which x86 vendor it runs on. The two differ
//! where it matters to a 32-bit guest (arch/x86/entry/entry_64_compat.S):
//! Intel runs `sysenter` in compatibility mode and raises #UD for
//! `syscall` there; AMD the other way round. Both then reach Linux's
//! `do_fast_syscall_32`, which resumes at the vDSO's landing pad.
//!
//! Two questions, kept apart:
//! - [`actual`]: what the CPU is. Only it may decide what a stop *was*
//!   (which instruction reached the landing pad), since that is the
//!   hardware's doing.
//! - [`strategy`]: which vendor's choice of CPU for i386 images xnurun
//!   follows: the real CPU on AMD; on Intel the emulated one, since
//!   Linux's `sysenter` entry loses EAX, the call number, before any stop
//!   when the word at EBP cannot be read (docs/limits.md). Both choices
//!   run on either vendor's machine, so the hidden option
//!   `--x86-strategy intel|amd` may override it: the tests use it to take
//!   Intel's choice on an AMD machine and AMD's on Intel. (An option, not
//!   an environment variable, so that the guest's environment stays the
//!   user's.)

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Vendor {
    Intel,
    Amd,
}

/// The CPU's own vendor string (`cpuid` leaf 0). Asked only when the
/// answer matters: in a VM, `cpuid` traps to the hypervisor
/// (bench/results.md).
pub fn actual() -> Vendor {
    let id = std::arch::x86_64::__cpuid(0);
    if (id.ebx, id.edx, id.ecx) == (0x756e_6547, 0x4965_6e69, 0x6c65_746e) { Vendor::Intel } else { Vendor::Amd }
}

/// The vendor whose strategy xnurun follows: the one asked for, else the
/// actual one.
pub fn strategy(asked: Option<Vendor>) -> Vendor {
    asked.unwrap_or_else(actual)
}
