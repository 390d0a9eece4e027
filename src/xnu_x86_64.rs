//! macOS (XNU) x86_64: `syscall`, `rax = 0x2000000 | number`, arguments in
//! `rdi rsi rdx r10`, error = carry flag set with the errno in `rax`.
//!
//! - The top byte of `rax` is the system-call class
//!   (osfmk/mach/i386/syscall_sw.h: `SYSCALL_CLASS_SHIFT` 24,
//!   `SYSCALL_CLASS_UNIX` 2). `hndl_syscall` (osfmk/x86_64/idt64.s) sends
//!   class 2 to `unix_syscall64` (bsd/dev/i386/systemcalls.c), which masks
//!   the class off and indexes `sysent` with the rest: write is 4 and exit is
//!   1 in bsd/kern/syscalls.master. Without the class (a Linux-style
//!   `mov eax, 1`) the kernel raises `EXC_SYSCALL` and the process dies of
//!   SIGSYS.
//! - `unix_syscall64` copies the arguments out of the saved `rdi rsi rdx r10
//!   r8 r9`; `r10` stands in for `rcx`, which the `syscall` instruction
//!   overwrites with the return address (and `r11` with `rflags`).
//! - On error it sets `EFL_CF` and puts the positive errno in `rax`. On
//!   success it clears CF, puts the result in `rax` and **writes `rdx`**
//!   too: the second result (`uu_rval[1]`) for calls that return two, a
//!   plain 0 for `ssize_t` calls such as write. So the count we pass in
//!   `rdx` does not survive the call: the bytes still to write live in
//!   `rbx`, which the kernel restores untouched.
//! - An interrupted call that must restart (`ERESTART`) resumes at `rip - 2`
//!   (`pal_syscall_restart`, osfmk/i386/pal_routines.c) with the saved
//!   registers unchanged: the same `syscall` with the same `rax` and
//!   arguments runs again, so this layout needs nothing special for it.

/// # Safety
///
/// Only the process's own start may reach this: the kernel starts the thread
/// here (`LC_UNIXTHREAD`'s `rip`) with `rsp` on argc and no return address.
/// It is never called from Rust, touches only its own registers, the message
/// and the stack the kernel gave it, and it never returns: its last system
/// call is `exit`.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        // fd 1 stays in rdi: the kernel gives it back unchanged, and 1 is
        // also the exit status of the failure path.
        "push 1",
        "pop rdi",
        "lea rsi, [rip + {message}]",
        "push 14",
        "pop rbx",
        "2:",
        "mov rdx, rbx",
        "mov eax, 0x2000004", // SYSCALL_CONSTRUCT_UNIX(SYS_write)
        "syscall",
        "jnc 4f",
        // Carry set: rax is a positive errno. EINTR (4): same write again.
        // Anything else: exit(1).
        "cmp eax, 4",
        "je 2b",
        "jmp 3f",
        "4:",
        // Zero bytes taken would loop forever: treat it as a failure.
        "test rax, rax",
        "jz 3f",
        // Short write: carry on from where the kernel stopped.
        "add rsi, rax",
        "sub rbx, rax",
        "jnz 2b",
        "xor edi, edi", // all 14 bytes written: status 0
        "3:",
        "mov eax, 0x2000001", // SYSCALL_CONSTRUCT_UNIX(SYS_exit)
        "syscall",
        message = sym crate::MESSAGE,
    )
}
