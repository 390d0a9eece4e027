//! The examples past hello (examples/), on every flavor, through the
//! user's own commands: `cargo run --release --example NAME --target T`.
//! Linux targets run natively (aarch64 through qemu-user); XNU targets
//! under xnurun, the cargo runner.

use hello_tests::{cargo, root, target_dir};
use std::io::Write;
use std::process::{Command, Output, Stdio};

const TARGETS: [(&str, &str); 6] = [
    ("x86_64-unknown-linux-gnu", "Linux x86_64"),
    ("i686-unknown-linux-gnu", "Linux i386"),
    ("aarch64-unknown-linux-gnu", "Linux aarch64"),
    ("x86_64-apple-darwin", "XNU x86_64"),
    ("i686-apple-darwin", "XNU i386"),
    ("aarch64-apple-darwin", "XNU arm64"),
];

/// Builds the example, and says whether this host can run it (the i386
/// Linux flavor needs IA-32 emulation, as the hello tests say).
fn built(example: &str, target: &str) -> bool {
    let out = cargo(&target_dir(), &["build", "--release", "--example", example, "--target", target]);
    assert!(out.status.success(), "cargo build --example {example} --target {target}:\n{}", String::from_utf8_lossy(&out.stderr));
    target != "i686-unknown-linux-gnu" || hello_tests::ia32_runs(&target_dir().join(target).join("release/examples").join(example))
}

/// `cargo run --release --example NAME --target T -- ARGS`, with `stdin`
/// fed in and `stdout` where `to` says (None: captured).
fn run(example: &str, target: &str, args: &[&str], stdin: &[u8], to: Option<Stdio>) -> Output {
    let cargo_bin = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo_bin);
    cmd.current_dir(root())
        .args(["run", "--quiet", "--release", "--target-dir"])
        .arg(target_dir())
        .args(["--example", example, "--target", target, "--"])
        .args(args)
        .env("EXAMPLE_MARK", "42")
        .stdin(Stdio::piped())
        .stdout(to.unwrap_or(Stdio::piped()))
        .stderr(Stdio::piped());
    for var in ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS"] {
        cmd.env_remove(var);
    }
    let mut child = cmd.spawn().expect("cargo run");
    let mut pipe = child.stdin.take().expect("stdin");
    let input = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let out = child.wait_with_output().expect("cargo run output");
    feeder.join().expect("stdin feeder");
    out
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn args_prints_the_initial_stack_of_each_convention() {
    for (t, _) in TARGETS {
        if !built("args", t) {
            continue;
        }
        let o = run("args", t, &["one", "two words"], b"", None);
        assert_eq!(o.status.code(), Some(0), "{t}: {}", String::from_utf8_lossy(&o.stderr));
        let out = text(&o);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.first(), Some(&"argc 3"), "{t}: {out}");
        assert!(lines[1].starts_with("argv[0] ") && lines[1].ends_with("examples/args"), "{t}: {out}");
        assert_eq!(lines[2..4], ["argv[1] one", "argv[2] two words"], "{t}: {out}");
        assert!(lines.iter().any(|l| l.starts_with("envp[") && l.ends_with("] EXAMPLE_MARK=42")), "{t}: {out}");
        // XNU's fourth array starts with executable_path=; Linux has none.
        let apple = lines.iter().find(|l| l.starts_with("apple[0] "));
        if t.contains("apple") {
            assert!(apple.is_some_and(|l| l.starts_with("apple[0] executable_path=") && l.ends_with("examples/args")), "{t}: {out}");
        } else {
            assert!(apple.is_none(), "{t}: {out}");
        }
    }
}

#[test]
fn cat_copies_stdin_and_fails_on_a_full_stdout() {
    let input: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    for (t, _) in TARGETS {
        if !built("cat", t) {
            continue;
        }
        let o = run("cat", t, &[], &input, None);
        assert_eq!(o.status.code(), Some(0), "{t}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(o.stdout == input, "{t}: {} bytes out of {}", o.stdout.len(), input.len());
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
        let o = run("cat", t, &[], b"hi\n", Some(Stdio::from(full)));
        assert_eq!(o.status.code(), Some(1), "{t}: writing to /dev/full must fail: {}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn fmt_prints_numbers_with_core_fmt() {
    for (t, name) in TARGETS {
        if !built("fmt", t) {
            continue;
        }
        let o = run("fmt", t, &[], b"", None);
        assert_eq!(o.status.code(), Some(0), "{t}: {}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            text(&o),
            format!("{name} 48879 = 0xbeef = 0o137357 = 0b1011111011101111\nline 1: [1, 2, 3]    -42|two   |\nline 2: 1.234567e6\n"),
            "{t}"
        );
    }
}
