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

/// A Mach trap: a negative `eax` through `sysenter`, with the arguments
/// on the stack one word above the stack pointer in `ecx`, as
/// `mach_call_munger` (osfmk/i386/bsd_i386.c) copies them in, and the
/// return address in `edx` (libsyscall's `__sysenter_trap`).
pub fn mach_trap(n: usize, a: &[usize; 8]) -> usize {
    let r: usize;
    // SAFETY: the nine pushed words are popped before the asm ends (the
    // call's own by `pop edx`); the trap may write memory the arguments
    // point at (a receive buffer).
    unsafe {
        core::arch::asm!(
            "push dword ptr [{p} + 28]", "push dword ptr [{p} + 24]", "push dword ptr [{p} + 20]", "push dword ptr [{p} + 16]",
            "push dword ptr [{p} + 12]", "push dword ptr [{p} + 8]", "push dword ptr [{p} + 4]", "push dword ptr [{p}]",
            "push eax", "call 5f", "jmp 6f",
            "5:", "pop edx", "mov ecx, esp", "sysenter",
            "6:", "add esp, 36",
            p = in(reg) a.as_ptr(), inlateout("eax") n.wrapping_neg() => r, lateout("ecx") _, lateout("edx") _);
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
