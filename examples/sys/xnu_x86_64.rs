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

/// A Mach trap (class 1, `0x1000000 | n`) with no arguments: its return.
pub fn mach_trap0(n: usize) -> usize {
    let r: usize;
    // SAFETY: a trap that reads and writes no user memory.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") 0x100_0000 | n => r, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    r
}

/// A Mach trap with up to eight arguments: six in registers and, as
/// `mach_call_munger64` (osfmk/i386/bsd_i386.c) copies them in, the rest
/// on the stack above a return-address slot, where a libsyscall stub's
/// caller would have left them.
pub fn mach_trap(n: usize, a: &[usize; 8]) -> usize {
    let r: usize;
    // SAFETY: the three pushes are undone before the asm ends; the trap
    // may write memory the arguments point at (a receive buffer).
    unsafe {
        core::arch::asm!("push qword ptr [{p} + 56]", "push qword ptr [{p} + 48]", "push rax", "syscall", "add rsp, 24",
            p = in(reg) a.as_ptr(), inlateout("rax") 0x100_0000 | n => r, in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5], lateout("rcx") _, lateout("r11") _);
    }
    r
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
