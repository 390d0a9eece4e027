//! `xnurun --gdb`: gdb-multiarch in batch mode against the hello images,
//! on each CPU that runs them: the entry and its symbol, a step over the
//! write call that lands where XNU returns with XNU's registers, the
//! message in memory, the exit; a read outside the guest's mappings; a
//! Ctrl-C and a connection that drops, spoken as raw protocol.
//!
//! The transcripts of the x86_64, i386 and arm64 sessions on the emulated
//! CPU are docs/debugging.md's: a test fails when the page differs, and
//! `XNURUN_BLESS=1` writes them there.

mod common;
use common::*;
use hello_tests::{hello, root, tool};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Hang guard only: no assertion depends on how long anything takes.
const HANG: Duration = Duration::from_secs(120);

fn gdb_multiarch() -> PathBuf {
    tool("gdb-multiarch", "apt-get install gdb-multiarch")
}

/// An xnurun waiting for gdb: its port, and its stderr as it comes.
struct Served {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// Starts `xnurun --gdb 127.0.0.1:0 [opts] IMAGE ARGS` and waits for the
/// line that says where it listens.
fn serve(opts: &[&str], image: &Path, args: &[&str]) -> Served {
    // No environment: the guest's stack, which holds it, is then the same
    // on every machine, and so are the addresses the transcripts show.
    // The stack also holds the image's path (the apple string
    // `executable_path=`): an image under the target folder is named from
    // there, so that the path, and the stack, are the same in every
    // checkout.
    let mut cmd = xnurun();
    cmd.env_clear().args(opts).args(["--gdb", "127.0.0.1:0"]);
    match image.strip_prefix(hello_tests::target_dir()) {
        Ok(rel) => cmd.current_dir(target_link()).arg(Path::new("target").join(rel)),
        Err(_) => cmd.arg(image),
    };
    cmd.args(args);
    serve_command(cmd)
}

/// A folder holding `target`, a link to this build's target folder,
/// whatever its own path: images run from there are named
/// `target/TRIPLE/release/...` on every machine.
fn target_link() -> std::path::PathBuf {
    use std::hash::{Hash, Hasher};
    let real = hello_tests::target_dir();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    real.hash(&mut h);
    let dir = std::env::temp_dir().join(format!("xnurun-gdb-{:016x}", h.finish()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("target");
    if std::fs::read_link(&link).ok().as_deref() != Some(real.as_path()) {
        // Made once per target folder; a test running beside this one may
        // make it first.
        let _ = std::os::unix::fs::symlink(&real, &link);
    }
    dir
}

/// Starts `cmd`, which runs an xnurun --gdb, and waits for the line that
/// says where it listens.
fn serve_command(mut cmd: Command) -> Served {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let port = loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            panic!("xnurun ended before listening:\n{seen}");
        }
        seen.push_str(&line);
        if let Some(rest) = line.strip_prefix("xnurun: waiting for gdb on 127.0.0.1:") {
            break rest.split(' ').next().unwrap().parse::<u16>().unwrap();
        }
    };
    let stderr = Arc::new(Mutex::new(seen));
    let sink = stderr.clone();
    let reader = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
        sink.lock().unwrap().push_str(&rest);
    });
    Served { child, port, stderr, reader: Some(reader) }
}

impl Served {
    /// Waits for xnurun's end (killing it past the hang guard): its status,
    /// stdout and stderr.
    fn finish(mut self) -> (Option<i32>, String, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > HANG {
                let _ = self.child.kill();
                panic!("xnurun did not end:\n{}", self.stderr.lock().unwrap());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        self.child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        self.reader.take().unwrap().join().unwrap();
        let err = self.stderr.lock().unwrap().clone();
        (status.code(), out, err)
    }
}

/// Runs gdb-multiarch in batch mode on `script` (one command a line)
/// against the xnurun on `port`, with the hang guard.
fn gdb(port: u16, script: &str) -> Output {
    let dir = std::env::temp_dir().join(format!("xnurun-gdb-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("script-{port}.gdb"));
    std::fs::write(&file, script.replace("PORT", &port.to_string())).unwrap();
    let mut child = Command::new(gdb_multiarch())
        .args(["-batch", "-nx", "-x"])
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > HANG {
            let _ = child.kill();
            panic!("gdb did not end:\n{script}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// gdb-multiarch with one `-ex` per command, against the xnurun on `port`.
fn gdb_ex(port: u16, commands: &[&str]) -> Output {
    let mut cmd = Command::new(gdb_multiarch());
    cmd.args(["-batch", "-nx"]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for c in commands {
        cmd.arg("-ex").arg(c.replace("PORT", &port.to_string()));
    }
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > HANG {
            let _ = child.kill();
            panic!("gdb did not end: {commands:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// What differs per architecture in the hello session.
struct Hello {
    target: &'static str,
    /// The trap instruction, as a `while` condition on `$pc`'s bytes.
    not_at_trap: &'static str,
    /// Where the message is just before the call.
    message: &'static str,
    /// The registers to show after the call.
    after: &'static str,
    /// The carry flag, as an expression.
    carry: &'static str,
    /// The return value's register.
    result: &'static str,
}

const X86_64: Hello = Hello {
    target: "x86_64-apple-darwin",
    not_at_trap: "*(unsigned short *)$pc != 0x050f",
    message: "$rsi",
    after: "rax rdx rcx r11 rip",
    carry: "$eflags & 1",
    result: "$rax",
};
const I386: Hello = Hello {
    target: "i686-apple-darwin",
    not_at_trap: "*(unsigned short *)$pc != 0x340f",
    message: "*(char **)($esp + 8)",
    after: "eax ecx edx esp eip",
    carry: "$eflags & 1",
    result: "$eax",
};
const ARM64: Hello = Hello {
    target: "aarch64-apple-darwin",
    not_at_trap: "*(unsigned int *)$pc != 0xd4001001",
    message: "$x1",
    after: "x0 x1 pc",
    carry: "($cpsr >> 29) & 1",
    result: "$x0",
};

/// The guide's session: `target remote` (which loads the image's
/// symbols), the entry, stepping to the trap, the message, one `stepi`
/// over the call, the registers after it, then `continue` to the exit.
fn hello_script(h: &Hello) -> String {
    format!(
        "set print asm-demangle on
target remote 127.0.0.1:PORT
info symbol $pc
x/2i $pc
while {trap}
  stepi
end
x/i $pc
x/s {message}
stepi
info registers {after}
print {result}
print {carry}
x/i $pc
continue
",
        trap = h.not_at_trap,
        message = h.message,
        after = h.after,
        result = h.result,
        carry = h.carry
    )
}

/// One hello session on `cpu`: checks it, and returns gdb's transcript.
fn hello_session(h: &Hello, cpu: &str) -> String {
    gdb_multiarch();
    let image = hello(h.target);
    let served = serve(&["--cpu", cpu, "--trace"], &image, &[]);
    let out = gdb(served.port, &hello_script(h));
    let (status, stdout, stderr) = served.finish();
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    let all = format!("{shown}{}", String::from_utf8_lossy(&out.stderr));
    let ctx = format!("{} on {cpu}:\n--- gdb:\n{all}\n--- xnurun:\n{stderr}", h.target);
    assert!(out.status.success(), "{ctx}");
    assert_eq!(status, Some(0), "{ctx}");
    assert_eq!(stdout, "Hello, world!\n", "{ctx}");
    // The entry has its name from the image's symbols.
    assert!(shown.lines().any(|l| l == "_start in section __TEXT"), "{ctx}");
    assert!(shown.contains("\"Hello, world!\\n\""), "{ctx}");
    assert!(shown.contains("$1 = 14\n$2 = 0\n"), "{ctx}");
    assert!(shown.contains("exited normally]"), "{ctx}");
    // The step printed its --trace line, as a normal run does.
    assert!(stderr.contains("write(1, \"Hello, world!\\n\", 14) = 14\n"), "{ctx}");
    assert!(stderr.contains("+++ exited with 0 +++"), "{ctx}");
    // The symbol file's name holds xnurun's pid.
    without_pid(&shown)
}

/// Writes from gdb reach the guest: at the trap, the message's first byte
/// (in the read-only __TEXT, as a debugger may write code) and the file
/// descriptor (a register, or on i386 the stack) are changed, and the
/// call writes `Jello, world!` to stderr.
fn write_session(h: &Hello, cpu: &str, fd: &str) {
    gdb_multiarch();
    let image = hello(h.target);
    let served = serve(&["--cpu", cpu], &image, &[]);
    let script = format!("target remote 127.0.0.1:PORT\nwhile {}\n  stepi\nend\nset {{char}}({}) = 'J'\nset {fd} = 2\ncontinue\n", h.not_at_trap, h.message);
    let out = gdb(served.port, &script);
    let (status, stdout, stderr) = served.finish();
    let ctx = format!("{} on {cpu}:\n{}{}\n--- xnurun:\n{stderr}", h.target, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(status, Some(0), "{ctx}");
    assert_eq!(stdout, "", "{ctx}");
    assert!(stderr.ends_with("Jello, world!\n"), "{ctx}");
}

#[test]
fn gdb_writes_memory_and_registers() {
    write_session(&X86_64, "emulated", "$rdi");
    write_session(&X86_64, "real", "$rdi");
    write_session(&I386, "emulated", "{int}($esp + 4)");
    write_session(&I386, "real", "{int}($esp + 4)");
    write_session(&ARM64, "emulated", "$x0");
}

/// `t` with the pid in the symbol file's name (xnurun-PID-symbols.elf)
/// written as `PID`.
fn without_pid(t: &str) -> String {
    let mut out = String::new();
    let mut rest = t;
    while let Some(at) = rest.find("xnurun-") {
        let after = &rest[at + 7..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        out.push_str(&rest[..at + 7]);
        if digits > 0 && after[digits..].starts_with("-symbols") {
            out.push_str("PID");
            rest = &after[digits..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn x86_64_emulated_steps_over_syscall_as_xnu_returns() {
    let t = hello_session(&X86_64, "emulated");
    check_guide("x86_64", &t);
}

#[test]
fn x86_64_real_steps_over_syscall_as_the_emulated_cpu_does() {
    let real = hello_session(&X86_64, "real");
    assert_eq!(real, hello_session(&X86_64, "emulated"));
}

/// sysexit's return: EIP = EDX, ESP = ECX as they were at entry.
fn check_sysexit(t: &str) {
    let reg = |name: &str| t.lines().find(|l| l.starts_with(&format!("{name} "))).and_then(|l| l.split_whitespace().nth(1)).map(String::from);
    assert!(reg("eip").is_some(), "{t}");
    assert_eq!(reg("eip"), reg("edx"), "{t}");
    assert_eq!(reg("esp"), reg("ecx"), "{t}");
}

#[test]
fn i386_emulated_steps_over_sysenter_to_edx_with_esp_ecx() {
    let t = hello_session(&I386, "emulated");
    check_sysexit(&t);
    check_guide("i386", &t);
}

#[test]
fn i386_real_steps_over_sysenter_as_the_emulated_cpu_does() {
    let real = hello_session(&I386, "real");
    check_sysexit(&real);
    assert_eq!(real, hello_session(&I386, "emulated"));
}

#[test]
fn arm64_emulated_steps_over_svc() {
    let t = hello_session(&ARM64, "emulated");
    check_guide("arm64", &t);
}

/// The page's transcript for `arch`, between its markers, is `t`; with
/// XNURUN_BLESS=1 it is written there instead.
fn check_guide(arch: &str, t: &str) {
    let path = root().join("docs/debugging.md");
    let page = std::fs::read_to_string(&path).unwrap();
    let begin = format!("<!-- gdb session {arch}: generated by tools/xnurun/tests/gdb.rs -->\n```text\n");
    let end = "```\n";
    // Paths differ between checkouts: the page shows them from the root.
    let shown = t.replace(&format!("{}/", hello_tests::target_dir().display()), "target/");
    let Some(at) = page.find(&begin) else { panic!("docs/debugging.md has no `{}` marker", begin.trim()) };
    let from = at + begin.len();
    let to = from + page[from..].find(end).unwrap();
    if std::env::var_os("XNURUN_BLESS").is_some() {
        let new = format!("{}{shown}{}", &page[..from], &page[to..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    assert_eq!(page[from..to], shown, "docs/debugging.md's {arch} session is not what gdb printed (XNURUN_BLESS=1 rewrites it)");
}

#[test]
fn a_read_outside_the_guest_is_an_error_reply() {
    gdb_multiarch();
    let image = hello(X86_64.target);
    for cpu in ["emulated", "real"] {
        let served = serve(&["--cpu", cpu], &image, &[]);
        // One command each (-ex): a failing one does not end the others.
        // Nor any file of xnurun's machine but the symbol file.
        let fetched = std::env::temp_dir().join(format!("xnurun-gdb-passwd-{}", std::process::id()));
        let get = format!("remote get /etc/passwd {}", fetched.display());
        let out = gdb_ex(served.port, &["target remote 127.0.0.1:PORT", "x/x 0", "x/x 0x100", "x/x 0xffffffffffff0000", "print $pc", "x/2x $pc", &get, "kill"]);
        assert!(!fetched.exists(), "{cpu}: gdb fetched /etc/passwd through xnurun");
        let (status, _, stderr) = served.finish();
        let shown = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(shown.contains("Cannot access memory at address 0x0\n"), "{cpu}: {shown}");
        assert!(shown.contains("Cannot access memory at address 0x100\n"), "{cpu}: {shown}");
        assert!(shown.contains("Cannot access memory at address 0xffffffffffff0000"), "{cpu}: {shown}");
        assert!(shown.contains("$1 = (void (*)()) 0x100000220 <_start>"), "{cpu}: {shown}");
        assert!(shown.contains("<_start>:\t0x"), "{cpu}: {shown}");
        assert!(shown.contains("Remote I/O error: No such file or directory"), "{cpu}: {shown}");
        assert!(shown.contains("[Inferior 1 (process 1) killed]"), "{cpu}: {shown}");
        assert_eq!(status, Some(125), "{cpu}: {stderr}");
        assert!(stderr.contains("xnurun: gdb killed the guest"), "{cpu}: {stderr}");
    }
}

/// gdb's `detach`: the guest runs on to its end without gdb, and xnurun
/// ends as the run does.
#[test]
fn after_detach_the_guest_runs_to_its_end() {
    gdb_multiarch();
    for (h, cpus) in [(&X86_64, &["emulated", "real"][..]), (&I386, &["emulated", "real"]), (&ARM64, &["emulated"])] {
        for cpu in cpus {
            let served = serve(&["--cpu", cpu, "--trace"], &hello(h.target), &[]);
            let out = gdb_ex(served.port, &["target remote 127.0.0.1:PORT", "stepi", "detach"]);
            let (status, stdout, stderr) = served.finish();
            let shown = String::from_utf8_lossy(&out.stdout);
            let ctx = format!("{} on {cpu}: {shown}\n{stderr}", h.target);
            assert!(shown.contains("[Inferior 1 (process 1) detached]"), "{ctx}");
            assert_eq!((status, stdout.as_str()), (Some(0), "Hello, world!\n"), "{ctx}");
            assert!(stderr.ends_with("+++ exited with 0 +++\n"), "{ctx}");
        }
    }
}

/// A guest that dies (`ud2`, or arm64's permanently undefined `udf`:
/// SIGILL on XNU) is reported to gdb with XNU's signal, and xnurun ends
/// with the run's usual status.
#[test]
fn a_death_is_reported_to_gdb_with_its_signal() {
    gdb_multiarch();
    let ud2 = vec![0x90, 0x0f, 0x0b];
    let guests: [(PathBuf, &[&str]); 3] = [
        (write_image("gdb-ud2-64", &Image::new64(ud2.clone()).bytes()), &["emulated", "real"]),
        (write_image("gdb-ud2-32", &Image::new32(ud2).bytes()), &["emulated", "real"]),
        (arm64_guest("gdb-udf", &["nop", "udf #0"]), &["emulated"]),
    ];
    for (image, cpus) in guests {
        for cpu in cpus {
            let served = serve(&["--cpu", cpu], &image, &[]);
            let out = gdb_ex(served.port, &["target remote 127.0.0.1:PORT", "continue"]);
            let (status, _, stderr) = served.finish();
            let shown = String::from_utf8_lossy(&out.stdout);
            let ctx = format!("{} on {cpu}: {shown}\n{stderr}", image.display());
            assert!(shown.contains("Program terminated with signal SIGILL, Illegal instruction."), "{ctx}");
            assert_eq!(status, Some(132), "{ctx}");
        }
    }
}

/// One packet of the remote protocol, framed and checksummed.
fn packet(body: &str) -> Vec<u8> {
    let sum = body.bytes().fold(0u8, |s, b| s.wrapping_add(b));
    format!("${body}#{sum:02x}").into_bytes()
}

/// A guest that never ends: `jmp .`.
fn spinner() -> PathBuf {
    write_image("gdb-spin", &Image::new64(vec![0xeb, 0xfe]).bytes())
}

/// Reads from `s` until `want` has been seen (hang-guarded by a timeout).
fn read_until(s: &mut TcpStream, want: &str) -> String {
    s.set_read_timeout(Some(HANG)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&got).contains(want) {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the connection closed; got {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A guest that loops for ever over two no-ops, for each architecture,
/// with the CPUs that run it and the length of one no-op.
fn loops() -> Vec<(&'static str, PathBuf, &'static [&'static str], u64)> {
    let x86 = vec![0x90, 0x90, 0xeb, 0xfc];
    vec![
        ("x86_64", write_image("gdb-loop64", &Image::new64(x86.clone()).bytes()), &["emulated", "real"], 1),
        ("i386", write_image("gdb-loop32", &Image::new32(x86).bytes()), &["emulated", "real"], 1),
        ("arm64", arm64_guest("gdb-loop", &["1:", "nop", "nop", "b 1b"]), &["emulated"], 4),
    ]
}

/// A breakpoint stops the guest before its instruction, every time round
/// the loop, and memory never shows it.
#[test]
fn breakpoints_stop_every_time_and_are_never_seen() {
    gdb_multiarch();
    for (arch, image, cpus, nop) in loops() {
        for cpu in cpus {
            let served = serve(&["--cpu", cpu], &image, &[]);
            let at = format!("$entry + {nop}");
            let out = gdb_ex(
                served.port,
                &["target remote 127.0.0.1:PORT", "set $entry = $pc", &format!("break *({at})"), "continue", "print $pc - $entry", "continue", "print $pc - $entry", &format!("x/1xb {at}"), "kill"],
            );
            let (status, _, stderr) = served.finish();
            let shown = String::from_utf8_lossy(&out.stdout);
            let ctx = format!("{arch} on {cpu}:\n{shown}{}\n--- xnurun:\n{stderr}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(shown.matches("Breakpoint 1, ").count(), 2, "{ctx}");
            assert!(shown.contains(&format!("$1 = {nop}\n")) && shown.contains(&format!("$2 = {nop}\n")), "{ctx}");
            // No symbol table in this image: nothing offered as its file.
            assert!(!String::from_utf8_lossy(&out.stderr).contains("No such file"), "{ctx}");
            // The no-op's own first byte (x86 0x90; arm64's nop, d503201f, little-endian).
            assert!(shown.lines().any(|l| l.ends_with(":\t0x90") || l.ends_with(":\t0x1f")), "{ctx}");
            assert_eq!(status, Some(125), "{ctx}");
        }
    }
}

/// Code gdb rewrites after it has run is what runs next (unicorn's
/// memory write drops the stale translation): stopped at the loop's jump, its two no-ops
/// become `ud2`, and the jump back lands on it: SIGILL.
#[test]
fn rewritten_code_runs_as_written() {
    gdb_multiarch();
    for (arch, image, cpus, _) in loops().into_iter().filter(|l| l.0 != "arm64") {
        for cpu in cpus {
            let served = serve(&["--cpu", cpu], &image, &[]);
            let out = gdb_ex(
                served.port,
                &["target remote 127.0.0.1:PORT", "set $entry = $pc", "break *($entry + 2)", "continue", "continue", "set {short}$entry = 0x0b0f", "delete", "continue"],
            );
            let (status, _, stderr) = served.finish();
            let shown = String::from_utf8_lossy(&out.stdout);
            assert!(shown.contains("Program terminated with signal SIGILL"), "{arch} on {cpu}: {shown}\n{stderr}");
            assert_eq!(status, Some(132), "{arch} on {cpu}: {stderr}");
        }
    }
}

#[test]
fn ctrl_c_stops_a_running_guest() {
    for (arch, image, cpus, _) in loops() {
        for cpu in cpus {
            let served = serve(&["--cpu", cpu], &image, &[]);
            let mut s = TcpStream::connect(("127.0.0.1", served.port)).unwrap();
            s.write_all(&packet("c")).unwrap();
            read_until(&mut s, "+");
            s.write_all(&[3]).unwrap();
            // The stop reply for SIGINT (2).
            let reply = read_until(&mut s, "#");
            assert!(reply.contains("$S02") || reply.contains("$T02"), "{arch} on {cpu}: {reply}");
            s.write_all(b"+").unwrap();
            s.write_all(&packet("k")).unwrap();
            // Until xnurun hangs up.
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
            drop(s);
            let (status, _, stderr) = served.finish();
            assert_eq!(status, Some(125), "{arch} on {cpu}: {stderr}");
            assert!(stderr.contains("gdb killed the guest"), "{arch} on {cpu}: {stderr}");
        }
    }
}

#[test]
fn a_dropped_connection_ends_the_guest_and_xnurun() {
    for cpu in ["emulated", "real"] {
        let served = serve(&["--cpu", cpu], &spinner(), &[]);
        let mut s = TcpStream::connect(("127.0.0.1", served.port)).unwrap();
        s.write_all(&packet("c")).unwrap();
        read_until(&mut s, "+");
        drop(s);
        let (status, _, stderr) = served.finish();
        assert_eq!(status, Some(125), "{cpu}: {stderr}");
        assert!(stderr.contains("xnurun: the gdb connection was lost"), "{cpu}: {stderr}");
        assert_eq!(stderr.lines().count(), 2, "{cpu}: {stderr}");
    }
}

#[test]
fn bad_addresses_are_one_line_and_a_nonzero_status() {
    let image = hello(X86_64.target);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let in_use = taken.local_addr().unwrap().to_string();
    for (spec, says) in [
        ("127.0.0.1:99999", "expected ADDR:PORT"),
        ("nonsense", "expected ADDR:PORT"),
        (in_use.as_str(), "cannot listen there"),
        ("example.invalid:1234", "example.invalid"),
    ] {
        let o = xnurun().args(["--gdb", spec]).arg(&image).output().unwrap();
        let e = stderr(&o);
        assert_ne!(o.status.code(), Some(0), "{spec}: {e}");
        assert!(o.status.code().is_some(), "{spec}: killed: {e}");
        assert_eq!(e.lines().count(), 1, "{spec}: {e}");
        assert!(e.starts_with("xnurun: --gdb ") && e.contains(says), "{spec}: {e}");
    }
}

/// The args example for `target`, built by the user's own command.
fn args_example(target: &str) -> PathBuf {
    let out = hello_tests::cargo(&hello_tests::target_dir(), &["build", "--release", "--example", "args", "--target", target]);
    assert!(out.status.success(), "cargo build --example args --target {target}:\n{}", String::from_utf8_lossy(&out.stderr));
    hello_tests::target_dir().join(target).join("release/examples/args")
}

/// A breakpoint on a function by its name, and argv from its argument:
/// `main(start: &Start)`, whose first field after argc is argv.
fn args_session(target: &str, cpu: &str, first_arg: &str) {
    gdb_multiarch();
    let image = args_example(target);
    let served = serve(&["--cpu", cpu], &image, &["one", "two"]);
    let script = format!("target remote 127.0.0.1:PORT\nbreak args::main\ncontinue\ninfo symbol $pc\nx/s ((char ***){first_arg})[1][1]\nx/s ((char ***){first_arg})[1][2]\ndelete\ncontinue\n");
    let out = gdb(served.port, &script);
    let (status, stdout, stderr) = served.finish();
    let shown = String::from_utf8_lossy(&out.stdout);
    let ctx = format!("{target} on {cpu}:\n--- gdb:\n{shown}{}\n--- xnurun:\n{stderr}", String::from_utf8_lossy(&out.stderr));
    assert!(shown.contains("Breakpoint 1, "), "{ctx}");
    assert!(shown.lines().any(|l| l.starts_with("args::main") && l.contains(" in section __TEXT")), "{ctx}");
    assert!(shown.contains(":\t\"one\"\n") && shown.contains(":\t\"two\"\n"), "{ctx}");
    assert!(shown.contains("exited normally]"), "{ctx}");
    assert_eq!(status, Some(0), "{ctx}");
    assert!(stdout.contains("argv[1] one\nargv[2] two\n"), "{ctx}");
}

#[test]
fn a_breakpoint_in_args_shows_argv() {
    args_session("x86_64-apple-darwin", "emulated", "$rdi");
    args_session("x86_64-apple-darwin", "real", "$rdi");
    args_session("aarch64-apple-darwin", "emulated", "$x0");
}

/// `XNURUN_FLAGS` carries --gdb through `cargo run`, as it carries the
/// other options.
#[test]
fn cargo_run_serves_gdb_through_xnurun_flags() {
    gdb_multiarch();
    hello(X86_64.target);
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root()).args(["run", "--quiet", "--release", "--target", X86_64.target, "--target-dir"]).arg(hello_tests::target_dir());
    for var in ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS"] {
        cmd.env_remove(var);
    }
    cmd.env("XNURUN_FLAGS", "--gdb 127.0.0.1:0");
    let served = serve_command(cmd);
    let out = gdb_ex(served.port, &["target remote 127.0.0.1:PORT", "info symbol $pc", "continue"]);
    let (status, stdout, stderr) = served.finish();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("_start in section __TEXT\n") && shown.contains("exited normally]"), "{shown}\n{stderr}");
    assert_eq!((status, stdout.as_str()), (Some(0), "Hello, world!\n"), "{stderr}");
}
