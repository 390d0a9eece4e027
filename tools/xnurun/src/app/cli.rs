//! The command line: `xnurun [--trace] [--fault KIND] [--max-steps N] [--cpu real|emulated] [--gdb ADDR:PORT] FILE [ARGS...]`.

use crate::xnu::bsd::fault::Fault;
use clap::{CommandFactory, Parser};
use std::ffi::OsString;

/// Parses the command line. A command line with no option before FILE,
/// the way a plain run is spelled, is taken without building clap's
/// parser, whose code and memory are a good part of a hello run
/// (bench/results.md): with nothing before FILE, clap's answer is every
/// option unset and the command line's own FILE and ARGS
/// (`a_plain_command_line_is_what_clap_reads` checks this against clap).
/// What `--help` says after the options is written out only when help is
/// asked for.
pub fn parse(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    if args.get(1).is_some_and(|file| !file.as_encoded_bytes().starts_with(b"-")) {
        return Ok(Cli { command: args[1..].to_vec(), ..Cli::default() });
    }
    match Cli::try_parse_from(&args) {
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => Err(Cli::command().after_help(after_help()).try_get_matches_from(args).err().unwrap_or(e)),
        parsed => parsed,
    }
}

/// What `--help` says after the options: the exit statuses (generated
/// from [`crate::xnu::end`]) and the `--trace` format.
fn after_help() -> String {
    format!(
        "{}\n{}",
        crate::xnu::end::help_table(),
        "--trace writes to stderr, per system call, the guest's registers as they
are when it executes the trap instruction (RCX and R11 as `syscall` itself
wrote them), an strace-like line, then the registers after the call (where
it resumes, the return registers, what the kernel overwrote, the carry);
the run ends with a +++ line. The hello, on x86_64:
  RIP 0x100000235 RAX 0x2000004 RCX 0x100000237 RDX 0xe RSP 0x7ff7bfefff60 RDI 0x1 RSI 0x100000256 R8 0x0 R9 0x0 R10 0x0 R11 0x202
  write(1, \"Hello, world!\\n\", 14) = 14
  -> RIP 0x100000237 RAX 0xe RDX 0x0 RCX 0x100000237 R11 0x202 CF 0
  RIP 0x100000254 RAX 0x2000001 RCX 0x100000256 RDX 0x0 RSP 0x7ff7bfefff60 RDI 0x0 RSI 0x100000264 R8 0x0 R9 0x0 R10 0x0 R11 0x246
  exit(0)
  +++ exited with 0 +++
(i386: EIP EAX ECX EDX ESP EBX ESI EDI, then the stack words of a BSD
call, `STACK 0xbfffff78: 0x11bc | 0x1 0x11bc 0xe`: the word at the user
stack pointer, which unix_syscall skips, `|`, the words it copies in; after
the call EIP EAX EDX ECX ESP CF; arm64: PC X16 X0-X7 SP LR CPSR, then
PC X0 X1 C). Errors read
`= -1 ENOSPC (No space left on device)`, a restart
`= ? ERESTART (restarted)`, a death `+++ killed by SIGSYS +++`."
    )
}

/// Runs an XNU (macOS) executable on Linux, answering its system calls as
/// XNU does: static x86_64 and i386 images on the real CPU at native speed
/// (a seccomp filter keeps every call from Linux), arm64 images and any
/// image off a Linux x86_64 host on an emulated CPU.
#[derive(Parser, Debug, Default)]
#[command(
    name = "xnurun",
    version,
    override_usage = "xnurun [--trace] [--fault KIND] [--max-steps N] [--cpu real|emulated] [--gdb ADDR:PORT] FILE [ARGS...]"
)]
pub struct Cli {
    /// Trace each system call (registers + strace-like line) to stderr.
    #[arg(long)]
    pub trace: bool,

    /// Inject a fault into write (eintr-once, short:N, enospc, ebadf, epipe, restart) or Mach receives (port-died).
    #[arg(long, value_name = "KIND", value_parser = clap::value_parser!(FaultArg))]
    pub fault: Option<FaultArg>,

    /// Single-step the guest and stop it after N instructions (exact
    /// instruction counts; without it the guest runs at native speed).
    #[arg(long, value_name = "N")]
    pub max_steps: Option<u64>,

    /// Which CPU runs the guest: `real` (x86 images on a Linux x86_64 host,
    /// under ptrace and seccomp) or `emulated` (unicorn; any image, any
    /// host). Default: real where it runs the image as XNU would (x86_64
    /// images; i386 images on AMD CPUs) and Linux can map it (not below
    /// vm.mmap_min_addr), else emulated.
    #[arg(long, value_enum, value_name = "CPU")]
    pub cpu: Option<Cpu>,

    /// Stop before the first instruction and wait for one gdb on ADDR:PORT
    /// (`PORT` alone: the loopback address; a host name must be a loopback
    /// one; port 0: any free port, said on stderr), then serve it.
    #[arg(long, value_name = "ADDR:PORT", conflicts_with = "max_steps")]
    pub gdb: Option<String>,

    /// Hidden, for the tests: which x86 vendor's choice of CPU to make for
    /// i386 images (cpu/real/vendor.rs).
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[arg(long, value_enum, hide = true, value_name = "VENDOR")]
    pub x86_strategy: Option<crate::cpu::real::vendor::Vendor>,

    /// Hidden, for the tests: the vm.mmap_min_addr to choose the CPU by,
    /// instead of the kernel's (cpu/real/mod.rs, `below_mmap_min_addr`).
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[arg(long, hide = true, value_name = "ADDRESS")]
    pub mmap_min_addr: Option<u64>,

    /// FILE, the Mach-O executable, then its arguments (argv[1..]),
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
    fn a_plain_command_line_is_what_clap_reads() {
        let plain: &[&[&str]] = &[&["xnurun", "img"], &["xnurun", "img", "--trace", "-x"], &["xnurun", "./a b", "--"], &["xnurun", "img", "--help"], &["xnurun", "img", "-"], &["xnurun", ""]];
        for argv in plain {
            let args: Vec<OsString> = argv.iter().map(OsString::from).collect();
            assert_eq!(format!("{:?}", parse(args.clone()).unwrap()), format!("{:?}", Cli::try_parse_from(&args).unwrap()), "{argv:?}");
        }
        // Anything else is clap's: options, a FILE that looks like one, none.
        assert!(parse(["xnurun", "--trace", "img"].map(OsString::from).to_vec()).unwrap().trace);
        assert_eq!(parse(["xnurun", "-", "img"].map(OsString::from).to_vec()).unwrap().args(), ["img"]);
        assert!(parse(["xnurun"].map(OsString::from).to_vec()).is_err());
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
