//! XNU x86_64: `syscall`, rax = 0x2000000 | number (class 2, BSD: read 3,
//! write 4, exit 1), arguments rdi rsi rdx, error = CF set with the errno in
//! rax; rdx holds the second return value afterwards (`unix_syscall64`,
//! bsd/dev/i386/systemcalls.c), and the instruction overwrites rcx and r11.

pub const CONVENTION: &str = "XNU x86_64";

// No `preserves_flags`: the carry flag is the error report.

/// A call that may write memory (`read`).
pub fn call3(n: usize, a: usize, b: usize, c: usize) -> Result<usize, i32> {
    let r: usize;
    let failed: u8;
    // SAFETY: a system call that writes only the buffer passed.
    unsafe {
        core::arch::asm!("syscall", "setc {f}", f = lateout(reg_byte) failed, inlateout("rax") 0x200_0000 | n => r,
            in("rdi") a, in("rsi") b, inlateout("rdx") c => _, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    if failed != 0 { Err(r as i32) } else { Ok(r) }
}

/// A call that only reads memory (`write`).
pub fn call3_readonly(n: usize, a: usize, b: usize, c: usize) -> Result<usize, i32> {
    let r: usize;
    let failed: u8;
    // SAFETY: a system call that only reads the buffer passed.
    unsafe {
        core::arch::asm!("syscall", "setc {f}", f = lateout(reg_byte) failed, inlateout("rax") 0x200_0000 | n => r,
            in("rdi") a, in("rsi") b, inlateout("rdx") c => _, lateout("rcx") _, lateout("r11") _, options(nostack, readonly));
    }
    if failed != 0 { Err(r as i32) } else { Ok(r) }
}

pub fn exit(status: usize) -> ! {
    // SAFETY: exit does not return.
    unsafe { core::arch::asm!("syscall", in("rax") 0x200_0000 | EXIT, in("rdi") status, options(noreturn, nostack)) }
}

pub const READ: usize = 3;
pub const WRITE: usize = 4;
pub const EXIT: usize = 1;

/// A static image starts with `rsp` on argc (no dyld, no `main`).
///
/// # Safety
///
/// Only the process's own start may reach this: the kernel starts the thread
/// here (`LC_UNIXTHREAD`'s `rip`) with `rsp` on argc and no return address.
/// It is never called from Rust, hands the kernel's arrays to ordinary Rust,
/// and it never returns: the Rust it calls ends in `exit`.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!("mov rdi, rsp", "and rsp, -16", "call {s}", "ud2", s = sym super::start_from_stack)
}
