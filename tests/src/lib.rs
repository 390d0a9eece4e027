//! Shared plumbing for the behaviour tests: build a hello flavor exactly as a
//! user would, find the outside tools the tests drive (strace, llvm-objdump),
//! and read strace's account of a run.
//!
//! A missing tool is a test failure that says how to install it, never a
//! skip: `.ci/setup` installs all of them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

/// The six conventions, by the target triple that selects each.
pub const LINUX_X86_64: &str = "x86_64-unknown-linux-gnu";
pub const LINUX_I386: &str = "i686-unknown-linux-gnu";
pub const LINUX_AARCH64: &str = "aarch64-unknown-linux-gnu";
pub const XNU_X86_64: &str = "x86_64-apple-darwin";
pub const XNU_I386: &str = "i686-apple-darwin";
pub const XNU_ARM64: &str = "aarch64-apple-darwin";

pub const MESSAGE: &[u8] = b"Hello, world!\n";

/// The repository root (the hello package and workspace root).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits inside the repository")
        .to_path_buf()
}

/// Runs `cargo SUBCOMMAND --target-dir TARGET_DIR REST...` in the repository
/// root (the option right after the subcommand, before any `--`), as a
/// user would, but with a target directory of the tests' own: the
/// `cargo test` that runs us holds the lock on the usual one. Variables
/// meant for the outer cargo are dropped: its target, its jobserver, and
/// RUSTFLAGS, which would replace the config's per-target rustflags (the
/// i686-apple-darwin sysroot).
pub fn cargo(target_dir: &Path, args: &[&str]) -> Output {
    cargo_with(target_dir, args, &[])
}

/// `cargo` with these environment variables set as well.
pub fn cargo_with(target_dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    let (subcommand, rest) = args.split_first().expect("a cargo subcommand");
    cmd.current_dir(root()).arg(subcommand).arg("--target-dir").arg(target_dir).args(rest);
    for var in ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS"] {
        cmd.env_remove(var);
    }
    cmd.envs(vars.iter().copied());
    cmd.output().expect("run cargo")
}

/// The tests' own target directory for hello (see `cargo`).
pub fn target_dir() -> PathBuf {
    root().join("target").join("tests")
}

/// Builds hello for `target` with `cargo build --release --target TARGET`,
/// the user's own command; once per test process and target.
pub fn hello(target: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(target) {
        return path.clone();
    }
    let out = cargo(&target_dir(), &["build", "--release", "--target", target]);
    assert!(
        out.status.success(),
        "cargo build --release --target {target} failed (the darwin targets need the README's set-up, .ci/setup):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = target_dir().join(target).join("release").join("hello");
    assert!(path.is_file(), "{} was not written", path.display());
    built.insert(target.to_string(), path.clone());
    path
}

/// Finds `name` on PATH, or fails saying how to get it.
pub fn tool(name: &str, how: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{name}` is needed and not on PATH: {how} (or run .ci/setup)");
}

pub fn strace() -> PathBuf {
    tool("strace", "apt-get install strace")
}

/// qemu-user's aarch64 emulator, which runs the Linux aarch64 flavor on a
/// host of another architecture.
pub fn qemu_aarch64() -> PathBuf {
    tool("qemu-aarch64", "apt-get install qemu-user")
}

/// The triple rustc builds for when given no `--target`: the host's.
pub fn host_triple() -> String {
    let out = Command::new("rustc").arg("-vV").output().expect("run rustc -vV");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names its host")
        .trim()
        .to_string()
}

/// llvm-objdump: Debian's, or the one the `llvm-tools` rustup component
/// ships inside the toolchain (which cargo-binutils runs).
pub fn llvm_objdump() -> PathBuf {
    if let Ok(out) = Command::new("rustc").args(["--print", "sysroot"]).output() {
        let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let p = Path::new(&sysroot).join(format!("lib/rustlib/{}/bin/llvm-objdump", host_triple()));
        if p.is_file() {
            return p;
        }
    }
    tool("llvm-objdump", "rustup component add llvm-tools")
}

/// The project's XNU runner as users get it: built once per test process
/// by the script cargo's runner for the darwin targets uses
/// (`.cargo/build-xnurun`: static, against musl on Linux x86_64), so that
/// the tests run the very binary `cargo run --target x86_64-apple-darwin`
/// runs.
pub fn xnurun_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = Command::new(root().join(".cargo/build-xnurun")).env_remove("CARGO_TARGET_DIR").output().expect("run .cargo/build-xnurun");
            assert!(out.status.success(), "building xnurun failed:\n{}", String::from_utf8_lossy(&out.stderr));
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        })
        .clone()
}

/// What strace saw: the system calls after `execve`, one per entry, as
/// strace prints them (`write(1, "Hello, world!\n", 14) = 14`), with the
/// alignment padding before `=` squeezed out.
#[derive(Debug)]
pub struct Traced {
    pub output: Output,
    pub calls: Vec<String>,
}

/// Runs `program` under `strace -f` with the extra strace arguments given
/// (`--inject=...`), stdout captured, trace in a file of its own.
pub fn strace_run(program: &Path, strace_args: &[&str]) -> Traced {
    strace_run_shell(program, strace_args, "")
}

/// The same, with a shell redirection for the program's stdout (`>/dev/full`,
/// `>&-`): strace's own output goes to a file, so it does not care.
pub fn strace_run_shell(program: &Path, strace_args: &[&str], redirect: &str) -> Traced {
    let log = tempfile("strace");
    let mut cmd = Command::new("sh");
    let script = format!("exec \"$0\" -f -o \"$1\" {} \"$2\" {redirect}", strace_args.join(" "));
    cmd.arg("-c").arg(script).arg(strace()).arg(&log).arg(program);
    let output = cmd.output().expect("run strace");
    let text = std::fs::read_to_string(&log).expect("read strace log");
    let _ = std::fs::remove_file(&log);
    Traced { output, calls: calls_after_execve(&text) }
}

fn calls_after_execve(text: &str) -> Vec<String> {
    let mut seen_execve = false;
    let mut calls = Vec::new();
    for line in text.lines() {
        // With -f and -o, strace prefixes nothing for a single process;
        // tolerate a "PID " prefix anyway.
        let line = line.trim_start_matches(|c: char| c.is_ascii_digit()).trim_start();
        if line.starts_with("execve(") {
            seen_execve = true;
            continue;
        }
        if !seen_execve || line.starts_with("[ Process PID=") || line.starts_with("+++") {
            continue;
        }
        calls.push(squeeze_before_equals(line));
    }
    calls
}

/// strace pads the call out to a column before ` = result`: one space.
fn squeeze_before_equals(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find(' ') {
        out.push_str(&rest[..i]);
        let after = rest[i..].trim_start_matches(' ');
        if after.starts_with("= ") {
            out.push(' ');
        } else {
            out.push_str(&rest[i..rest.len() - after.len()]);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// A fresh path under the system's temporary directory.
pub fn tempfile(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "hello-tests-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Whether this kernel runs i386 ELF binaries. Without IA-32 emulation
/// (CONFIG_IA32_EMULATION off, `ia32_emulation=0` on the kernel command
/// line, or a CPU that is not x86) `load_elf_binary` (fs/binfmt_elf.c)
/// turns the file down at `elf_check_arch` / `compat_elf_check_arch`, no
/// other binary handler takes it, and `execve` fails with ENOEXEC
/// (`search_binary_handler`, fs/exec.c). Then the i386 run tests skip, and
/// the first to find out prints one line saying why, past the test
/// harness's output capture.
pub fn ia32_runs(bin: &Path) -> bool {
    match ia32_check(bin) {
        Ok(()) => true,
        Err(why) => {
            skipped(&format!("linux_i386 runs: {why}"));
            false
        }
    }
}

/// Records that the running test skips its checks, and why: a line in
/// `target/test-skips.txt` (or `$HELLO_SKIP_LOG`), `TEST: why`, which
/// `.ci/test` counts as skipped rather than passed and prints. The test
/// harness names each test's thread after the test.
pub fn skipped(why: &str) {
    use std::io::Write;
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let log = std::env::var_os("HELLO_SKIP_LOG").map(PathBuf::from).unwrap_or_else(|| root().join("target/test-skips.txt"));
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(&log) {
        let _ = writeln!(f, "{test}: {why}");
    }
    let _ = writeln!(std::io::stderr(), "{test}: SKIPPED: {why}");
}

/// `Err(why)` when execve refuses `bin` with ENOEXEC; any other failure to
/// start it is a test failure, not a reason to skip.
pub fn ia32_check(bin: &Path) -> Result<(), String> {
    // A file just written can be busy for a moment: another test thread
    // may have forked while it was open for writing, and its child holds
    // the descriptor until it execs (ETXTBSY).
    let mut tries = 0;
    let status = loop {
        match Command::new(bin).stdout(Stdio::null()).stderr(Stdio::null()).status() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => break other,
        }
    };
    match status {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOEXEC) => Err(format!(
            "this kernel does not run i386 binaries (execve {}: ENOEXEC): no IA-32 emulation \
             (CONFIG_IA32_EMULATION, ia32_emulation=) on this {} host",
            bin.display(),
            std::env::consts::ARCH
        )),
        Err(e) => panic!("cannot start {}: {e}", bin.display()),
    }
}

