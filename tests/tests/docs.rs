//! The guide's generated listings (docs/listings, docs/anatomy, docs/runs)
//! must be what the current build produces: `docs/generate --check`
//! regenerates them and fails on any difference.

use hello_tests::*;
use std::process::Command;

#[test]
fn generated_docs_match_the_build() {
    strace();
    tool("python3", "apt-get install python3");
    qemu_aarch64(); // docs/runs/linux_aarch64.txt is qemu-aarch64 -strace
    let out = Command::new(root().join("docs/generate"))
        .arg("--check")
        .args(std::env::var("DOCS_ONLY").ok().as_deref().map(str::split_whitespace).into_iter().flatten())
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
