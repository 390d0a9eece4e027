//! Which XNU an image meets, and where their answers differ. The x86_64
//! and arm64 images meet current XNU (xnu-11417); i386 images ran only up
//! to macOS 10.14 (xnu-4903), so their answers come from that release.

use super::Arch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// xnu-4903 (macOS 10.14).
    Xnu4903,
    /// xnu-11417.101.15 (current).
    Xnu11417,
}

impl Release {
    pub fn of(task: Arch) -> Release {
        match task {
            Arch::I386 => Release::Xnu4903,
            Arch::X86_64 | Arch::Arm64 => Release::Xnu11417,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Release::Xnu4903 => "xnu-4903",
            Release::Xnu11417 => "xnu-11417",
        }
    }

    /// Whether `ux_exception` (bsd/uxkern/ux_exception.c) turns
    /// EXC_SYSCALL into SIGSYS: since xnu-8020 (`send_sigsys`, always 1 on
    /// release kernels). Before, it maps it to no signal and the thread
    /// goes on past the entry with its registers unchanged.
    pub fn exc_syscall_kills(self) -> bool {
        self == Release::Xnu11417
    }
}
