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

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    /// A host signal whose default action kills kills the guest with XNU's
    /// number for the same signal: the name this table gives that number
    /// is the one Linux's headers (through nix) give the Linux number.
    /// SIGSTKFLT and SIGPWR have no XNU counterpart and are left out.
    #[test]
    fn a_killing_linux_signal_keeps_its_name_under_xnus_number() {
        for sig in Signal::iterator().filter(|s| ![Signal::SIGSTKFLT, Signal::SIGPWR].contains(s)) {
            match async_from_linux(sig as i32) {
                Async::Kill(x) => assert_eq!(name(x), sig.as_str(), "Linux {} ({})", sig.as_str(), sig as i32),
                Async::Ignore => {}
            }
        }
    }

    /// What XNU's default action ignores (SIGCHLD, SIGURG, SIGWINCH, SIGIO:
    /// `sigprop` in bsd/sys/signalvar.h), continues or stops, xnurun lets
    /// pass.
    #[test]
    fn signals_xnu_does_not_die_of_are_ignored() {
        use Signal::*;
        for sig in [SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGWINCH, SIGIO] {
            assert_eq!(async_from_linux(sig as i32), Async::Ignore, "{}", sig.as_str());
        }
    }

    /// The table names every signal Linux has but those two, plus XNU's
    /// own SIGEMT and SIGINFO: 1 to 31, each once.
    #[test]
    fn the_names_are_linuxs_signals_and_xnus_own() {
        let mut got: Vec<&str> = (1..=31).map(name).collect();
        let mut want: Vec<&str> =
            Signal::iterator().map(|s| s.as_str()).filter(|n| !["SIGSTKFLT", "SIGPWR"].contains(n)).collect();
        want.extend(["SIGEMT", "SIGINFO"]);
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }
}
