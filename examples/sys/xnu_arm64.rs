//! XNU arm64: `svc #0x80`, number in x16 (read 3, write 4, exit 1),
//! arguments x0-x2, error = carry set with the errno in x0; x1 is
//! overwritten on every return (`arm_prepare_u64_syscall_return`,
//! bsd/dev/arm/systemcalls.c).

pub const CONVENTION: &str = "XNU arm64";

// No `preserves_flags`: the carry flag is the error report.

/// A call that may write memory (`read`).
pub fn call3(n: usize, a: usize, b: usize, c: usize) -> Result<usize, i32> {
    let r: usize;
    let failed: usize;
    // SAFETY: a system call that writes only the buffer passed.
    unsafe {
        core::arch::asm!("svc #0x80", "cset {f}, cs", f = lateout(reg) failed, in("x16") n, inlateout("x0") a => r,
            inlateout("x1") b => _, in("x2") c, options(nostack));
    }
    if failed != 0 { Err(r as i32) } else { Ok(r) }
}

/// A call that only reads memory (`write`).
pub fn call3_readonly(n: usize, a: usize, b: usize, c: usize) -> Result<usize, i32> {
    let r: usize;
    let failed: usize;
    // SAFETY: a system call that only reads the buffer passed.
    unsafe {
        core::arch::asm!("svc #0x80", "cset {f}, cs", f = lateout(reg) failed, in("x16") n, inlateout("x0") a => r,
            inlateout("x1") b => _, in("x2") c, options(nostack, readonly));
    }
    if failed != 0 { Err(r as i32) } else { Ok(r) }
}

pub fn exit(status: usize) -> ! {
    // SAFETY: exit does not return.
    unsafe { core::arch::asm!("svc #0x80", in("x16") EXIT, in("x0") status, options(noreturn, nostack)) }
}

/// A Mach trap: `x16` = -n, arguments in x0-x7, the return in x0
/// (`mach_syscall`, osfmk/arm64/bsd_arm64.c).
pub fn mach_trap(n: usize, a: &[usize; 8]) -> usize {
    let r: usize;
    // SAFETY: the trap may write memory the arguments point at (a receive
    // buffer); it writes no register but x0.
    unsafe {
        core::arch::asm!("svc #0x80", in("x16") n.wrapping_neg(), inlateout("x0") a[0] => r, in("x1") a[1], in("x2") a[2],
            in("x3") a[3], in("x4") a[4], in("x5") a[5], in("x6") a[6], in("x7") a[7], options(nostack));
    }
    r
}

/// A Mach trap with no arguments.
pub fn mach_trap0(n: usize) -> usize {
    mach_trap(n, &[0; 8])
}

pub const READ: usize = 3;
pub const WRITE: usize = 4;
pub const EXIT: usize = 1;

/// dyld calls LC_MAIN's entry as `main(argc, argv, envp, apple)`: the four
/// arrays arrive in x0-x3 and go straight on.
///
/// # Safety
///
/// Only the process's own start may reach this: dyld calls it as `main(argc,
/// argv, envp, apple)`, with `lr` into dyld, once, as the process's first
/// code of its own. It is never called from Rust, hands the kernel's arrays
/// to ordinary Rust, and it never returns: the Rust it calls ends in `exit`.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!("bl {s}", "brk #0", s = sym super::start_from_dyld)
}
