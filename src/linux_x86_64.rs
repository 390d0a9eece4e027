//! Linux x86_64: `syscall`, number in `rax`, arguments in `rdi rsi rdx`.
//!
//! The kernel side is `entry_SYSCALL_64` (arch/x86/entry/entry_64.S), which
//! saves the user registers as a `struct pt_regs` and calls `do_syscall_64`
//! (arch/x86/entry/syscall_64.c); that indexes `sys_call_table` with `rax`
//! and passes `rdi rsi rdx r10 r8 r9` as the arguments. The result comes back
//! in `rax`: an error is `-errno`, a value in `-4095..=-1`, and there is no
//! separate error flag. The `syscall` instruction itself overwrites `rcx`
//! (return `rip`) and `r11` (`rflags`); every other register comes back as it
//! went in, so the count in `rdx` and the pointer in `rsi` survive the call.

/// `__NR_write` and `__NR_exit` in arch/x86/entry/syscalls/syscall_64.tbl.
/// They are not the BSD numbers: the 64-bit table was laid out afresh in 2001.
/// `exit` rather than `exit_group` (231): one thread, and `push 60` is two
/// bytes shorter than `mov eax, 231`.
///
/// # Safety
///
/// Only the process's own start may reach this: the kernel starts the process
/// here (`e_entry`) with `rsp` on argc and no return address. It is never
/// called from Rust, touches only its own registers, the message and the
/// stack the kernel gave it, and it never returns: its last system call is
/// `exit`.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        // fd 1 stays in rdi for the whole program: `syscall` preserves it,
        // and 1 is also the exit status of the failure path below.
        "push 1",
        "pop rdi",
        // RIP-relative: the code works wherever the image is loaded.
        "lea rsi, [rip + {message}]",
        "push 14",
        "pop rdx",
        "2:",
        "push 1", // __NR_write
        "pop rax",
        "syscall",
        // -EINTR: a signal arrived before anything was written; same call again.
        "cmp rax, -4",
        "je 2b",
        // Negative: any other error. Zero: the kernel took nothing, and
        // asking again would loop forever. Both leave with status rdi = 1.
        "test rax, rax",
        "jle 3f",
        // Short write: carry on from where the kernel stopped.
        "add rsi, rax",
        "sub rdx, rax",
        "jnz 2b",
        "xor edi, edi", // all 14 bytes written: status 0
        "3:",
        "push 60", // __NR_exit
        "pop rax",
        "syscall",
        message = sym crate::MESSAGE,
    )
}
