//! XNU i386: number in eax (read 3, write 4, exit 1), arguments on the
//! stack one word above the stack pointer `unix_syscall` is given
//! (bsd/dev/i386/systemcalls.c), error = CF set with the errno in eax; edx
//! holds the second return value afterwards. These calls use `int 0x80`,
//! XNU's other 32-bit gate, with the real stack pointer: unlike `sysenter`
//! (hello's choice) it needs no return address in edx.

pub const CONVENTION: &str = "XNU i386";

pub fn call3(n: usize, a: usize, b: usize, c: usize) -> Result<usize, i32> {
    let r: usize;
    let failed: usize;
    // SAFETY: the four pushes are undone before the asm ends; the call
    // reads or writes only the buffer passed.
    unsafe {
        core::arch::asm!("push {c}", "push {b}", "push {a}", "push eax", "int 0x80", "setc cl", "movzx ecx, cl", "add esp, 16",
            a = in(reg) a, b = in(reg) b, c = in(reg) c, inlateout("eax") n => r, lateout("ecx") failed, lateout("edx") _);
    }
    if failed != 0 { Err(r as i32) } else { Ok(r) }
}

pub const READ: usize = 3;
pub const WRITE: usize = 4;
pub const EXIT: usize = 1;

#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!("mov eax, esp", "and esp, -16", "sub esp, 12", "push eax", "call {s}", "ud2", s = sym super::start_from_stack)
}
