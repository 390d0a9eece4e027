//! `--fault KIND`: outcomes injected into the guest's `write` and `read`
//! calls, so the caller's error and restart paths run on XNU's
//! conventions. One-shot kinds fire once for each of the two calls.

use crate::xnu::errno;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The first write fails with EINTR without writing; later ones run.
    EintrOnce,
    /// Every write takes at most N bytes (performed for real).
    Short(u64),
    /// Every write fails with ENOSPC without writing.
    Enospc,
    /// Every write fails with EBADF without writing.
    Ebadf,
    /// Every write fails with EPIPE without writing, as when SIGPIPE is
    /// ignored: no signal.
    Epipe,
    /// The first write is interrupted with ERESTART: not performed, the
    /// guest is rewound as `pal_syscall_restart` does and re-issues it.
    Restart,
    /// Every Mach receive finds its port destroyed, as when another
    /// thread destroys it while this one waits: MACH_RCV_PORT_DIED
    /// (`ipc_mqueue_receive`), the port and its messages gone.
    PortDied,
}

pub const KINDS: &str = "eintr-once, short:N, enospc, ebadf, epipe, restart, port-died";

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "eintr-once" => Fault::EintrOnce,
            "enospc" => Fault::Enospc,
            "ebadf" => Fault::Ebadf,
            "epipe" => Fault::Epipe,
            "restart" => Fault::Restart,
            "port-died" => Fault::PortDied,
            _ => match s.strip_prefix("short:") {
                Some(n) => Fault::Short(n.parse().map_err(|_| format!("short:N needs a byte count, got {n:?}"))?),
                None => return Err(format!("unknown fault {s:?}: one of {KINDS}")),
            },
        })
    }
}

/// What the fault says about one write, before it is performed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Perform it, writing at most this many bytes.
    Perform(u64),
    /// Do not perform it: fail with this XNU errno.
    Fail(i32),
    /// Do not perform it: ERESTART.
    Restart,
}

/// Tracks the one-shot faults across the run.
#[derive(Debug, Default)]
pub struct Injector {
    fault: Option<Fault>,
    fired: bool,
    fired_read: bool,
}

impl Injector {
    /// Whether Mach receives find their port dead (`port-died`).
    pub fn port_dies(&self) -> bool {
        self.fault == Some(Fault::PortDied)
    }

    pub fn new(fault: Option<Fault>) -> Self {
        Injector { fault, fired: false, fired_read: false }
    }

    pub fn on_write(&mut self, count: u64) -> Decision {
        let once = |this: &mut Self, d: Decision| {
            if this.fired {
                Decision::Perform(count)
            } else {
                this.fired = true;
                d
            }
        };
        match self.fault {
            None | Some(Fault::PortDied) => Decision::Perform(count),
            Some(Fault::EintrOnce) => once(self, Decision::Fail(errno::EINTR)),
            Some(Fault::Restart) => once(self, Decision::Restart),
            Some(Fault::Short(n)) => Decision::Perform(count.min(n)),
            Some(Fault::Enospc) => Decision::Fail(errno::ENOSPC),
            Some(Fault::Ebadf) => Decision::Fail(errno::EBADF),
            Some(Fault::Epipe) => Decision::Fail(errno::EPIPE),
        }
    }

    /// The same for a read of `count` bytes. ENOSPC and EPIPE are write
    /// errors (`dofileread` never returns them): reads run normally.
    pub fn on_read(&mut self, count: u64) -> Decision {
        let first = !std::mem::replace(&mut self.fired_read, true);
        match self.fault {
            Some(Fault::EintrOnce) if first => Decision::Fail(errno::EINTR),
            Some(Fault::Restart) if first => Decision::Restart,
            Some(Fault::Short(n)) => Decision::Perform(count.min(n)),
            Some(Fault::Ebadf) => Decision::Fail(errno::EBADF),
            _ => Decision::Perform(count),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_kinds() {
        assert_eq!("eintr-once".parse(), Ok(Fault::EintrOnce));
        assert_eq!("short:5".parse(), Ok(Fault::Short(5)));
        assert_eq!("enospc".parse(), Ok(Fault::Enospc));
        assert_eq!("ebadf".parse(), Ok(Fault::Ebadf));
        assert_eq!("epipe".parse(), Ok(Fault::Epipe));
        assert_eq!("restart".parse(), Ok(Fault::Restart));
        assert!("short:x".parse::<Fault>().is_err());
        assert!("eintr".parse::<Fault>().is_err());
    }

    #[test]
    fn one_shot_faults_fire_once() {
        let mut i = Injector::new(Some(Fault::EintrOnce));
        assert_eq!(i.on_write(14), Decision::Fail(errno::EINTR));
        assert_eq!(i.on_write(14), Decision::Perform(14));
        let mut r = Injector::new(Some(Fault::Restart));
        assert_eq!(r.on_write(14), Decision::Restart);
        assert_eq!(r.on_write(14), Decision::Perform(14));
        let mut s = Injector::new(Some(Fault::Short(5)));
        assert_eq!(s.on_write(14), Decision::Perform(5));
        assert_eq!(s.on_write(4), Decision::Perform(4));
    }
}
