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

/// The check itself can fail: a copy of the pages with one byte changed in
/// one of them (the same length) is out of date, named; so is a page that
/// nothing makes any more.
#[test]
fn the_docs_check_fails_on_a_stale_page_and_names_it() {
    strace();
    tool("python3", "apt-get install python3");
    let copy = std::env::temp_dir().join(format!("docs-copy-{}", std::process::id()));
    for sub in ["listings", "anatomy", "runs"] {
        std::fs::create_dir_all(copy.join(sub)).unwrap();
        for e in std::fs::read_dir(root().join("docs").join(sub)).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, copy.join(sub).join(p.file_name().unwrap())).unwrap();
        }
    }
    let page = copy.join("runs/linux_x86_64.txt");
    let mut bytes = std::fs::read(&page).unwrap();
    let at = bytes.iter().position(|&b| b == b'4').expect("a digit to change");
    bytes[at] = b'5';
    std::fs::write(&page, bytes).unwrap();
    let check = |only: &[&str]| {
        Command::new(root().join("docs/generate")).args(["--check", "--against"]).arg(&copy).args(only).current_dir(root()).output().unwrap()
    };
    let out = check(&["linux_x86_64"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a changed page passed the check: {err}");
    assert!(err.contains("out of date: runs/linux_x86_64.txt"), "{err}");
    // The page mended, and one that no convention makes added.
    std::fs::copy(root().join("docs/runs/linux_x86_64.txt"), &page).unwrap();
    std::fs::write(copy.join("runs/old_convention.txt"), "stale\n").unwrap();
    let out = check(&["linux_x86_64"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an orphan page passed the check: {err}");
    assert!(err.contains("checked in but made by nothing: runs/old_convention.txt"), "{err}");
    assert!(!err.contains("out of date"), "{err}");
    std::fs::remove_dir_all(&copy).unwrap();
}
