//! Linux aarch64: `svc #0`, number in x8 (read 63, write 64, exit 93),
//! arguments x0-x2, result or -errno in x0 (`do_el0_svc`,
//! arch/arm64/kernel/syscall.c).

pub const CONVENTION: &str = "Linux aarch64";

// Linux gives NZCV back as it was: `preserves_flags`, as rustix's
// linux_raw/arch/aarch64.rs.

/// A call that may write memory (`read`).
pub fn call3(n: usize, a: usize, b: usize, c: usize) -> Result<usize, i32> {
    let r: isize;
    // SAFETY: a system call that writes only the buffer passed.
    unsafe {
        core::arch::asm!("svc #0", in("x8") n, inlateout("x0") a => r, in("x1") b, in("x2") c, options(nostack, preserves_flags));
    }
    if r < 0 { Err(-r as i32) } else { Ok(r as usize) }
}

/// A call that only reads memory (`write`).
pub fn call3_readonly(n: usize, a: usize, b: usize, c: usize) -> Result<usize, i32> {
    let r: isize;
    // SAFETY: a system call that only reads the buffer passed.
    unsafe {
        core::arch::asm!("svc #0", in("x8") n, inlateout("x0") a => r, in("x1") b, in("x2") c, options(nostack, preserves_flags, readonly));
    }
    if r < 0 { Err(-r as i32) } else { Ok(r as usize) }
}

/// A call of four arguments that may write memory (`wait4`'s status,
/// `ptrace`'s register set).
pub fn call4(n: usize, a: usize, b: usize, c: usize, d: usize) -> Result<usize, i32> {
    let r: isize;
    // SAFETY: a system call that writes only the memory its arguments name.
    unsafe {
        core::arch::asm!("svc #0", in("x8") n, inlateout("x0") a => r, in("x1") b, in("x2") c, in("x3") d, options(nostack, preserves_flags));
    }
    if r < 0 { Err(-r as i32) } else { Ok(r as usize) }
}

/// `fork` as the asm-generic table has it (no `fork` there):
/// `clone(SIGCHLD, 0, NULL, 0, NULL)`, no flags, no new stack. It returns
/// twice: the child's pid in the parent, 0 in the child, a copy of the
/// parent that goes on from the same instruction.
pub fn fork() -> Result<usize, i32> {
    let r: isize;
    // SAFETY: the child runs in a copy of this address space; neither
    // process's memory changes under it.
    unsafe {
        core::arch::asm!("svc #0", in("x8") CLONE, inlateout("x0") SIGCHLD => r, in("x1") 0usize, in("x2") 0usize, in("x3") 0usize, in("x4") 0usize,
            options(nostack, preserves_flags));
    }
    if r < 0 { Err(-r as i32) } else { Ok(r as usize) }
}

/// A call that only reads memory, always inlined: the trap sits in the
/// caller's own code, so a caller kept out of line (`regs_stop_self`) holds
/// the one trap instruction its name promises.
#[inline(always)]
pub fn call2_inline(n: usize, a: usize, b: usize) -> Result<usize, i32> {
    let r: isize;
    // SAFETY: a system call that only reads its arguments.
    unsafe {
        core::arch::asm!("svc #0", in("x8") n, inlateout("x0") a => r, in("x1") b, options(nostack, preserves_flags, readonly));
    }
    if r < 0 { Err(-r as i32) } else { Ok(r as usize) }
}

pub fn exit(status: usize) -> ! {
    // SAFETY: exit does not return.
    unsafe { core::arch::asm!("svc #0", in("x8") EXIT, in("x0") status, options(noreturn, nostack)) }
}

pub const READ: usize = 63;
pub const WRITE: usize = 64;
pub const EXIT: usize = 93;
pub const PTRACE: usize = 117;
pub const KILL: usize = 129;
pub const GETPID: usize = 172;
pub const CLONE: usize = 220;
pub const WAIT4: usize = 260;
/// clone's exit signal: the parent hears of the child as of a forked one.
const SIGCHLD: usize = 17;

/// # Safety
///
/// Only the process's own start may reach this: the kernel starts the process
/// here (`e_entry`) with `sp` on argc and no return address. It is never
/// called from Rust, hands the kernel's arrays to ordinary Rust, and it never
/// returns: the Rust it calls ends in `exit`.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!("mov x0, sp", "bl {s}", "brk #0", s = sym super::start_from_stack)
}
