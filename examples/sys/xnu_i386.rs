//! XNU i386: number in eax (read 3, write 4, exit 1), arguments on the
//! stack one word above the stack pointer `unix_syscall` is given
//! (bsd/dev/i386/systemcalls.c), error = CF set with the errno in eax; edx
//! holds the second return value afterwards. These calls use `int 0x80`,
//! XNU's other 32-bit gate, with the real stack pointer: unlike `sysenter`
//! (hello's choice) it needs no return address in edx.

pub const CONVENTION: &str = "XNU i386";

// Not `nostack`: the arguments are pushed. No `preserves_flags`: the carry
// flag is the error report.

/// A call that may write memory (`read`).
pub fn call3(n: usize, a: usize, b: usize, c: usize) -> Result<usize, i32> {
    let r: usize;
    let failed: usize;
    // SAFETY: the four pushes are undone before the asm ends; the call
    // writes only the buffer passed.
    unsafe {
        core::arch::asm!("push {c}", "push {b}", "push {a}", "push eax", "int 0x80", "setc cl", "movzx ecx, cl", "add esp, 16",
            a = in(reg) a, b = in(reg) b, c = in(reg) c, inlateout("eax") n => r, lateout("ecx") failed, lateout("edx") _);
    }
    if failed != 0 { Err(r as i32) } else { Ok(r) }
}

/// A call that only reads memory (`write`): the pushes write only the
/// asm's own stack space.
pub fn call3_readonly(n: usize, a: usize, b: usize, c: usize) -> Result<usize, i32> {
    let r: usize;
    let failed: usize;
    // SAFETY: as `call3`; the call only reads the buffer passed.
    unsafe {
        core::arch::asm!("push {c}", "push {b}", "push {a}", "push eax", "int 0x80", "setc cl", "movzx ecx, cl", "add esp, 16",
            a = in(reg) a, b = in(reg) b, c = in(reg) c, inlateout("eax") n => r, lateout("ecx") failed, lateout("edx") _,
            options(readonly));
    }
    if failed != 0 { Err(r as i32) } else { Ok(r) }
}

pub fn exit(status: usize) -> ! {
    // SAFETY: exit does not return; the pushed words are never popped.
    unsafe { core::arch::asm!("push {s}", "push eax", "int 0x80", s = in(reg) status, in("eax") EXIT, options(noreturn)) }
}

pub const READ: usize = 3;
pub const WRITE: usize = 4;
pub const EXIT: usize = 1;

/// # Safety
///
/// Only the process's own start may reach this: the kernel starts the thread
/// here (`LC_UNIXTHREAD`'s `eip`) with `esp` on argc and no return address.
/// It is never called from Rust, hands the kernel's arrays to ordinary Rust,
/// and it never returns: the Rust it calls ends in `exit`.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!("mov eax, esp", "and esp, -16", "sub esp, 12", "push eax", "call {s}", "ud2", s = sym super::start_from_stack)
}
