//! Linux: the registers as a tracer sees them, the way a debugger reads
//! them. The process forks (`clone(SIGCHLD)` on aarch64, whose table has
//! no `fork`); the child asks to be traced (`PTRACE_TRACEME`) and stops
//! itself with `kill(getpid(), SIGSTOP)`; the parent waits for that stop
//! (`wait4`), reads the child's registers with `ptrace`, then kills the
//! child and reaps it. The values are what the kernel saved when the child
//! trapped into it for that `kill`: the signal stops the child on the way
//! back out, so the program counter is the instruction after the child's
//! trap, the call's number is still there (`orig_rax`, `orig_eax`; x8),
//! and the result register holds kill's 0.
//!
//! Where ptrace is missing (qemu-user emulates no ptrace: ENOSYS) the
//! child's `PTRACE_TRACEME` fails; the child exits with the errno as its
//! status, and the parent reports it.

use crate::Failure;
use crate::sys;

/// `struct user_regs_struct`, arch/x86/include/asm/user_64.h: the order
/// `PTRACE_GETREGS` writes them in.
#[cfg(target_arch = "x86_64")]
pub const NAMES: [&str; 27] = [
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax",
    "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
];

/// `struct user_regs_struct`, arch/x86/include/asm/user_32.h, in the
/// names user space knows them by (glibc's sys/user.h): what a 32-bit
/// tracer gets from `PTRACE_GETREGS`, 64-bit kernel or not.
#[cfg(target_arch = "x86")]
pub const NAMES: [&str; 17] = [
    "ebx", "ecx", "edx", "esi", "edi", "ebp", "eax", "xds", "xes", "xfs", "xgs", "orig_eax", "eip", "xcs", "eflags", "esp",
    "xss",
];

/// `struct user_pt_regs`, arch/arm64/include/uapi/asm/ptrace.h: x0-x30,
/// sp, pc, pstate, the `NT_PRSTATUS` register set.
#[cfg(target_arch = "aarch64")]
pub const NAMES: [&str; 34] = [
    "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16", "x17",
    "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x29", "x30", "sp", "pc", "pstate",
];

#[cfg(target_arch = "x86")]
pub const DIGITS: usize = 8;
#[cfg(not(target_arch = "x86"))]
pub const DIGITS: usize = 16;

/// Linux errors are errnos: shown in decimal.
pub const HEX_ERRORS: bool = false;

#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
pub const FROM: &[u8] = b"from: ptrace(PTRACE_GETREGS) in the parent, the tracer, on a child stopped by its own kill(getpid(), SIGSTOP)";
#[cfg(target_arch = "aarch64")]
pub const FROM: &[u8] =
    b"from: ptrace(PTRACE_GETREGSET, NT_PRSTATUS) in the parent, the tracer, on a child stopped by its own kill(getpid(), SIGSTOP)";

// include/uapi/linux/ptrace.h, arch/x86/include/uapi/asm/ptrace-abi.h,
// include/uapi/linux/elf.h, and the signal numbers x86 and asm-generic share.
const PTRACE_TRACEME: usize = 0;
const PTRACE_CONT: usize = 7;
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
const PTRACE_GETREGS: usize = 12;
#[cfg(target_arch = "aarch64")]
const PTRACE_GETREGSET: usize = 0x4204;
#[cfg(target_arch = "aarch64")]
const NT_PRSTATUS: usize = 1;
const SIGKILL: usize = 9;
const SIGSTOP: usize = 19;
const EPERM: i32 = 1;
const ENOSYS: i32 = 38;

/// The child's exit status when a call of its own failed: the errno (an
/// errno past 127 shows as 127: the status is a byte), with this bit set
/// when it was the kill, clear when it was `PTRACE_TRACEME`.
const KILL_FAILED: i32 = 0x80;

#[cfg(target_arch = "aarch64")]
const FORK: &[u8] = b"clone(SIGCHLD)";
#[cfg(not(target_arch = "aarch64"))]
const FORK: &[u8] = b"fork";

pub fn read(out: &mut [u64]) -> Result<(), Failure> {
    let pid = match sys::fork() {
        Ok(0) => child(),
        Ok(pid) => pid,
        Err(e) => return Err(failure(FORK, e)),
    };
    // From here on the child exists until a wait4 reaps it: every way out
    // kills and reaps it, unless wait4 already has.
    match stopped(pid) {
        Ok(()) => {
            let got = registers(pid, out);
            end(pid, got)
        }
        Err(Stop::Ended(f)) => Err(f),
        Err(Stop::Failed(f)) => end(pid, Err(f)),
    }
}

/// The child: it never returns into the parent's code.
fn child() -> ! {
    if let Err(e) = sys::call4(sys::PTRACE, PTRACE_TRACEME, 0, 0, 0) {
        sys::exit(e.clamp(1, 127));
    }
    let stop = match sys::call3_readonly(sys::GETPID, 0, 0, 0) {
        Ok(pid) => regs_stop_self(pid),
        Err(e) => Err(e),
    };
    if let Err(e) = stop {
        sys::exit(KILL_FAILED | e.clamp(1, 127));
    }
    // Running again: only if the parent went away without killing it (a
    // tracer's exit detaches its tracees). Nothing is left to do.
    sys::exit(0)
}

/// The child's `kill(getpid(), SIGSTOP)`, out of line and under a symbol
/// of its own, so that its one trap instruction can be found in the
/// binary (the examples keep their symbol table; build.rs strips hello
/// only): the stop comes on the way out of this call, so the program
/// counter the parent reads is the address just past that trap.
#[inline(never)]
#[unsafe(no_mangle)]
fn regs_stop_self(pid: usize) -> Result<usize, i32> {
    sys::call2_inline(sys::KILL, pid, SIGSTOP)
}

enum Stop {
    /// wait4 reaped the child: it exited or was killed before its stop.
    Ended(Failure),
    /// Something failed while the child may still be there.
    Failed(Failure),
}

/// Waits for the child's SIGSTOP. A stop for another signal that reached
/// it first (the terminal's SIGWINCH, say: the child shares the parent's
/// process group) is passed on, as a debugger does, and the wait goes on.
fn stopped(pid: usize) -> Result<(), Stop> {
    loop {
        let status = wait(pid).map_err(Stop::Failed)?;
        if status & 0xff != 0x7f {
            return Err(Stop::Ended(ended(status)));
        }
        let signal = (status >> 8) & 0xff;
        if signal == SIGSTOP {
            return Ok(());
        }
        if let Err(e) = sys::call4(sys::PTRACE, PTRACE_CONT, pid, 0, signal) {
            return Err(Stop::Failed(ptrace_failure(b"ptrace(PTRACE_CONT)", e)));
        }
    }
}

/// Why the child ended before it stopped, from its wait status: its own
/// failed call (its exit status, see `KILL_FAILED`), or a signal.
fn ended(status: usize) -> Failure {
    if status & 0x7f != 0 {
        return Failure { call: b"the child's stop", code: (status & 0x7f) as u64, hint: b" (a signal of this number killed it first)" };
    }
    let code = ((status >> 8) & 0xff) as i32;
    if code == 0 {
        Failure { call: b"the child's stop", code: 0, hint: b" (it exited with status 0 first)" }
    } else if code & KILL_FAILED != 0 {
        failure(b"kill(getpid(), SIGSTOP) in the child", code & !KILL_FAILED)
    } else {
        ptrace_failure(b"ptrace(PTRACE_TRACEME) in the child", code)
    }
}

/// `wait4(pid, &status, 0, NULL)`, again after EINTR: the status.
fn wait(pid: usize) -> Result<usize, Failure> {
    let mut status: i32 = 0;
    loop {
        match sys::call4(sys::WAIT4, pid, &mut status as *mut i32 as usize, 0, 0) {
            Ok(_) => return Ok(status as u32 as usize),
            Err(sys::EINTR) => {}
            Err(e) => return Err(failure(b"wait4", e)),
        }
    }
}

/// Kills the child and reaps it, whatever came before; the first failure
/// is the one reported.
fn end(pid: usize, got: Result<(), Failure>) -> Result<(), Failure> {
    let gone = match sys::call2_inline(sys::KILL, pid, SIGKILL) {
        // Not waited for: a stopped child that was not killed would keep
        // the wait going for ever.
        Err(e) => Err(failure(b"kill(child, SIGKILL)", e)),
        Ok(_) => wait(pid).map(|_| ()),
    };
    got.and(gone)
}

#[cfg(target_arch = "x86_64")]
fn registers(pid: usize, out: &mut [u64]) -> Result<(), Failure> {
    let mut regs = [0u64; NAMES.len()];
    sys::call4(sys::PTRACE, PTRACE_GETREGS, pid, 0, regs.as_mut_ptr() as usize)
        .map_err(|e| ptrace_failure(b"ptrace(PTRACE_GETREGS)", e))?;
    for (o, r) in out.iter_mut().zip(regs) {
        *o = r;
    }
    Ok(())
}

/// A 32-bit tracer gets the 32-bit struct, each field an `unsigned long`
/// of 4 bytes, even from a 64-bit kernel (compat_arch_ptrace).
#[cfg(target_arch = "x86")]
fn registers(pid: usize, out: &mut [u64]) -> Result<(), Failure> {
    let mut regs = [0u32; NAMES.len()];
    sys::call4(sys::PTRACE, PTRACE_GETREGS, pid, 0, regs.as_mut_ptr() as usize)
        .map_err(|e| ptrace_failure(b"ptrace(PTRACE_GETREGS)", e))?;
    for (o, r) in out.iter_mut().zip(regs) {
        *o = u64::from(r);
    }
    Ok(())
}

/// `PTRACE_GETREGSET` takes a `struct iovec` and shortens its length to
/// what it wrote.
#[cfg(target_arch = "aarch64")]
fn registers(pid: usize, out: &mut [u64]) -> Result<(), Failure> {
    let mut regs = [0u64; NAMES.len()];
    let mut iov = [regs.as_mut_ptr() as usize, core::mem::size_of_val(&regs)];
    sys::call4(sys::PTRACE, PTRACE_GETREGSET, pid, NT_PRSTATUS, iov.as_mut_ptr() as usize)
        .map_err(|e| ptrace_failure(b"ptrace(PTRACE_GETREGSET, NT_PRSTATUS)", e))?;
    if iov[1] != core::mem::size_of_val(&regs) {
        return Err(Failure {
            call: b"ptrace(PTRACE_GETREGSET, NT_PRSTATUS)",
            code: iov[1] as u64,
            hint: b" (bytes written: not a whole struct user_pt_regs)",
        });
    }
    for (o, r) in out.iter_mut().zip(regs) {
        *o = r;
    }
    Ok(())
}

fn failure(call: &'static [u8], errno: i32) -> Failure {
    Failure { call, code: errno as u64, hint: b"" }
}

fn ptrace_failure(call: &'static [u8], errno: i32) -> Failure {
    let hint: &[u8] = match errno {
        ENOSYS => b" (ENOSYS: no ptrace here; qemu-user does not emulate it)",
        EPERM => b" (EPERM: not allowed here, or the child is traced already)",
        _ => b"",
    };
    Failure { call, code: errno as u64, hint }
}
