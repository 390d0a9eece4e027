//! macOS (XNU) i386: `sysenter`, number in `eax`, arguments on the user stack
//! one word above the pointer passed in `ecx`, resume address in `edx`,
//! error = carry flag set with the errno in `eax`.
//!
//! - `sysenter` saves neither a return address nor a stack pointer, so XNU
//!   defines both: `idt64_sysenter` (osfmk/x86_64/idt64.s) records `ecx` as
//!   the user stack pointer and `edx` as the user `eip`.
//! - `unix_syscall` (bsd/dev/i386/systemcalls.c) takes the number from
//!   `eax & 0xFFFF` and copies the arguments from `uesp + sizeof(int)`: the
//!   word at `ecx` itself is skipped. In libc that word is the return address
//!   of the C call into the stub (`write()` → `_write`), and the arguments
//!   the C caller pushed sit above it.
//! - The return path `L_rtu_via_sysexit` (idt64.s) loads `eip` from the
//!   saved `edx` and `esp` from the saved `ecx`; both registers come back
//!   holding those values. CF and `eax` carry the outcome.
//! - An interrupted call that must restart (`ERESTART`) resumes at
//!   `edx - 5` (`pal_syscall_restart`, osfmk/i386/pal_routines.c) with `esp`
//!   = `ecx` and `eax` unchanged: XNU assumes the 5-byte `call` to libc's
//!   `__sysenter_trap` (libsyscall/custom/custom.s: `pop %edx; mov %esp,%ecx;
//!   sysenter`). This file uses exactly that shape, so a restart re-issues
//!   the same call with the same arguments.
//!
//! The stack while a call is in the kernel:
//!
//! ```text
//!   esp+12  count   (write)
//!   esp+8   buf     (write)
//!   esp+4   fd      (write) / status (exit)
//!   esp     dummy word  <- ecx; unix_syscall reads from ecx + 4
//! ```

/// # Safety
///
/// Only the process's own start may reach this: the kernel starts the thread
/// here (`LC_UNIXTHREAD`'s `eip`) with `esp` on argc and no return address.
/// It is never called from Rust, touches only its own registers, the message
/// and the stack the kernel gave it, and it never returns: its last system
/// call is `exit`.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        // write(1, MESSAGE, 14), pushed right to left, then the dummy word.
        // The address goes through eax: LLVM assembles `push offset sym`
        // as a 16-bit `pushw`, which would push 2 bytes, not 4.
        "push 14",
        "mov eax, offset {message}",
        "push eax",
        "push 1",
        "push eax",
        "2:",
        "mov eax, 4", // SYS_write
        // The 5-byte call that a restart at edx - 5 comes back to.
        "call 5f",
        // Back from sysexit: esp points at the dummy word again.
        "jnc 3f",
        // Carry set: eax is a positive errno. EINTR (4): same write again.
        // Anything else: exit with the 1 still in the fd slot.
        "cmp eax, 4",
        "je 2b",
        "jmp 4f",
        "3:",
        // Zero bytes taken would loop forever: treat it as a failure.
        "test eax, eax",
        "jz 4f",
        // Short write: move buf on and count down, in place on the stack.
        "add dword ptr [esp + 8], eax",
        "sub dword ptr [esp + 12], eax",
        "jnz 2b",
        // All 14 bytes written: the fd slot becomes exit's status, 0.
        "and dword ptr [esp + 4], 0",
        "4:",
        "mov eax, 1", // SYS_exit
        "call 5f",
        // libsyscall's __sysenter_trap: the return address of the call is
        // where the kernel resumes (edx), and the stack pointer left after
        // popping it points at the dummy word (ecx).
        "5:",
        "pop edx",
        "mov ecx, esp",
        "sysenter",
        message = sym crate::MESSAGE,
    )
}
