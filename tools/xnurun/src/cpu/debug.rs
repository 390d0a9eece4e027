//! What a debugger needs of a CPU, whichever runs the guest: its
//! registers in each architecture's own form, the guest's memory (only
//! what the guest itself has mapped), one instruction at a time, and a
//! run to a breakpoint, an interrupt or the end. A kernel entry is one
//! instruction: it is answered by the same [`crate::xnu`] code as in a
//! normal run, `--trace` line included, before the step ends.

use crate::xnu::arm64::convention::Regs as Arm64Regs;
use crate::xnu::end::End;
use crate::xnu::x86::state::X86State;
use std::os::fd::RawFd;

/// The registers as the guest sees them: x86 (an i386 task's in the low
/// halves) or arm64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registers {
    X86(X86State),
    Arm64(Arm64Regs),
}

/// Why the guest stopped.
#[derive(Debug)]
pub enum Stop {
    /// One instruction ran (or one kernel entry was answered).
    Stepped,
    /// At a breakpoint, before its instruction runs.
    Breakpoint,
    /// The debugger's connection had something to say while the guest
    /// ran (gdb's interrupt, or its going away).
    Interrupted,
    /// The run is over: the guest exited or died.
    Ended(End),
}

/// A guest under a debugger, stopped between instructions.
pub trait Debuggee {
    fn registers(&mut self) -> Registers;
    fn set_registers(&mut self, regs: &Registers);
    /// Reads guest memory at `addr`: the bytes that lie in the guest's own
    /// mappings, from the start; 0 when `addr` is in none of them.
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> usize;
    /// Writes guest memory, as far as the guest's mappings go (a debugger
    /// may write read-only code, as ptrace's POKETEXT does).
    fn write(&mut self, addr: u64, data: &[u8]) -> usize;
    fn step(&mut self) -> Stop;
    /// Runs until a breakpoint in `breakpoints` (not the one it stands on
    /// now), the end, or until `wake` (the debugger's connection) has
    /// something to read: [`Stop::Interrupted`], the bytes left unread.
    fn resume(&mut self, breakpoints: &[u64], wake: Option<RawFd>) -> Stop;
    /// Ends a run the debugger gave up on: the guest is killed.
    fn kill(&mut self) {}
}

/// Whether `fd` has something to read (or its end came) now, or within
/// `timeout_ms`.
pub fn readable(fd: RawFd, timeout_ms: i32) -> bool {
    let mut p = nix::libc::pollfd { fd, events: nix::libc::POLLIN, revents: 0 };
    // SAFETY: one pollfd, owned here.
    unsafe { nix::libc::poll(&mut p, 1, timeout_ms) > 0 }
}
