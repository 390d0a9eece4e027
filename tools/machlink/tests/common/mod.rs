//! Shared by the integration tests: the real hello objects and images, made
//! by the user's own cargo commands, and a way to run machlink.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const X86_64: &str = "x86_64-apple-darwin";
pub const I686: &str = "i686-apple-darwin";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// `cargo build --release --target <target>`, exactly as the README says.
pub fn image(target: &str) -> PathBuf {
    hello_tests::hello(target)
}

/// hello's object file, kept by `-C save-temps` (rustc deletes it after a
/// successful link otherwise), from a separate target dir.
pub fn object(target: &str) -> PathBuf {
    let dir = root().join("target/machlink-tests/objects");
    let out = hello_tests::cargo(&dir, &["rustc", "--release", "--target", target, "--bin", "hello", "--", "-C", "save-temps"]);
    assert!(out.status.success(), "cargo rustc failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let deps = dir.join(target).join("release/deps");
    let mut objects: Vec<_> = std::fs::read_dir(&deps)
        .expect("deps dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("hello-") && name.ends_with(".rcgu.o")
        })
        .collect();
    objects.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    objects.pop().expect("hello's object in deps (save-temps)")
}

/// The compiler_builtins rlib rustc puts on every link line.
pub fn builtins(target: &str) -> PathBuf {
    let lib = if target == I686 {
        root().join("target/sysroot/lib/rustlib").join(target).join("lib")
    } else {
        let out = Command::new("rustc").args(["--print", "sysroot"]).output().expect("rustc --print sysroot");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("lib/rustlib").join(target).join("lib")
    };
    std::fs::read_dir(&lib)
        .unwrap_or_else(|e| panic!("{}: {e}", lib.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("libcompiler_builtins-") && name.ends_with(".rlib")
        })
        .expect("libcompiler_builtins rlib")
}

pub fn arch(target: &str) -> &'static str {
    if target == I686 { "i386" } else { "x86_64" }
}

/// machlink with rustc's link line for `target`, the inputs replaced.
pub fn link_line(target: &str, inputs: &[&Path], out: &Path) -> Vec<String> {
    let mut args: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    for a in ["-arch", arch(target), "-mmacosx-version-min=10.12.0", "-o"] {
        args.push(a.into());
    }
    args.push(out.display().to_string());
    for a in ["-Wl,-dead_strip", "-nodefaultlibs", "-nostartfiles", "-static", "-Wl,-e,__start"] {
        args.push(a.into());
    }
    args
}

pub fn machlink(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_machlink")).args(args).output().expect("run machlink")
}

/// A scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = root().join("target/machlink-tests/scratch").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// llvm-objdump from the rustup component, else from PATH; never skipped.
pub fn objdump() -> PathBuf {
    hello_tests::llvm_objdump()
}
