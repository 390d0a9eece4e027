//! Linux i386: `int 0x80`, number in `eax`, arguments in `ebx ecx edx`.
//!
//! Vector 0x80 enters `entry_INT80_32` (arch/x86/entry/entry_32.S) and
//! `do_int80_syscall_32` on a 32-bit kernel; on a 64-bit one such as this
//! machine's, `do_int80_emulation` (arch/x86/entry/syscall_32.c, Linux 6.18;
//! before 6.7 the assembly `entry_INT80_compat`). Each indexes `ia32_sys_call_table` with
//! `eax` and takes the arguments from `ebx ecx edx esi edi ebp`. An error
//! comes back as `-errno` in `eax`; all other registers are preserved.
//!
//! write is 4 and exit is 1, the same numbers as XNU's BSD table: both keep
//! the numbers of the oldest Unix calls, which go back to V7 Unix and which
//! the BSDs' syscalls.master and Linux's i386 table alike preserved; the
//! x86_64 Linux table was laid out afresh.
//!
//! `sysenter` is no use here: Linux expects it only from the vDSO's
//! `__kernel_vsyscall`, reads the user stack pointer from `ebp` and resumes
//! at the vDSO's landing pad, not at any address the program chooses
//! (`entry_SYSENTER_compat`, `do_fast_syscall_32`).
/// # Safety
///
/// Only the process's own start may reach this: the kernel starts the process
/// here (`e_entry`) with `esp` on argc and no return address. It is never
/// called from Rust, touches only its own registers, the message and the
/// stack the kernel gave it, and it never returns: its last system call is
/// `exit`.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        // fd 1 stays in ebx for the whole program; 1 is also the exit status
        // of the failure path below.
        "push 1",
        "pop ebx",
        // i386 has no EIP-relative addressing: an absolute address, fixed up
        // by the linker (R_386_32) since the image is not position-independent.
        "mov ecx, offset {message}",
        "push 14",
        "pop edx",
        "2:",
        "push 4", // __NR_write
        "pop eax",
        "int 0x80",
        // -EINTR: a signal arrived before anything was written; same call again.
        "cmp eax, -4",
        "je 2b",
        // Negative: any other error. Zero: nothing taken, and asking again
        // would loop forever. Both leave with status ebx = 1.
        "test eax, eax",
        "jle 3f",
        // Short write: carry on from where the kernel stopped.
        "add ecx, eax",
        "sub edx, eax",
        "jnz 2b",
        "xor ebx, ebx", // all 14 bytes written: status 0
        "3:",
        "push 1", // __NR_exit
        "pop eax",
        "int 0x80",
        message = sym crate::MESSAGE,
    )
}
