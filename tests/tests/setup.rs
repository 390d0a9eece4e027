//! `.ci/setup` on a machine without apt-get: it must say which packages are
//! missing and how to get them, and go on with the rest instead of dying on
//! the missing apt-get.

use hello_tests::*;
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

/// A PATH holding every command of the real one except `hidden`: one folder
/// of symbolic links, the first of each name winning as PATH lookup would.
fn path_without(hidden: &[&str], dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let mut seen: HashSet<std::ffi::OsString> = HashSet::new();
    for d in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if hidden.iter().any(|h| name == *h) || !seen.insert(name.clone()) {
                continue;
            }
            std::os::unix::fs::symlink(entry.path(), dir.join(&name)).unwrap();
        }
    }
    dir.to_str().unwrap().to_string()
}

#[test]
fn setup_without_apt_get_names_what_to_install_and_goes_on() {
    let dir = tempfile("no-apt-path");
    // strace hidden too, so that something is missing on any machine.
    let path = path_without(&["apt-get", "strace"], &dir);
    let out = Command::new("bash")
        .arg(root().join(".ci/setup"))
        .env("PATH", &path)
        .output()
        .expect("run .ci/setup");
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "a missing apt-get is not a failure:\n{err}");
    assert!(!err.contains("command not found"), "{err}");
    assert!(!err.contains("with apt-get"), "no install was attempted:\n{err}");
    let missing = err
        .lines()
        .find(|l| l.starts_with("setup: MISSING: "))
        .unwrap_or_else(|| panic!("no MISSING line:\n{err}"));
    assert!(
        missing.split_whitespace().any(|w| w == "strace"),
        "the hidden tool is named: {missing}"
    );
    assert!(missing.contains("no apt-get"), "{missing}");
    assert!(err.contains("install them with this system's package manager, then run .ci/setup again"), "{err}");
    assert!(err.trim_end().ends_with("(see MISSING above)"), "the last line repeats it:\n{err}");
}

#[test]
#[cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]
fn building_xnurun_without_musl_gcc_says_how_to_get_it() {
    let dir = tempfile("no-musl-path");
    let path = path_without(&["musl-gcc"], &dir);
    let out = Command::new(root().join(".cargo/build-xnurun")).env("PATH", &path).output().expect("run .cargo/build-xnurun");
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(out.stdout.is_empty(), "no binary path is printed");
    assert!(err.contains("needs musl-gcc: apt-get install musl-tools (or run .ci/setup)"), "{err}");
}
