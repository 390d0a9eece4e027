//! How a run ends, and the one place where that becomes xnurun's exit
//! status: every backend and architecture reports its end here, and the
//! `--help` text is generated from the same table.

use super::{signal, trace};

/// xnurun's exit status: the guest's own, or xnurun's reason for having
/// none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The guest called exit(N): N & 0xff (`exit1` keeps `W_EXITCODE`).
    Exited(i32),
    /// The guest died of XNU signal S: 128 + S.
    Signaled(i32),
    Usage,
    Unimplemented,
    StepLimit,
    Runner,
    Refused,
    NoFile,
}

impl Status {
    pub fn code(self) -> i32 {
        match self {
            Status::Exited(n) => n & 0xff,
            Status::Signaled(s) => 128 + s,
            Status::Usage => 2,
            Status::Unimplemented => 123,
            Status::StepLimit => 124,
            Status::Runner => 125,
            Status::Refused => 126,
            Status::NoFile => 127,
        }
    }
}

/// The rows of `--help`'s "Exit status" table, in order.
const ROWS: [(Status, &str, &str); 8] = [
    (Status::Exited(0), "N", "the guest called exit(N): N & 0xff"),
    (
        Status::Signaled(0),
        "128+S",
        "the guest died of XNU signal S (SIGSEGV 139, SIGBUS 138,\nSIGILL 132, SIGTRAP 133, SIGFPE 136, SIGSYS 140, SIGPIPE 141,\nSIGKILL 137 from outside)",
    ),
    (Status::Usage, "", "usage error"),
    (
        Status::Unimplemented,
        "",
        "the guest made a real XNU call xnurun does not implement\n(another BSD call, a Mach trap, syscall class 1/3/4, int 0x81-0x82)",
    ),
    (Status::StepLimit, "", "the --max-steps instruction limit was reached"),
    (Status::Runner, "", "xnurun itself failed (ptrace, seccomp, mmap, vm.mmap_min_addr)"),
    (Status::Refused, "", "XNU would refuse to exec the file (the guest never starts),\nnot a regular file included"),
    (Status::NoFile, "", "FILE cannot be read"),
];

/// The "Exit status" part of `--help`.
pub fn help_table() -> String {
    let mut s = String::from("Exit status:\n");
    for (status, name, text) in ROWS {
        let code = if name.is_empty() { status.code().to_string() } else { name.to_string() };
        for (i, line) in text.lines().enumerate() {
            let left = if i == 0 { code.as_str() } else { "" };
            s.push_str(&format!("  {left:<8} {line}\n"));
        }
    }
    s
}

/// A death the kernel decided: the XNU signal and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Death {
    pub sig: i32,
    pub why: String,
}

impl Death {
    pub fn new(sig: i32, why: impl Into<String>) -> Death {
        Death { sig, why: why.into() }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The guest called exit with this status.
    Exit(i32),
    /// The guest died of XNU signal `sig` at `pc` (its name and value);
    /// `detail` (a fault address) and the instruction bytes `code` are
    /// reported where there are any.
    Killed { death: Death, pc: (&'static str, u64), detail: Option<String>, code: Vec<u8> },
    /// A host signal from outside killed it (already an XNU number).
    KilledFromOutside(i32),
    /// It made a real XNU call that xnurun does not implement: what.
    Unimplemented(String),
    /// `--max-steps` ran out after `steps` instructions, at `pc`.
    StepLimit { steps: u64, pc: (&'static str, u64) },
    /// xnurun itself failed.
    Runner(String),
}

impl End {
    /// Says how the run ended on stderr (the trace's `+++` line when
    /// tracing, then xnurun's own line where there is one) and returns the
    /// exit status.
    pub fn report(self, tracing: bool) -> Status {
        match self {
            End::Exit(s) => {
                if tracing {
                    trace::line(&format!("+++ exited with {} +++", s & 0xff));
                }
                Status::Exited(s)
            }
            End::Killed { death, pc, detail, code } => {
                trace::death(tracing, death.sig, pc, detail.as_deref(), &death.why, &code);
                Status::Signaled(death.sig)
            }
            End::KilledFromOutside(sig) => {
                if tracing {
                    trace::line(&trace::killed(sig));
                }
                trace::line(&format!("xnurun: guest killed by {} ({sig}) from outside", signal::name(sig)));
                Status::Signaled(sig)
            }
            End::Unimplemented(msg) => {
                trace::line(&format!("xnurun: {msg}"));
                Status::Unimplemented
            }
            End::StepLimit { steps, pc: (name, pc) } => {
                trace::line(&format!(
                    "xnurun: step limit reached: the guest ran {steps} instructions without exiting (at {name} 0x{pc:x}; raise it with --max-steps)"
                ));
                Status::StepLimit
            }
            End::Runner(msg) => {
                trace::line(&format!("xnurun: {msg}"));
                Status::Runner
            }
        }
    }
}

/// What the kernel does after a kernel entry, for any architecture: `R`
/// is what the guest resumes with (a BSD call's [`Outcome`], or a
/// convention's registers).
///
/// [`Outcome`]: super::bsd::Outcome
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next<R> {
    Resume(R),
    /// The guest resumes with `R`, if any (a call that returned, then
    /// posted a signal), and dies of the signal.
    Die(Option<R>, Death),
    /// The run ends here (exit, or a call xnurun does not implement).
    End(End),
}

impl<R> Next<R> {
    /// The registers the guest resumes with, if it does.
    pub fn resumed(&self) -> Option<&R> {
        match self {
            Next::Resume(r) | Next::Die(Some(r), _) => Some(r),
            _ => None,
        }
    }

    pub fn map<S>(self, f: impl FnOnce(R) -> S) -> Next<S> {
        match self {
            Next::Resume(r) => Next::Resume(f(r)),
            Next::Die(r, d) => Next::Die(r.map(f), d),
            Next::End(e) => Next::End(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_its_row_and_code() {
        let help = help_table();
        for (status, code) in [(Status::Usage, 2), (Status::Unimplemented, 123), (Status::StepLimit, 124), (Status::Runner, 125), (Status::Refused, 126), (Status::NoFile, 127)] {
            assert_eq!(status.code(), code);
            assert!(help.lines().any(|l| l.trim_start().starts_with(&format!("{code} "))), "{code} missing from:\n{help}");
        }
        assert_eq!(Status::Exited(0x1ff).code(), 0xff);
        assert_eq!(Status::Signaled(signal::SIGSEGV).code(), 139);
        for (name, sig) in [("SIGSEGV", signal::SIGSEGV), ("SIGBUS", signal::SIGBUS), ("SIGILL", signal::SIGILL), ("SIGTRAP", signal::SIGTRAP), ("SIGFPE", signal::SIGFPE), ("SIGSYS", signal::SIGSYS), ("SIGPIPE", signal::SIGPIPE)] {
            assert!(help.contains(&format!("{name} {}", Status::Signaled(sig).code())), "{name} in:\n{help}");
        }
    }

    #[test]
    fn next_maps_what_the_guest_resumes_with() {
        let n: Next<u32> = Next::Die(Some(2), Death::new(signal::SIGSYS, "x"));
        assert_eq!(n.map(|v| v * 10), Next::Die(Some(20), Death::new(signal::SIGSYS, "x")));
        assert_eq!(Next::<u32>::End(End::Exit(3)).map(|v| v + 1), Next::End(End::Exit(3)));
    }
}
