//! Linux aarch64: `svc #0`, number in `x8`, arguments in `x0 x1 x2`.
//!
//! `svc` from EL0 enters `el0_svc` (arch/arm64/kernel/entry-common.c), which
//! calls `do_el0_svc` (arch/arm64/kernel/syscall.c): it takes the call number
//! from the saved `x8` (`regs->regs[8]`) and nothing else; the `svc`
//! immediate is not looked at, and 0 is what every libc encodes.
//! `invoke_syscall` indexes `sys_call_table` with it and hands the saved
//! registers to the call, whose wrapper reads its arguments from `x0`-`x5`
//! (arch/arm64/include/asm/syscall_wrapper.h). The result goes back into `x0`
//! alone (`syscall_set_return_value`): an error is `-errno`, a value in
//! `-4095..=-1`, with no separate error flag, as on x86_64. Every other
//! register is restored as it was on the way out (`kernel_exit`,
//! arch/arm64/kernel/entry.S), so the pointer in `x1` and the count in `x2`
//! survive the call; only the fd in `x0` has to be put back each time.
//!
//! A call a signal interrupted and the kernel restarts (`-ERESTARTSYS` and
//! friends) is wound back in `arch_do_signal_or_restart`
//! (arch/arm64/kernel/signal.c; `do_signal` in older kernels): `x0`
//! gets its entry value back (`orig_x0`, saved by `el0_svc_common`) and the
//! pc moves back 4 bytes to the `svc`. Nothing here depends on that.

/// `__NR_write` (64) and `__NR_exit` (93) in include/uapi/asm-generic/unistd.h:
/// arm64 has no table of its own but the generic one that newer
/// architectures share, laid out afresh, so neither the V7 numbers (4, 1) nor
/// x86_64's (1, 60). `exit` rather than `exit_group` (94): one thread.
///
/// # Safety
///
/// Only the process's own start may reach this: the kernel starts the process
/// here (`e_entry`) with `sp` on argc and no return address. It is never
/// called from Rust, touches only its own registers, the message and the
/// stack the kernel gave it, and it never returns: its last system call is
/// `exit`.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        // fd 1 lives in x3, which the kernel gives back unchanged; 1 is also
        // the exit status of the failure path below.
        "mov x3, #1",
        // pc-relative, within ±1 MiB: the message sits right after the code,
        // in the same section, so one `adr` reaches it (R_AARCH64_ADR_PREL_LO21)
        // and the code works wherever the image is loaded.
        "adr x1, {message}",
        "mov x2, #14",
        "2:",
        // x0 comes back as the result, so the fd goes in afresh each time.
        "mov x0, x3",
        "mov x8, #64", // __NR_write
        "svc #0",
        // -EINTR: a signal arrived before anything was written; same call again.
        "cmn x0, #4",
        "b.eq 2b",
        // Negative: any other error. Zero: the kernel took nothing, and
        // asking again would loop forever. Both leave with status x3 = 1.
        "cmp x0, #0",
        "b.le 3f",
        // Short write: carry on from where the kernel stopped.
        "add x1, x1, x0",
        "subs x2, x2, x0",
        "b.ne 2b",
        "mov x3, #0", // all 14 bytes written: status 0
        "3:",
        "mov x0, x3",
        "mov x8, #93", // __NR_exit
        "svc #0",
        message = sym crate::MESSAGE,
    )
}
