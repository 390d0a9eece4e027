//! XNU x86_64: `syscall`, rax = 0x2000000 | number (class 2, BSD: read 3,
//! write 4, exit 1), arguments rdi rsi rdx, error = CF set with the errno in
//! rax; rdx holds the second return value afterwards (`unix_syscall64`,
//! bsd/dev/i386/systemcalls.c), and the instruction overwrites rcx and r11.

pub const CONVENTION: &str = "XNU x86_64";

pub fn call3(n: usize, a: usize, b: usize, c: usize) -> Result<usize, i32> {
    let r: usize;
    let failed: u8;
    // SAFETY: a system call that reads or writes only the buffer passed.
    unsafe {
        core::arch::asm!("syscall", "setc {f}", f = lateout(reg_byte) failed, inlateout("rax") 0x200_0000 | n => r,
            in("rdi") a, in("rsi") b, inlateout("rdx") c => _, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    if failed != 0 { Err(r as i32) } else { Ok(r) }
}

pub const READ: usize = 3;
pub const WRITE: usize = 4;
pub const EXIT: usize = 1;

/// A static image starts with `rsp` on argc (no dyld, no `main`).
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!("mov rdi, rsp", "and rsp, -16", "call {s}", "ud2", s = sym super::start_from_stack)
}
