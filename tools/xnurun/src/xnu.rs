//! XNU's numbers as the guest sees them: errno values (bsd/sys/errno.h) and
//! signal numbers (bsd/sys/signal.h), and how the host's map onto them.

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

pub const EPERM: i32 = 1;
pub const EINTR: i32 = 4;
pub const EIO: i32 = 5;
pub const EBADF: i32 = 9;
pub const EFAULT: i32 = 14;
pub const EINVAL: i32 = 22;
pub const ENOSPC: i32 = 28;
pub const EPIPE: i32 = 32;
pub const EAGAIN: i32 = 35;
pub const ENOSYS: i32 = 78;

/// Name and strerror text of an XNU errno, for the trace.
pub fn errno_name(e: i32) -> (&'static str, &'static str) {
    match e {
        1 => ("EPERM", "Operation not permitted"),
        4 => ("EINTR", "Interrupted system call"),
        5 => ("EIO", "Input/output error"),
        6 => ("ENXIO", "Device not configured"),
        9 => ("EBADF", "Bad file descriptor"),
        13 => ("EACCES", "Permission denied"),
        14 => ("EFAULT", "Bad address"),
        22 => ("EINVAL", "Invalid argument"),
        27 => ("EFBIG", "File too large"),
        28 => ("ENOSPC", "No space left on device"),
        32 => ("EPIPE", "Broken pipe"),
        35 => ("EAGAIN", "Resource temporarily unavailable"),
        39 => ("EDESTADDRREQ", "Destination address required"),
        54 => ("ECONNRESET", "Connection reset by peer"),
        55 => ("ENOBUFS", "No buffer space available"),
        57 => ("ENOTCONN", "Socket is not connected"),
        69 => ("EDQUOT", "Disc quota exceeded"),
        78 => ("ENOSYS", "Function not implemented"),
        _ => ("E?", "Unknown error"),
    }
}

/// Maps an errno from a host (Linux) `write` to XNU's numbering. The two
/// agree below 35; above they diverge (Linux EAGAIN 11 is XNU 35).
pub fn errno_from_linux(e: i32) -> i32 {
    match e {
        1..=10 | 12..=34 => e,
        11 => EAGAIN,
        89 => 39,   // EDESTADDRREQ
        104 => 54,  // ECONNRESET
        105 => 55,  // ENOBUFS
        107 => 57,  // ENOTCONN
        122 => 69,  // EDQUOT
        _ => EIO,
    }
}

/// The signal for a protection failure (a fault on memory the task has
/// mapped, with the wrong access): KERN_PROTECTION_FAILURE is SIGBUS in
/// `ux_exception` (bsd/uxkern/ux_exception.c), except that
/// `handle_ux_exception` calls one in the stack's MAXSSIZ zone a stack
/// overflow, SIGSEGV. A fault where nothing is mapped is SIGSEGV.
pub fn protection_fault(mapped: bool, stack_zone: bool) -> (i32, &'static str) {
    match (mapped, stack_zone) {
        (_, true) => (SIGSEGV, "stack overflow"),
        (true, false) => (SIGBUS, ""),
        (false, false) => (SIGSEGV, ""),
    }
}

pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGFPE: i32 = 8;
pub const SIGBUS: i32 = 10;
pub const SIGSEGV: i32 = 11;
pub const SIGSYS: i32 = 12;
pub const SIGPIPE: i32 = 13;

pub fn signal_name(s: i32) -> &'static str {
    match s {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGEMT",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGBUS",
        11 => "SIGSEGV",
        12 => "SIGSYS",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        16 => "SIGURG",
        17 => "SIGSTOP",
        18 => "SIGTSTP",
        19 => "SIGCONT",
        20 => "SIGCHLD",
        21 => "SIGTTIN",
        22 => "SIGTTOU",
        23 => "SIGIO",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        26 => "SIGVTALRM",
        27 => "SIGPROF",
        28 => "SIGWINCH",
        29 => "SIGINFO",
        30 => "SIGUSR1",
        31 => "SIGUSR2",
        _ => "SIG?",
    }
}

/// What an asynchronous host signal means for the guest.
#[derive(Debug, PartialEq, Eq)]
pub enum Async {
    /// Default action ignore (or stop/continue, which xnurun does not model).
    Ignore,
    /// Default action terminate: the guest dies of this XNU signal.
    Kill(i32),
}

/// Maps a Linux signal number (not a synchronous fault) to what its
/// default action does to an XNU process.
pub fn async_from_linux(sig: i32) -> Async {
    match sig {
        // SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGWINCH
        17 | 18 | 19 | 20 | 21 | 22 | 23 | 28 => Async::Ignore,
        1 | 2 | 3 | 6 | 9 | 13 | 14 | 15 | 24 | 25 | 26 | 27 => Async::Kill(sig),
        7 => Async::Kill(SIGBUS),
        10 => Async::Kill(30), // SIGUSR1
        12 => Async::Kill(31), // SIGUSR2
        // SIGIO: ignored by default on XNU (bsd/sys/signalvar.h sigprop).
        29 => Async::Ignore,
        31 => Async::Kill(SIGSYS),
        _ => Async::Kill(sig),
    }
}
