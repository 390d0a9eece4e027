//! XNU's signal numbers (bsd/sys/signal.h), which signal a fault becomes,
//! and what a host signal's default action does to an XNU process.

/// The signal for a page fault: one on memory the task has mapped, with
/// the wrong access, is KERN_PROTECTION_FAILURE, SIGBUS in `ux_exception`
/// (bsd/uxkern/ux_exception.c), except that `handle_ux_exception` calls
/// any fault in the stack's MAXSSIZ zone a stack overflow, SIGSEGV. A
/// fault where nothing is mapped (KERN_INVALID_ADDRESS) is SIGSEGV.
pub fn fault(mapped: bool, stack_zone: bool) -> (i32, &'static str) {
    match (mapped, stack_zone) {
        (_, true) => (SIGSEGV, "stack overflow"),
        (true, false) => (SIGBUS, ""),
        (false, false) => (SIGSEGV, ""),
    }
}

pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGFPE: i32 = 8;
pub const SIGKILL: i32 = 9;
pub const SIGBUS: i32 = 10;
pub const SIGSEGV: i32 = 11;
pub const SIGSYS: i32 = 12;
pub const SIGPIPE: i32 = 13;

pub fn name(s: i32) -> &'static str {
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
