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

pub mod address_space;
pub mod arena;
pub mod bsd;
pub mod calls;
pub mod cli;
pub mod codesign;
pub mod emulated;
pub mod emulated_arm64;
pub mod emulated_x86;
pub mod fault;
pub mod image_file;
pub mod loader;
pub mod loader_arm64;
pub mod rebase;
pub mod stack;
pub mod trace;
pub mod xnu;
pub mod xnu_arm64;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod guest;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod run;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod stub;
pub mod trap;
pub mod x86_kernel;
pub mod x86_state;
pub mod xnu_i386;
pub mod xnu_x86_64;

use clap::Parser;
use std::ffi::OsString;

pub const EXIT_REFUSED: i32 = 126;
pub const EXIT_NO_FILE: i32 = 127;
pub const EXIT_USAGE: i32 = 2;

/// Reads file bytes at an offset: how a backend gets segment contents.
pub type ReadAt<'a> = &'a dyn Fn(u64, &mut [u8]) -> Result<(), String>;

/// Whether SIGPIPE is ignored right now (inherited from the parent, since
/// the binary's `main` runs before std could change it).
pub fn sigpipe_ignored() -> bool {
    // SAFETY: querying only; `old` is plain data filled by the kernel.
    unsafe {
        let mut old: nix::libc::sigaction = std::mem::zeroed();
        nix::libc::sigaction(nix::libc::SIGPIPE, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == nix::libc::SIG_IGN
    }
}

/// The whole program; returns the exit status. `args` includes argv[0].
pub fn main_with(args: Vec<OsString>, sigpipe_was_ignored: bool) -> i32 {
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { 0 };
        }
    };
    // From here on a broken pipe must be an error for xnurun's own writes,
    // never its death; what the guest gets was decided from the inherited
    // disposition.
    // SAFETY: setting a standard disposition.
    unsafe {
        nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_IGN);
    }
    match prepare(&cli) {
        Ok((file, image, stack)) => {
            let calls = calls::Calls {
                trace: cli.trace,
                injector: fault::Injector::new(cli.fault.map(|f| f.0)),
                sigpipe_ignored: sigpipe_was_ignored,
            };
            let read_at = |off: u64, buf: &mut [u8]| file.read_at(off, buf);
            let real_x86 = cfg!(all(target_os = "linux", target_arch = "x86_64"));
            let cpu = cli.cpu.unwrap_or(if real_x86 && image.arch != loader::Arch::Arm64 { cli::Cpu::Real } else { cli::Cpu::Emulated });
            match (image.arch, cpu) {
                (loader::Arch::Arm64, cli::Cpu::Emulated) => emulated_arm64::run(&image, &read_at, &stack, calls, cli.max_steps),
                (loader::Arch::Arm64, cli::Cpu::Real) => {
                    trace::line("xnurun: --cpu real: no arm64 CPU runs XNU images here; use --cpu emulated");
                    EXIT_USAGE
                }
                (_, cli::Cpu::Emulated) => emulated_x86::run(&image, &read_at, &stack, calls, cli.max_steps),
                (_, cli::Cpu::Real) => run_x86(&image, &read_at, &stack, calls, cli.max_steps),
            }
        }
        Err(status) => status,
    }
}

/// Opens and checks FILE and builds the initial stack, or says why not.
fn prepare(cli: &cli::Cli) -> Result<(image_file::ImageFile, loader::Image, stack::InitialStack), i32> {
    use std::os::unix::ffi::OsStrExt;
    let shown = cli.file().to_string_lossy().into_owned();
    let file = match image_file::open(cli.file()) {
        Ok(f) => f,
        Err(image_file::OpenError::Unreadable(e)) => {
            trace::line(&format!("xnurun: {shown}: {e}"));
            return Err(EXIT_NO_FILE);
        }
        Err(image_file::OpenError::Refused(e)) => {
            trace::line(&format!("xnurun: refusing {shown}: {e}"));
            return Err(EXIT_REFUSED);
        }
    };
    let loaded = if loader::is_arm64(&file.head) {
        loader_arm64::load(&file.head, file.len, &|off, buf| file.read_at(off, buf))
    } else {
        loader::load_from(&file.head, file.len)
    };
    let image = loaded.map_err(|r| {
        trace::line(&format!("xnurun: refusing {shown}: {r}"));
        EXIT_REFUSED
    })?;
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
    let stack = stack::build(image.arch.ptr_size() as usize, image.user_stack, &path, &argv, &envp).map_err(|e| {
        trace::line(&format!("xnurun: refusing {shown}: {e}"));
        EXIT_REFUSED
    })?;
    Ok((file, image, stack))
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn run_x86(image: &loader::Image, read_at: ReadAt, stack: &stack::InitialStack, calls: calls::Calls, max_steps: Option<u64>) -> i32 {
    run::run(image, read_at, stack, calls, max_steps)
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn run_x86(_image: &loader::Image, _read_at: ReadAt, _stack: &stack::InitialStack, _calls: calls::Calls, _max_steps: Option<u64>) -> i32 {
    trace::line("xnurun: --cpu real: the real-CPU backend needs a Linux x86_64 host; use --cpu emulated");
    EXIT_USAGE
}
