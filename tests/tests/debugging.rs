//! docs/debugging.md, run as written: every gdb command on the page, with
//! the lines the page shows after it, in that order, in gdb's output.

use hello_tests::*;
use std::process::Command;

/// The page's `sh` blocks, each with the `text` block that follows it.
fn examples(page: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut blocks = page.split("```").skip(1).step_by(2).map(|b| b.split_once('\n').unwrap_or((b, "")));
    let mut pending: Option<String> = None;
    for (lang, body) in blocks.by_ref() {
        match lang {
            "sh" => pending = Some(body.trim().to_string()),
            "text" => {
                if let Some(cmd) = pending.take() {
                    out.push((cmd, body.lines().map(str::to_string).filter(|l| !l.is_empty()).collect()));
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_gdb_command_on_the_page_shows_what_the_page_says() {
    tool("gdb", "apt-get install gdb");
    hello("x86_64-unknown-linux-gnu"); // the page's first command
    let page = std::fs::read_to_string(root().join("docs/debugging.md")).unwrap();
    let examples = examples(&page);
    assert!(examples.len() >= 3, "{examples:?}");
    let dir = target_dir();
    for (command, expected) in examples {
        assert!(command.contains("gdb -batch"), "{command}");
        if command.contains("i686-unknown-linux-gnu") && !ia32_runs(&hello("i686-unknown-linux-gnu")) {
            continue;
        }
        let mut run = command.clone();
        for t in ["x86_64-unknown-linux-gnu", "i686-unknown-linux-gnu"] {
            run = run.replace(&format!(" target/{t}/"), &format!(" {}/{t}/", dir.display()));
        }
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(&run).current_dir(root()).env("CARGO_TARGET_DIR", &dir);
        for var in ["CARGO_BUILD_TARGET", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS"] {
            cmd.env_remove(var);
        }
        let out = cmd.output().unwrap();
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{command}\n{shown}{}", String::from_utf8_lossy(&out.stderr));
        let mut lines = shown.lines();
        for want in &expected {
            assert!(lines.any(|l| l == want), "{command}\nthe page shows `{want}` (in this order), gdb printed:\n{shown}");
        }
    }
}
