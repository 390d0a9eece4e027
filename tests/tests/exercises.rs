//! docs/exercises.md, run as written: each exercise's command (in a copy of
//! the crate with its one changed line, where it has one), its trace lines
//! in order and its exit status. Every command, edit and expected line
//! here must also appear verbatim in the page, so the two cannot drift.

use hello_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Exercise {
    command: &'static str,
    /// The file, the text the page says to change, and what it becomes.
    edit: Option<(&'static str, &'static str, &'static str)>,
    trace: &'static [&'static str],
    status: i32,
}

const EXERCISES: &[Exercise] = &[
    Exercise {
        command: "XNURUN_FLAGS=\"--trace --fault eintr-once\" cargo run -q --release --target x86_64-apple-darwin",
        edit: None,
        trace: &[
            "write(1, \"Hello, world!\\n\", 14) = -1 EINTR (Interrupted system call)",
            "write(1, \"Hello, world!\\n\", 14) = 14",
            "exit(0)",
            "+++ exited with 0 +++",
        ],
        status: 0,
    },
    Exercise {
        command: "XNURUN_FLAGS=\"--trace --fault short:5\" cargo run -q --release --target x86_64-apple-darwin",
        edit: None,
        trace: &[
            "write(1, \"Hello, world!\\n\", 14) = 5",
            "write(1, \", world!\\n\", 9) = 5",
            "write(1, \"ld!\\n\", 4) = 4",
            "exit(0)",
            "+++ exited with 0 +++",
        ],
        status: 0,
    },
    Exercise {
        command: "XNURUN_FLAGS=\"--trace --fault enospc\" cargo run -q --release --target x86_64-apple-darwin",
        edit: None,
        trace: &["write(1, \"Hello, world!\\n\", 14) = -1 ENOSPC (No space left on device)", "exit(1)", "+++ exited with 1 +++"],
        status: 1,
    },
    Exercise {
        command: "XNURUN_FLAGS=\"--trace --fault restart\" cargo run -q --release --target x86_64-apple-darwin",
        edit: None,
        trace: &[
            "write(1, \"Hello, world!\\n\", 14) = ? ERESTART (restarted)",
            "write(1, \"Hello, world!\\n\", 14) = 14",
            "exit(0)",
            "+++ exited with 0 +++",
        ],
        status: 0,
    },
    Exercise {
        command: "cargo build -q --release --target x86_64-apple-darwin && target/tools/x86_64-unknown-linux-musl/release/xnurun --trace target/x86_64-apple-darwin/release/hello >&-",
        edit: None,
        trace: &["write(1, \"Hello, world!\\n\", 14) = -1 EBADF (Bad file descriptor)", "exit(1)", "+++ exited with 1 +++"],
        status: 1,
    },
    Exercise {
        command: "XNURUN_FLAGS=--trace cargo run -q --release --target x86_64-apple-darwin",
        edit: Some(("src/xnu_x86_64.rs", "\"mov eax, 0x2000004\",", "\"mov eax, 4\",")),
        trace: &["syscall class 0 (rax 0x4) = ? EXC_SYSCALL", "+++ killed by SIGSYS +++"],
        status: 140,
    },
    Exercise {
        command: "XNURUN_FLAGS=--trace cargo run -q --release --target i686-apple-darwin",
        // "the second `"push eax",`, the one right after `"push 1",`"
        edit: Some(("src/xnu_i386.rs", "        \"push 1\",\n        \"push eax\",\n", "        \"push 1\",\n")),
        trace: &["write(4539, 0xe, 1) = -1 EBADF (Bad file descriptor)", "exit(4539)", "+++ exited with 187 +++"],
        status: 187,
    },
];

/// A copy of the crate whose `src/` can be changed: everything else is a
/// link to the checkout, and the built tools and i386 `core` are shared.
fn copy_with(edit: (&str, &str, &str), name: &str) -> PathBuf {
    let (file, from, to) = edit;
    let dir = std::env::temp_dir().join(format!("exercise-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("target")).unwrap();
    for e in std::fs::read_dir(root().join("src")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join("src").join(p.file_name().unwrap())).unwrap();
    }
    for f in ["Cargo.toml", "Cargo.lock", "build.rs", "link.ld", ".cargo", "tools", "tests", "examples"] {
        std::os::unix::fs::symlink(root().join(f), dir.join(f)).unwrap();
    }
    for t in ["sysroot", "tools"] {
        std::os::unix::fs::symlink(root().join("target").join(t), dir.join("target").join(t)).unwrap();
    }
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{file}: the page's edit must match exactly once");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    dir
}

fn run(command: &str, dir: &Path, target_dir: &Path) -> (String, String, Option<i32>) {
    // The paths the page names are under target/; a build here may go to
    // another directory (the tests' own, or the copy's).
    let mut command = command.to_string();
    for t in ["x86_64-apple-darwin", "i686-apple-darwin"] {
        command = command.replace(&format!(" target/{t}/"), &format!(" {}/{t}/", target_dir.display()));
    }
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(&command).current_dir(dir).env("CARGO_TARGET_DIR", target_dir);
    for var in ["CARGO_BUILD_TARGET", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS", "XNURUN_FLAGS"] {
        cmd.env_remove(var);
    }
    if dir != root() {
        // The tools' scripts find their crates from where they live: run
        // the checkout's own, so that they build (and find built) the
        // tools of the checkout, not a second copy through the links.
        for t in ["X86_64_APPLE_DARWIN", "I686_APPLE_DARWIN"] {
            cmd.env(format!("CARGO_TARGET_{t}_LINKER"), root().join(".cargo/machlink"));
            cmd.env(format!("CARGO_TARGET_{t}_RUNNER"), root().join(".cargo/xnurun"));
        }
    }
    let out = cmd.output().unwrap();
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned(), out.status.code())
}

#[test]
fn every_exercise_gives_the_output_the_page_shows() {
    let page = std::fs::read_to_string(root().join("docs/exercises.md")).unwrap();
    for (n, e) in EXERCISES.iter().enumerate() {
        assert!(page.contains(e.command), "exercise {}: the page lacks `{}`", n + 1, e.command);
        for line in e.trace {
            assert!(page.contains(&format!("\n{line}\n")), "exercise {}: the page lacks the line {line}", n + 1);
        }
        let (dir, target_dir) = match e.edit {
            None => (root(), target_dir()),
            Some(edit) => {
                let (_, from, to) = edit;
                for text in [from, to] {
                    let first = text.trim().lines().next().unwrap().trim();
                    assert!(page.contains(first), "exercise {}: the page lacks {first}", n + 1);
                }
                let dir = copy_with(edit, &(n + 1).to_string());
                let t = dir.join("target");
                (dir, t)
            }
        };
        let (out, err, status) = run(e.command, &dir, &target_dir);
        let calls: Vec<&str> = err
            .lines()
            .filter(|l| !["RIP ", "EIP ", "PC ", "STACK ", "-> ", "xnurun: "].iter().any(|p| l.starts_with(p)))
            .collect();
        assert_eq!(calls, e.trace, "exercise {}: {}\nstdout: {out}\nstderr: {err}", n + 1, e.command);
        assert_eq!(status, Some(e.status), "exercise {}: {}\n{err}", n + 1, e.command);
        let wrote = e.trace.iter().any(|l| l.ends_with("= 14") || l.ends_with("= 4"));
        assert_eq!(out, if wrote { "Hello, world!\n" } else { "" }, "exercise {}", n + 1);
        if e.edit.is_some() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
