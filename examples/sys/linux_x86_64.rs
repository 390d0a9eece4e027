//! Linux x86_64: `syscall`, number in rax (read 0, write 1, exit 60),
//! arguments rdi rsi rdx, result or -errno in rax; the instruction itself
//! overwrites rcx and r11 (`entry_SYSCALL_64`, arch/x86/entry/entry_64.S).

pub const CONVENTION: &str = "Linux x86_64";

pub fn call3(n: usize, a: usize, b: usize, c: usize) -> Result<usize, i32> {
    let r: isize;
    // SAFETY: a system call that reads or writes only the buffer passed.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") n => r, in("rdi") a, in("rsi") b, in("rdx") c,
            lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    if r < 0 { Err(-r as i32) } else { Ok(r as usize) }
}

pub const READ: usize = 0;
pub const WRITE: usize = 1;
pub const EXIT: usize = 60;

/// The kernel's stack pointer to Rust, 16-byte aligned as the ABI wants.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!("mov rdi, rsp", "and rsp, -16", "call {s}", "ud2", s = sym super::start_from_stack)
}
