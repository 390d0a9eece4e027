//! The CPUs that run a guest. Each stops the guest where it enters the
//! kernel or faults, hands the registers to [`crate::xnu`] and moves the
//! answer back into the guest; none of them decides what XNU does.
//!
//! - [`real`]: the host's own x86 CPU, on a Linux x86_64 host, under
//!   ptrace, with a seccomp filter that keeps every system call from Linux.
//! - [`emulated`]: unicorn, for arm64 images and for x86 images on any
//!   host; the guest's memory is unicorn's, not any host process's.
//! - [`debug`]: what both offer a debugger (`xnurun --gdb`).

pub mod debug;
pub mod emulated;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod real;
