//! macOS (XNU) arm64: `svc #0x80`, number in `x16`, arguments in `x0`...,
//! error = carry flag set with the errno in `x0`.
//!
//! - `handle_svc` (osfmk/arm64/sleh.c) reads the call number from the saved
//!   `x16` alone (`get_saved_state_svc_number`); the `svc` immediate is not
//!   looked at. `0x80` is kept anyway: it is `SWI_SYSCALL`
//!   (osfmk/mach/arm/vm_param.h), what libsyscall's stubs encode. A
//!   negative `x16` is a Mach trap; anything else goes to `unix_syscall`
//!   (bsd/dev/arm/systemcalls.c), whose `arm_get_syscall_number` takes
//!   `(unsigned short)x16`: the plain BSD number, no class bits as on
//!   x86_64 (write is 4 and exit is 1 in bsd/kern/syscalls.master). `x16 = 0`
//!   would be the indirect `syscall(2)`, number in `x0`.
//! - `arm_get_u64_syscall_args` copies the arguments from the saved `x0`,
//!   `x1`, ... (up to `x7`).
//! - `arm_prepare_u64_syscall_return` writes `x0` **and `x1`** whatever
//!   happens: on error `x0` = errno, `x1` = 0 and the carry flag set; on
//!   success the carry flag clear (`arm_clear_syscall_error`), `x0` = the
//!   result and `x1` = 0 for `ssize_t` calls such as write (the second
//!   result for `int` calls). So neither the fd in `x0` nor the buffer
//!   pointer in `x1` survives a call: the loop keeps the fd in `x3` and the
//!   buffer in `x9` and copies them in before each `svc`. `x2` (the count)
//!   and `x16` come back untouched.
//! - `ERESTART` moves the saved pc back by 4 (`add_saved_state_pc(regs,
//!   -4)`) and touches no register: the same `svc` runs again with the same
//!   `x16` and arguments, so this layout needs nothing special for it.
//!
//! The image is a dyld executable, as XNU demands on arm64 (see build.rs):
//! dyld calls this entry (`LC_MAIN`) as `main(argc, argv, envp, apple)` with
//! a return address into dyld in `lr`. It never returns, so it reads none of
//! those arguments and needs no stack.

/// # Safety
///
/// Only the process's own start may reach this: dyld calls it as `main(argc,
/// argv, envp, apple)`, with `lr` into dyld, once, as the process's first
/// code of its own. It is never called from Rust, touches only its own
/// registers, the message and the stack the kernel gave it, and it never
/// returns: its last system call is `exit`.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        // fd 1 lives in x3, which the kernel gives back unchanged; 1 is also
        // the exit status of the failure path.
        "mov x3, #1",
        // Mach-O arm64 has no relocation for a lone `adr` to another
        // section: the page of the message, then its offset in the page.
        "adrp x9, {message}@PAGE",
        "add x9, x9, {message}@PAGEOFF",
        "mov x2, #14",
        "2:",
        "mov x0, x3",
        "mov x1, x9",
        "mov x16, #4", // SYS_write
        "svc #0x80",
        "b.cc 4f",
        // Carry set: x0 is a positive errno. EINTR (4): same write again.
        // Anything else: exit(1).
        "cmp x0, #4",
        "b.eq 2b",
        "b 3f",
        "4:",
        // Zero bytes taken would loop forever: treat it as a failure.
        "cbz x0, 3f",
        // Short write: carry on from where the kernel stopped.
        "add x9, x9, x0",
        "subs x2, x2, x0",
        "b.ne 2b",
        "mov x3, #0", // all 14 bytes written: status 0
        "3:",
        "mov x0, x3",
        "mov x16, #1", // SYS_exit
        "svc #0x80",
        message = sym crate::MESSAGE,
    )
}
