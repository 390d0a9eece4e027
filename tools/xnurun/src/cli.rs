//! The command line: `xnurun [--trace] [--fault KIND] [--max-steps N] FILE [ARGS...]`.

use crate::fault::Fault;
use clap::Parser;
use std::ffi::OsString;

/// Exit statuses, shown by --help and relied on by the tests.
pub const EXIT_STATUSES: &str = "\
Exit status:
  N        the guest called exit(N): N & 0xff
  128+S    the guest died of XNU signal S (SIGSEGV 139, SIGBUS 138,
           SIGILL 132, SIGTRAP 133, SIGFPE 136, SIGSYS 140, SIGPIPE 141,
           SIGKILL 137 from outside)
  2        usage error
  123      the guest made a real XNU call xnurun does not implement
           (another BSD call, a Mach trap, syscall class 1/3/4, int 0x81-0x83)
  124      the --max-steps instruction limit was reached
  125      xnurun itself failed (ptrace, seccomp, mmap, vm.mmap_min_addr)
  126      XNU would refuse to exec the file (the guest never starts),
           not a regular file included
  127      FILE cannot be read

--trace writes to stderr, per system call, the guest's registers as they
are when it executes the trap instruction (RCX and R11 as `syscall` itself
wrote them), then an strace-like line:
  RIP 0x100000f2a RAX 0x2000004 RCX 0x0 RDX 0xe RSP 0x7ff7bfeffc40 RDI 0x1 RSI 0x100000f40 R8 0x0 R9 0x0
  write(1, \"Hello, world!\\n\", 14) = 14
  exit(0)
(i386: EIP EAX ECX EDX ESP EBX ESI EDI). Errors read
`= -1 ENOSPC (No space left on device)`, a restart `= ? ERESTART (restarted)`,
a death `+++ killed by SIGSYS +++`.

On a macOS x86_64 host xnurun executes FILE natively (--trace, --fault and
--max-steps are refused there).";

/// Runs a static XNU (macOS) x86_64 or i386 Mach-O executable on Linux, on
/// the real CPU at native speed, answering its system calls as XNU does;
/// a seccomp filter keeps every one of them from Linux.
#[derive(Parser, Debug)]
#[command(
    name = "xnurun",
    version,
    override_usage = "xnurun [--trace] [--fault KIND] [--max-steps N] [--cpu real|emulated] FILE [ARGS...]",
    after_help = EXIT_STATUSES
)]
pub struct Cli {
    /// Trace each system call (registers + strace-like line) to stderr.
    #[arg(long)]
    pub trace: bool,

    /// Inject a fault into write: eintr-once, short:N, enospc, ebadf, epipe, restart.
    #[arg(long, value_name = "KIND", value_parser = clap::value_parser!(FaultArg))]
    pub fault: Option<FaultArg>,

    /// Single-step the guest and stop it after N instructions (exact
    /// instruction counts; without it the guest runs at native speed).
    #[arg(long, value_name = "N")]
    pub max_steps: Option<u64>,

    /// Which CPU runs the guest: `real` (x86 images on a Linux x86_64 host,
    /// under ptrace and seccomp) or `emulated` (unicorn; any image, any
    /// host). Default: real where it can run the image, else emulated.
    #[arg(long, value_enum, value_name = "CPU")]
    pub cpu: Option<Cpu>,

    /// FILE, the static Mach-O executable, then its arguments (argv[1..]),
    /// which may start with '-': options end at FILE.
    #[arg(value_name = "FILE", required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<OsString>,
}

impl Cli {
    pub fn file(&self) -> &OsString {
        // clap enforces at least one value.
        &self.command[0]
    }
    pub fn args(&self) -> &[OsString] {
        &self.command[1..]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Cpu {
    Real,
    Emulated,
}

/// `Fault` wrapped for clap's value parser.
#[derive(Debug, Clone, Copy)]
pub struct FaultArg(pub Fault);

impl std::str::FromStr for FaultArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse().map(FaultArg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_args_may_look_like_options() {
        let c = Cli::try_parse_from(["xnurun", "--trace", "img", "--fault", "-x"]).unwrap();
        assert!(c.trace);
        assert!(c.fault.is_none());
        assert_eq!(c.file(), "img");
        assert_eq!(c.args(), [OsString::from("--fault"), OsString::from("-x")]);
        let d = Cli::try_parse_from(["xnurun", "img", "-"]).unwrap();
        assert_eq!(d.args(), [OsString::from("-")]);
    }

    #[test]
    fn options_parse() {
        let c = Cli::try_parse_from(["xnurun", "--fault", "short:5", "--max-steps", "10", "img"]).unwrap();
        assert_eq!(c.fault.map(|f| f.0), Some(Fault::Short(5)));
        assert_eq!(c.max_steps, Some(10));
        assert!(Cli::try_parse_from(["xnurun", "--fault", "bogus", "img"]).is_err());
        assert!(Cli::try_parse_from(["xnurun"]).is_err());
    }
}
