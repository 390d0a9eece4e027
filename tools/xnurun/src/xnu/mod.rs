//! What XNU is, independent of how a CPU runs the guest: the task's ABI
//! and the release it meets, its address-space constants, errno and signal
//! numbers, the BSD call table and the calls xnurun answers, the Mach trap
//! tables, each architecture's way into the
//! kernel (the x86 gates and conventions in [`x86`], `svc #0x80` in
//! [`arm64`]), the `--trace` format, and how a run ends ([`end`]).
//!
//! Nothing here knows about images, ptrace or unicorn: a CPU backend hands
//! this layer the registers it stopped with and the guest's memory, and
//! gets back the registers to resume with, or the run's end.

pub mod arm64;
pub mod bsd;
pub mod end;
pub mod errno;
pub mod mach;
pub mod memory;
pub mod outcome;
pub mod release;
pub mod signal;
pub mod trace;
pub mod vm;
pub mod x86;

/// The ABI of the task, as `exec_mach_imgact` derives it from the image's
/// CPU type: it decides which kernel entries the task may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    I386,
    Arm64,
}

impl Arch {
    pub fn ptr_size(self) -> u64 {
        match self {
            Arch::X86_64 | Arch::Arm64 => 8,
            Arch::I386 => 4,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::I386 => "i386",
            Arch::Arm64 => "arm64",
        }
    }
    /// The name the trace and the messages give the program counter.
    pub fn pc_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "rip",
            Arch::I386 => "eip",
            Arch::Arm64 => "pc",
        }
    }
}
