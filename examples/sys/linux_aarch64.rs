//! Linux aarch64: `svc #0`, number in x8 (read 63, write 64, exit 93),
//! arguments x0-x2, result or -errno in x0 (`do_el0_svc`,
//! arch/arm64/kernel/syscall.c).

pub const CONVENTION: &str = "Linux aarch64";

pub fn call3(n: usize, a: usize, b: usize, c: usize) -> Result<usize, i32> {
    let r: isize;
    // SAFETY: a system call that reads or writes only the buffer passed.
    unsafe {
        core::arch::asm!("svc #0", in("x8") n, inlateout("x0") a => r, in("x1") b, in("x2") c, options(nostack));
    }
    if r < 0 { Err(-r as i32) } else { Ok(r as usize) }
}

pub const READ: usize = 63;
pub const WRITE: usize = 64;
pub const EXIT: usize = 93;

#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!("mov x0, sp", "bl {s}", "brk #0", s = sym super::start_from_stack)
}
