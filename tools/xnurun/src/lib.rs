//! xnurun: runs static XNU (macOS) x86_64 and i386 Mach-O executables on a
//! Linux x86_64 host, on the real CPU at native speed, answering their
//! system calls exactly as XNU does; none of them ever reaches Linux. It
//! is the `runner` for the project's two darwin targets.
//!
//! ```text
//! xnurun [--trace] [--fault KIND] [--max-steps N] FILE [ARGS...]
//! ```
//!
//! - [`loader`] accepts only what XNU's exec path would run as a static
//!   image and refuses everything else with one line naming the rule
//!   (status 126); the guest never starts. For i386 those are the rules of
//!   the last XNU that ran 32-bit programs (macOS 10.14, xnu-4903), where
//!   `parse_machfile` refused static images only on embedded builds;
//!   current XNU accepts static images for x86_64 alone.
//! - [`stack`] builds the initial stack as `exec_copyout_strings` does.
//! - [`image_file`] opens only regular files and reads only the header,
//!   the load commands and the segments.
//! - `guest` is the real-CPU backend: a child that execs a one-page set-up
//!   program, is emptied of everything Linux mapped, gets the image's
//!   segments and stack, and installs a seccomp filter that stops every
//!   system call for xnurun before Linux runs it (see `guest.rs`).
//! - `run` lets the guest run natively (or single-stepped, `--max-steps`)
//!   and turns each stop into an XNU entry or exception: [`trap`] says what
//!   XNU does with each way into the kernel, `xnu_x86_64` / `xnu_i386` read
//!   and write the registers of each convention, [`calls`] and [`bsd`]
//!   answer the calls (exit and write implemented; `nosys` → ENOSYS +
//!   SIGSYS; other real calls stop the run).
//! - [`trace`] documents the `--trace` format; [`fault`] the `--fault` kinds;
//!   [`cli::EXIT_STATUSES`] the exit statuses.
//!
//! On a macOS x86_64 host the file is simply executed natively: XNU itself
//! is the reference there (`--trace`/`--fault`/`--max-steps` are refused).

pub mod bsd;
pub mod cli;
pub mod fault;
pub mod loader;
pub mod stack;
pub mod trace;
pub mod xnu;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod calls;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod guest;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod image_file;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod run;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod stub;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod trap;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod xnu_i386;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod xnu_x86_64;

use clap::Parser;
use std::ffi::OsString;

pub const EXIT_REFUSED: i32 = 126;
pub const EXIT_NO_FILE: i32 = 127;
pub const EXIT_USAGE: i32 = 2;

/// Whether SIGPIPE is ignored right now (inherited from the parent, since
/// the binary's `main` runs before std could change it). Only the Linux
/// emulation needs to know.
#[cfg(target_os = "linux")]
pub fn sigpipe_ignored() -> bool {
    // SAFETY: querying only; `old` is plain data filled by the kernel.
    unsafe {
        let mut old: libc_sigaction::sigaction = std::mem::zeroed();
        libc_sigaction::sigaction(libc_sigaction::SIGPIPE, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc_sigaction::SIG_IGN
    }
}

#[cfg(target_os = "linux")]
use nix::libc as libc_sigaction;

/// The whole program; returns the exit status. `args` includes argv[0].
pub fn main_with(args: Vec<OsString>, sigpipe_was_ignored: bool) -> i32 {
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { 0 };
        }
    };
    platform_run(cli, sigpipe_was_ignored)
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn platform_run(cli: cli::Cli, sigpipe_was_ignored: bool) -> i32 {
    use std::os::unix::ffi::OsStrExt;
    // From here on a broken pipe must be an error for xnurun's own writes,
    // never its death; what the guest gets was decided from the inherited
    // disposition.
    // SAFETY: setting a standard disposition.
    unsafe {
        nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_IGN);
    }
    let shown = cli.file().to_string_lossy().into_owned();
    let file = match image_file::open(cli.file()) {
        Ok(f) => f,
        Err(image_file::OpenError::Unreadable(e)) => {
            trace::line(&format!("xnurun: {shown}: {e}"));
            return EXIT_NO_FILE;
        }
        Err(image_file::OpenError::Refused(e)) => {
            trace::line(&format!("xnurun: refusing {shown}: {e}"));
            return EXIT_REFUSED;
        }
    };
    let image = match loader::load_from(&file.head, file.len) {
        Ok(i) => i,
        Err(r) => {
            trace::line(&format!("xnurun: refusing {shown}: {r}"));
            return EXIT_REFUSED;
        }
    };
    let path = cli.file().as_bytes().to_vec();
    let mut argv = vec![path.clone()];
    argv.extend(cli.args().iter().map(|a| a.as_bytes().to_vec()));
    let envp: Vec<Vec<u8>> = std::env::vars_os()
        .map(|(k, v)| {
            let mut e = k.as_bytes().to_vec();
            e.push(b'=');
            e.extend_from_slice(v.as_bytes());
            e
        })
        .collect();
    let stack = match stack::build(image.arch.ptr_size() as usize, image.user_stack, &path, &argv, &envp) {
        Ok(s) => s,
        Err(e) => {
            trace::line(&format!("xnurun: refusing {shown}: {e}"));
            return EXIT_REFUSED;
        }
    };
    let opts = run::Options {
        trace: cli.trace,
        injector: fault::Injector::new(cli.fault.map(|f| f.0)),
        max_steps: cli.max_steps,
        sigpipe_ignored: sigpipe_was_ignored,
    };
    run::run(&image, &|off, buf| file.read_at(off, buf), &stack, opts)
}

#[cfg(all(target_os = "macos", target_arch = "x86_64"))]
fn platform_run(cli: cli::Cli, _sigpipe_was_ignored: bool) -> i32 {
    use std::os::unix::process::CommandExt;
    // XNU is the reference here: run the file itself. The options that
    // need the emulation have no meaning natively.
    if cli.trace || cli.fault.is_some() || cli.max_steps.is_some() {
        trace::line("xnurun: --trace, --fault and --max-steps need the Linux emulation; on macOS the file runs natively");
        return EXIT_USAGE;
    }
    let err = std::process::Command::new(cli.file()).args(cli.args()).exec();
    trace::line(&format!("xnurun: cannot execute {}: {err}", cli.file().to_string_lossy()));
    EXIT_NO_FILE
}

#[cfg(not(any(all(target_os = "linux", target_arch = "x86_64"), all(target_os = "macos", target_arch = "x86_64"))))]
fn platform_run(_cli: cli::Cli, _sigpipe_was_ignored: bool) -> i32 {
    trace::line("xnurun: runs XNU x86 images on Linux x86_64 (emulated) or macOS x86_64 (natively) only");
    EXIT_USAGE
}
