//! The project's real hello images under xnurun: output, status, the exact
//! syscall sequence and every --fault mode, for x86_64, i386 (the real CPU)
//! and arm64 (the emulated CPU).
//!
//! The images are built by the user's own cargo command (the project's
//! linker, machlink, for x86; rust-lld for arm64), through
//! `hello_tests::hello`.

mod common;
use common::*;
use hello_tests::hello;
use std::process::Output;

const TARGETS: [&str; 3] = ["x86_64-apple-darwin", "i686-apple-darwin", "aarch64-apple-darwin"];

/// A register line of the trace: at the trap, the i386 stack words, or
/// after the call (`->`).
fn is_regs(l: &str) -> bool {
    ["RIP ", "EIP ", "PC ", "STACK ", "-> "].iter().any(|p| l.starts_with(p))
}

/// Runs the hello for `target`: x86 images on both CPUs, which must agree;
/// the arm64 image on the emulated one.
fn xr(target: &str, opts: &[&str]) -> Output {
    if target.starts_with("aarch64") {
        return xnurun().args(opts).arg(hello(target)).output().unwrap();
    }
    both(xnurun().args(opts).arg(hello(target)))
}

/// The strace-like lines of a --trace run (register lines dropped), the
/// closing `+++ exited with N +++` included.
fn calls(o: &Output) -> Vec<String> {
    stderr(o).lines().filter(|l| !is_regs(l)).map(String::from).collect()
}

const W14: &str = "write(1, \"Hello, world!\\n\", 14)";

#[test]
fn hello_prints_and_exits_0_with_write_then_exit() {
    for t in TARGETS {
        let o = xr(t, &["--trace"]);
        assert_eq!(o.stdout, b"Hello, world!\n", "{t}");
        assert_eq!(o.status.code(), Some(0), "{t}: {}", stderr(&o));
        assert_eq!(calls(&o), [format!("{W14} = 14"), "exit(0)".into(), "+++ exited with 0 +++".into()], "{t}");
        let regs = match t {
            "x86_64-apple-darwin" => "RIP 0x",
            "i686-apple-darwin" => "EIP 0x",
            _ => "PC 0x",
        };
        assert_eq!(stderr(&o).lines().filter(|l| l.starts_with(regs)).count(), 2, "{t}");
    }
}

#[test]
fn hello_x86_64_register_line_shows_the_call() {
    let o = xr("x86_64-apple-darwin", &["--trace"]);
    let e = stderr(&o);
    let first = e.lines().next().unwrap_or("");
    assert!(first.contains(" RAX 0x2000004 ") && first.contains(" RDX 0xe ") && first.contains(" RDI 0x1 "), "{first}");
    let o = xr("i686-apple-darwin", &["--trace"]);
    let e = stderr(&o);
    let first = e.lines().next().unwrap_or("");
    assert!(first.starts_with("EIP 0x") && first.contains(" EAX 0x4 "), "{first}");
}

/// i386: the words `unix_syscall` reads, from ECX up: the dummy word hello
/// pushes where a C caller's return address would be, which it skips,
/// then write's fd, buf (the message's address) and count, and exit's
/// status.
#[test]
fn hello_i386_trace_shows_the_stack_words_read() {
    let o = xr("i686-apple-darwin", &["--trace"]);
    let e = stderr(&o);
    let lines: Vec<&str> = e.lines().collect();
    let ecx = lines[0].split(' ').skip_while(|w| *w != "ECX").nth(1).unwrap_or_else(|| panic!("{e}"));
    let (at, words) = lines[1].strip_prefix("STACK ").and_then(|l| l.split_once(": ")).unwrap_or_else(|| panic!("{e}"));
    assert_eq!(at, ecx, "the words start at ECX: {e}");
    let (skipped, copied) = words.split_once(" | ").unwrap_or_else(|| panic!("{e}"));
    let copied: Vec<&str> = copied.split(' ').collect();
    assert_eq!((copied[0], copied[2]), ("0x1", "0xe"), "fd 1, count 14: {e}");
    assert_eq!(skipped, copied[1], "hello's dummy word is the pushed buf: {e}");
    assert_eq!(lines[2], format!("{W14} = 14"), "{e}");
    let exit = lines.iter().position(|l| *l == "exit(0)").unwrap();
    assert!(lines[exit - 1].starts_with(&format!("STACK {ecx}: ")) && lines[exit - 1].ends_with(" | 0x0"), "{e}");
}

#[test]
fn hello_fault_eintr_once_retries() {
    for t in TARGETS {
        let o = xr(t, &["--trace", "--fault", "eintr-once"]);
        assert_eq!(o.stdout, b"Hello, world!\n", "{t}");
        assert_eq!(o.status.code(), Some(0), "{t}");
        // Only the calls: cargo may say it waits for a lock, and the
        // runner that it builds xnurun.
        let calls: Vec<String> = calls(&o).into_iter().filter(|l| l.starts_with("write(") || l.starts_with("exit(")).collect();
        assert_eq!(calls, [format!("{W14} = -1 EINTR (Interrupted system call)"), format!("{W14} = 14"), "exit(0)".into()], "{t}");
    }
}

/// A write that takes nothing would loop for ever: hello treats it as a
/// failure and exits 1 after that one write, on every XNU convention.
#[test]
fn hello_zero_byte_write_exits_1() {
    for t in TARGETS {
        let o = xr(t, &["--trace", "--fault", "short:0"]);
        assert_eq!(o.stdout, b"", "{t}");
        assert_eq!(o.status.code(), Some(1), "{t}: {}", stderr(&o));
        assert_eq!(calls(&o), [format!("{W14} = 0"), "exit(1)".into(), "+++ exited with 1 +++".into()], "{t}");
    }
}

#[test]
fn hello_fault_short_5_finishes_in_three_writes() {
    for t in TARGETS {
        let o = xr(t, &["--trace", "--fault", "short:5"]);
        assert_eq!(o.stdout, b"Hello, world!\n", "{t}");
        assert_eq!(o.status.code(), Some(0), "{t}");
        assert_eq!(
            calls(&o),
            [
                format!("{W14} = 5"),
                "write(1, \", world!\\n\", 9) = 5".into(),
                "write(1, \"ld!\\n\", 4) = 4".into(),
                "exit(0)".into(),
                "+++ exited with 0 +++".into()
            ],
            "{t}"
        );
    }
}

#[test]
fn hello_fault_errors_exit_1_after_one_write() {
    for t in TARGETS {
        for (kind, text) in [
            ("enospc", "ENOSPC (No space left on device)"),
            ("ebadf", "EBADF (Bad file descriptor)"),
            ("epipe", "EPIPE (Broken pipe)"),
        ] {
            let o = xr(t, &["--trace", "--fault", kind]);
            assert!(o.stdout.is_empty(), "{t} {kind}");
            assert_eq!(o.status.code(), Some(1), "{t} {kind}");
            assert_eq!(calls(&o), [format!("{W14} = -1 {text}"), "exit(1)".into(), "+++ exited with 1 +++".into()], "{t} {kind}");
        }
    }
}

#[test]
fn hello_fault_restart_reissues_the_call() {
    for t in TARGETS {
        let o = xr(t, &["--trace", "--fault", "restart"]);
        assert_eq!(o.stdout, b"Hello, world!\n", "{t}");
        assert_eq!(o.status.code(), Some(0), "{t}");
        assert_eq!(calls(&o), [format!("{W14} = ? ERESTART (restarted)"), format!("{W14} = 14"), "exit(0)".into(), "+++ exited with 0 +++".into()], "{t}");
        // The re-issued call starts from the same registers. On x86_64 the
        // trace shows RCX as `syscall` itself leaves it, the return
        // address, which is also what XNU's saved state holds (hi64_syscall
        // saves rcx as the user rip).
        let regs: Vec<Vec<String>> = stderr(&o)
            .lines()
            .filter(|l| is_regs(l) && !l.starts_with("-> ") && !l.starts_with("STACK "))
            .map(|l| l.split(' ').map(String::from).collect())
            .collect();
        let field = |r: &Vec<String>, k: &str| r.iter().position(|x| x == k).map(|i| r[i + 1].clone()).unwrap_or_default();
        if t.starts_with("x86_64") {
            let hex = |s: String| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
            for r in &regs[..2] {
                assert_eq!(hex(field(r, "RCX")), hex(field(r, "RIP")) + 2, "{t}");
            }
            for k in ["RIP", "RAX", "RDX", "RSP", "RDI", "RSI", "R8", "R9"] {
                assert_eq!(field(&regs[0], k), field(&regs[1], k), "{t} {k}");
            }
        } else {
            // i386 and arm64: every register the same; on arm64 that is
            // `pc -= 4` back onto the svc.
            assert_eq!(regs[0], regs[1], "{t}");
            // On i386, the same words on the stack.
            let e = stderr(&o);
            let stacks: Vec<&str> = e.lines().filter(|l| l.starts_with("STACK ")).collect();
            assert_eq!(stacks.len(), if t.starts_with("i686") { 3 } else { 0 }, "{t}: {e}");
            assert!(stacks.is_empty() || stacks[0] == stacks[1], "{t}: {e}");
        }
    }
}

#[test]
fn hello_broken_pipe_kills_with_sigpipe_unless_ignored() {
    use std::os::unix::process::CommandExt;
    for t in TARGETS {
        for ignore in [false, true] {
            let (r, w) = std::io::pipe().unwrap();
            drop(r);
            let mut c = xnurun();
            c.arg("--trace").arg(hello(t)).stdout(w);
            if ignore {
                // SAFETY: only async-signal-safe calls between fork and exec.
                unsafe {
                    c.pre_exec(|| {
                        nix::sys::signal::signal(nix::sys::signal::Signal::SIGPIPE, nix::sys::signal::SigHandler::SigIgn)
                            .map(|_| ())
                            .map_err(std::io::Error::from)
                    });
                }
            }
            let o = c.output().unwrap();
            if ignore {
                assert_eq!(o.status.code(), Some(1), "{t}: EPIPE, then hello exits 1: {}", stderr(&o));
                // The write itself failed with EPIPE, not some other error.
                assert!(stderr(&o).contains("= -1 EPIPE (Broken pipe)"), "{t}: {}", stderr(&o));
            } else {
                assert_eq!(o.status.code(), Some(141), "{t}: SIGPIPE: {}", stderr(&o));
                assert!(stderr(&o).contains("SIGPIPE"), "{t}");
            }
        }
    }
}

#[test]
fn cargo_run_uses_xnurun_as_the_runner() {
    for t in TARGETS {
        let o = hello_tests::cargo(&hello_tests::target_dir(), &["run", "--quiet", "--release", "--target", t]);
        assert_eq!(o.stdout, b"Hello, world!\n", "{t}: {}", stderr(&o));
        assert_eq!(o.status.code(), Some(0), "{t}");
    }
}

/// xnurun's own options reach it through cargo in XNURUN_FLAGS (what
/// follows cargo's `--` is the guest's): a traced run with a fault.
#[test]
fn cargo_run_passes_xnurun_flags() {
    for t in TARGETS {
        let args = ["run", "--quiet", "--release", "--target", t];
        let o = hello_tests::cargo_with(&hello_tests::target_dir(), &args, &[("XNURUN_FLAGS", "--trace --fault eintr-once")]);
        assert_eq!(o.stdout, b"Hello, world!\n", "{t}: {}", stderr(&o));
        // Only the calls: cargo may say it waits for a lock, and the
        // runner that it builds xnurun.
        let calls: Vec<String> = calls(&o).into_iter().filter(|l| l.starts_with("write(") || l.starts_with("exit(")).collect();
        assert_eq!(calls, [format!("{W14} = -1 EINTR (Interrupted system call)"), format!("{W14} = 14"), "exit(0)".into()], "{t}");
    }
}

/// The trace shows the state after each call: where the thread resumes,
/// the return registers, what the kernel overwrote and the carry, as each
/// convention's kernel function leaves them.
#[test]
fn the_trace_shows_the_registers_after_the_call() {
    let after = |t: &str| -> String {
        let o = xr(t, &["--trace"]);
        stderr(&o).lines().find(|l| l.starts_with("-> ")).unwrap_or_default().to_string()
    };
    let field = |line: &str, name: &str| -> u64 {
        let v = line.split_whitespace().skip_while(|w| *w != name).nth(1).unwrap_or_else(|| panic!("no {name} in {line}"));
        u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap()
    };
    // x86_64: rax = 14, rdx = 0 (uu_rval[1] of an ssize_t call), rcx = the
    // resume rip and r11 the flags (L_sysret), carry clear.
    let a = after("x86_64-apple-darwin");
    assert_eq!((field(&a, "RAX"), field(&a, "RDX"), field(&a, "CF")), (14, 0, 0), "{a}");
    assert_eq!(field(&a, "RCX"), field(&a, "RIP"), "{a}");
    assert_eq!(field(&a, "R11") & 1, 0, "{a}");
    // i386 sysexit: eip = edx, esp = ecx, eax = 14, carry clear.
    let a = after("i686-apple-darwin");
    assert_eq!((field(&a, "EAX"), field(&a, "CF")), (14, 0), "{a}");
    assert_eq!(field(&a, "EIP"), field(&a, "EDX"), "{a}");
    assert_eq!(field(&a, "ESP"), field(&a, "ECX"), "{a}");
    // arm64: x0 = 14, x1 = 0 for write, carry clear.
    let a = after("aarch64-apple-darwin");
    assert_eq!((field(&a, "X0"), field(&a, "X1"), field(&a, "C")), (14, 0, 0), "{a}");
}

/// The --help text's example is what xnurun prints for the x86_64 hello,
/// run as the guide runs it (no environment, from the checkout's root).
#[test]
fn the_help_example_is_a_real_trace() {
    let help = String::from_utf8(xnurun().arg("--help").output().unwrap().stdout).unwrap();
    let example: Vec<&str> = help
        .lines()
        .filter(|l| ["  RIP ", "  write(", "  -> ", "  exit(", "  +++ "].iter().any(|p| l.starts_with(p)))
        .map(str::trim_start)
        .collect();
    assert_eq!(example.len(), 6, "{help}");
    // The hello this test built, by its path from the checkout's root:
    // not target/x86_64-apple-darwin, which only an earlier build of the
    // user's own fills.
    let bin = hello("x86_64-apple-darwin");
    let relative = bin.strip_prefix(hello_tests::root()).unwrap();
    let o = xnurun()
        .env_clear()
        .current_dir(hello_tests::root())
        .arg("--trace")
        .arg(relative)
        .output()
        .unwrap();
    let trace = stderr(&o);
    assert_eq!(example, trace.lines().collect::<Vec<_>>(), "--help shows a trace xnurun does not print:\n{trace}");
}

/// An image that maps below vm.mmap_min_addr (the i386 hello's `__TEXT`
/// at 0x1000 under Debian's 65536) runs on the emulated CPU, said once on
/// stderr; xnurun never changes the setting. At or under it, nothing is
/// said and the real CPU runs it (AMD's choice), single-stepped on an
/// Intel CPU, where hello's `sysenter` with EBP 0 would lose its call
/// number natively (docs/limits.md).
#[test]
fn below_mmap_min_addr_the_emulated_cpu_runs_the_image_and_says_so() {
    let bin = hello("i686-apple-darwin");
    let o = xnurun().args(["--mmap-min-addr", "65536", "--x86-strategy", "amd"]).arg(&bin).output().unwrap();
    assert_eq!((o.status.code(), o.stdout.as_slice()), (Some(0), &b"Hello, world!\n"[..]), "{}", stderr(&o));
    let err = stderr(&o);
    let said: Vec<&str> = err.lines().collect();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].starts_with("xnurun: the image maps 0x1000, below vm.mmap_min_addr (65536)") && said[0].contains("emulated CPU"), "{said:?}");
    let stepped: &[&str] = if on_intel() { &["--max-steps", "100000000"] } else { &[] };
    let o = xnurun().args(["--mmap-min-addr", "4096", "--x86-strategy", "amd", "--trace"]).args(stepped).arg(&bin).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("mmap_min_addr"), "{}", stderr(&o));
    // The x86_64 hello maps nothing below 4 GiB but its page zero.
    let o = xnurun().args(["--mmap-min-addr", "65536"]).arg(hello("x86_64-apple-darwin")).output().unwrap();
    assert_eq!((o.status.code(), stderr(&o).as_str()), (Some(0), ""));
}
