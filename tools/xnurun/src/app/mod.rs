//! The program: the command line ([`cli`]), opening and loading FILE, the
//! initial stack, and the choice of CPU that runs the guest; then the
//! run's end, reported once, as xnurun's exit status.
//!
//! ```text
//! xnurun [--trace] [--fault KIND] [--max-steps N] [--cpu real|emulated] [--gdb ADDR:PORT] FILE [ARGS...]
//! ```

pub mod arena;
pub mod cli;
pub mod gdb;
pub mod gdb_symbols;

use crate::cpu;
use crate::image::{self, file, stack};
use crate::xnu::bsd::calls::Calls;
use crate::xnu::bsd::fault::Injector;
use crate::xnu::end::{End, Status};
use crate::xnu::{trace, Arch};
use std::ffi::OsString;

/// Whether SIGPIPE is ignored right now (inherited from the parent, since
/// the binary's `main` runs before std could change it).
pub fn sigpipe_ignored() -> bool {
    // SAFETY: querying only; `old` is plain data filled by the kernel.
    unsafe {
        let mut old: nix::libc::sigaction = std::mem::zeroed();
        nix::libc::sigaction(nix::libc::SIGPIPE, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == nix::libc::SIG_IGN
    }
}

/// The whole program; returns the exit status. `args` includes argv[0];
/// `envp` is the environment as the C runtime passed it (`NAME=value`),
/// which the guest inherits.
pub fn main_with(args: Vec<OsString>, envp: &[&[u8]], sigpipe_was_ignored: bool) -> i32 {
    let cli = match cli::parse(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { Status::Usage.code() } else { 0 };
        }
    };
    // From here on a broken pipe must be an error for xnurun's own writes,
    // never its death; what the guest gets was decided from the inherited
    // disposition.
    // SAFETY: setting a standard disposition.
    unsafe {
        nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_IGN);
    }
    let listen_at = match cli.gdb.as_deref().map(gdb::listen_address) {
        Some(Err(e)) => {
            trace::line(&format!("xnurun: {e}"));
            return Status::Usage.code();
        }
        Some(Ok(a)) => Some(a),
        None => None,
    };
    let (file, image, stack) = match prepare(&cli, envp) {
        Ok(p) => p,
        Err(status) => return status.code(),
    };
    let calls = Calls { trace: cli.trace, injector: Injector::new(cli.fault.map(|f| f.0)), sigpipe_ignored: sigpipe_was_ignored, own_fds: vec![file.fd()], mach: Default::default() };
    if let Some(addr) = listen_at {
        return debug(&cli, addr, &image, &file, &stack, calls).report(cli.trace).code();
    }
    let cpu = cli.cpu.unwrap_or_else(|| default_cpu(&image, &cli));
    let end = match (image.arch, cpu) {
        (Arch::Arm64, cli::Cpu::Emulated) => cpu::emulated::arm64::run(&image, &file, &stack, calls, cli.max_steps),
        (Arch::Arm64, cli::Cpu::Real) => {
            trace::line("xnurun: --cpu real: no arm64 CPU runs XNU images here; use --cpu emulated");
            return Status::Usage.code();
        }
        (_, cli::Cpu::Emulated) => cpu::emulated::x86::run(&image, &file, &stack, calls, cli.max_steps),
        (_, cli::Cpu::Real) => match run_real(&image, &file, &stack, calls, &cli) {
            Some(end) => end,
            None => {
                trace::line("xnurun: --cpu real: the real-CPU backend needs a Linux x86_64 host; use --cpu emulated");
                return Status::Usage.code();
            }
        },
    };
    end.report(cli.trace).code()
}

/// `--gdb`: the guest, stopped before its first instruction, served to
/// one gdb on `addr`.
fn debug(cli: &cli::Cli, addr: std::net::SocketAddr, image: &image::Image, file: &file::ImageFile, stack: &stack::InitialStack, calls: Calls) -> End {
    let listener = match gdb::listen(addr) {
        Ok(l) => l,
        Err(e) => return End::Runner(e),
    };
    let session: Result<Box<dyn cpu::debug::Debuggee>, End> = match (image.arch, cli.cpu.unwrap_or_else(|| default_cpu(image, cli))) {
        (Arch::Arm64, cli::Cpu::Emulated) => cpu::emulated::arm64::debug_session(image, file, stack, calls).map(|s| Box::new(s) as _),
        (Arch::Arm64, cli::Cpu::Real) => return End::Runner("--cpu real: no arm64 CPU runs XNU images here; use --cpu emulated".into()),
        (_, cli::Cpu::Emulated) => cpu::emulated::x86::debug_session(image, file, stack, calls).map(|s| Box::new(s) as _),
        (_, cli::Cpu::Real) => debug_real(image, file, stack, calls),
    };
    match session {
        Ok(s) => {
            let slide = if image.arch == Arch::Arm64 { cpu::emulated::arm64::SLIDE } else { 0 };
            let symbols = image::symbols::read(&file.head, &|off, buf| file.read_at(off, buf));
            let symbol_file = if symbols.is_empty() { None } else { gdb_symbols::write(image, slide, &symbols) };
            gdb::serve(listener, image.arch, symbol_file.as_ref(), s)
        }
        Err(end) => end,
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn debug_real(image: &image::Image, file: &file::ImageFile, stack: &stack::InitialStack, calls: Calls) -> Result<Box<dyn cpu::debug::Debuggee>, End> {
    cpu::real::debug::debug_session(image, file, stack, calls).map(|s| Box::new(s) as _)
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn debug_real(_image: &image::Image, _file: &file::ImageFile, _stack: &stack::InitialStack, _calls: Calls) -> Result<Box<dyn cpu::debug::Debuggee>, End> {
    Err(End::Runner("--cpu real: the real-CPU backend needs a Linux x86_64 host; use --cpu emulated".into()))
}

/// The CPU for an image when the user names none: the real one where it
/// gives XNU's answers (cpu::real::suits), else the emulated one.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn default_cpu(image: &image::Image, cli: &cli::Cli) -> cli::Cpu {
    use cpu::real::vendor::{self, Vendor};
    if image.arch == Arch::Arm64 {
        return cli::Cpu::Emulated;
    }
    // What suits Intel suits AMD too; only otherwise is the vendor asked
    // (cpuid traps to the hypervisor).
    if !(cpu::real::suits(image, Vendor::Intel) || cpu::real::suits(image, vendor::strategy(cli.x86_strategy))) {
        return cli::Cpu::Emulated;
    }
    if let Some((lowest, floor)) = cpu::real::below_mmap_min_addr(image, cli.mmap_min_addr) {
        // Lowering the setting is the user's decision, not xnurun's: it
        // guards the kernel against NULL-pointer exploits system-wide.
        trace::line(&format!(
            "xnurun: the image maps 0x{lowest:x}, below vm.mmap_min_addr ({floor}), which Linux maps for no process: running it on the emulated CPU (for the real one: sysctl -w vm.mmap_min_addr=4096, see the README)"
        ));
        return cli::Cpu::Emulated;
    }
    cli::Cpu::Real
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn default_cpu(_image: &image::Image, _cli: &cli::Cli) -> cli::Cpu {
    cli::Cpu::Emulated
}

/// Opens and checks FILE and builds the initial stack, or says why not.
fn prepare(cli: &cli::Cli, envp: &[&[u8]]) -> Result<(file::ImageFile, image::Image, stack::InitialStack), Status> {
    use std::os::unix::ffi::OsStrExt;
    let shown = cli.file().to_string_lossy().into_owned();
    let file = match file::open(cli.file()) {
        Ok(f) => f,
        Err(file::OpenError::Unreadable(e)) => {
            trace::line(&format!("xnurun: {shown}: {e}"));
            return Err(Status::NoFile);
        }
        Err(file::OpenError::Refused(e)) => {
            trace::line(&format!("xnurun: refusing {shown}: {e}"));
            return Err(Status::Refused);
        }
    };
    let image = image::load(&file.head, file.len, &|off, buf| file.read_at(off, buf)).map_err(|r| {
        trace::line(&format!("xnurun: refusing {shown}: {r}"));
        Status::Refused
    })?;
    let path = cli.file().as_bytes();
    let mut argv = vec![path];
    argv.extend(cli.args().iter().map(|a| a.as_bytes()));
    let stack = stack::build(image.arch.ptr_size() as usize, image.user_stack, path, &argv, envp).map_err(|e| {
        trace::line(&format!("xnurun: refusing {shown}: {e}"));
        Status::Refused
    })?;
    Ok((file, image, stack))
}

/// The real CPU, where this host has one that runs x86 images.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn run_real(image: &image::Image, file: &file::ImageFile, stack: &stack::InitialStack, calls: Calls, cli: &cli::Cli) -> Option<End> {
    Some(cpu::real::run(image, file, stack, calls, cli.max_steps))
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn run_real(_image: &image::Image, _file: &file::ImageFile, _stack: &stack::InitialStack, _calls: Calls, _cli: &cli::Cli) -> Option<End> {
    None
}
