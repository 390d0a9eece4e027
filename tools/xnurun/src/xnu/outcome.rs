//! What a kernel entry gives back, before a convention turns it into
//! registers.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A BSD call's success: the two values of `uu_rval`, carry clear.
    Ok(u64, u64),
    /// A BSD call's failure with this errno, carry set.
    Err(i32),
    /// ERESTART: the call is issued again (`pal_syscall_restart`).
    Restart,
    /// A Mach trap's or machine-dependent call's return: the return
    /// register alone (`regs->eax = retval`), the flags untouched.
    Value(u64),
    /// Back past the kernel entry with every register as it was: an
    /// EXC_SYSCALL that no signal followed (up to xnu-8019).
    Unchanged,
}
