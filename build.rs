//! Link arguments for hello and its examples, per target. They apply to
//! those binaries only (`rustc-link-arg-bins`, `-examples`), never to the
//! workspace's tools.

use std::env;

fn main() {
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let dir = env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-changed=.cargo/MacOSX.sdk/usr/lib/libSystem.tbd");
    let args: Vec<String> = match os.as_str() {
        // rustc drives the link through `cc`, hence the `-Wl,` forms. For
        // aarch64 on another host, .cargo/linux-aarch64-linker stands in
        // for `cc` and hands the same arguments to rust-lld.
        "linux" => vec![
            // No crt1.o, no libc, no libgcc: `_start` is ours.
            "-nostartfiles".into(),
            "-nostdlib".into(),
            // Nothing to load at run time: no PT_INTERP, no PT_DYNAMIC,
            // and a fixed address, so no self-relocation either.
            "-static".into(),
            "-no-pie".into(),
            format!("-Wl,-T,{dir}/link.ld"),
            // No .note.gnu.build-id, no .eh_frame_hdr: nobody reads them.
            "-Wl,--build-id=none".into(),
            "-Wl,--no-eh-frame-hdr".into(),
            // No symbol table (see link.ld for how `_start` keeps its name).
            "-Wl,--strip-all".into(),
            // Sections need no page alignment inside the one segment.
            "-Wl,-z,norelro".into(),
            "-Wl,-z,noseparate-code".into(),
        ],
        // arm64: rust-lld as ld64 itself (.cargo/config.toml), so its own
        // flags, with no `-Wl,`. XNU runs no static arm64 executable
        // (parse_machfile, bsd/kern/mach_loader.c), so this is a dyld image;
        // dyld calls the LC_MAIN entry, named here, as main().
        "macos" if arch == "aarch64" => vec![
            "-e".into(),
            "__start".into(),
            // libSystem is named and never called: dyld-1323+ refuses a
            // main executable that names no dylib once its SDK version is
            // 15.4 or later (validSemanticsLinkedDylibs, dyld's
            // mach_o/UnsafeHeader.cpp), and loads libSystem anyway
            // (MachOFile::forEachDependentDylib). The stub that names it
            // exports nothing: .cargo/MacOSX.sdk/usr/lib/libSystem.tbd.
            "-lSystem".into(),
        ],
        // The same flags Apple's ld64 would take through clang; the
        // project's own linker (tools/machlink) reads them too.
        "macos" => vec![
            "-nostartfiles".into(),
            "-static".into(),
            "-Wl,-e,__start".into(),
        ],
        _ => vec![],
    };
    for arg in &args {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    // The examples (examples/) are ordinary no_std Rust with writable data:
    // on Linux the linker's own script lays them out (hello's link.ld keeps
    // one read-execute segment, and no symbol table); elsewhere they link
    // as hello does.
    for arg in &args {
        if os == "linux" && (arg.starts_with("-Wl,-T,") || arg == "-Wl,--strip-all") {
            continue;
        }
        println!("cargo:rustc-link-arg-examples={arg}");
    }
}
