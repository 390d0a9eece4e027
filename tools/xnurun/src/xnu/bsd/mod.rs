//! XNU's BSD class: the system-call table (`table`), the calls xnurun
//! answers (`calls`) and the faults `--fault` injects into them (`fault`).
//! Each architecture's convention turns an [`Outcome`] into registers.

pub mod calls;
pub mod fault;
pub mod table;

/// What a BSD call returns to the guest; each convention's `finish` turns
/// it into registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Success: the two values of `uu_rval`.
    Ok(u64, u64),
    /// Failure with this errno.
    Err(i32),
    /// ERESTART: the call is issued again (`pal_syscall_restart`).
    Restart,
}
