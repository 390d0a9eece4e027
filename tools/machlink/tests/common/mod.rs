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

/// The workspace's XNU runner, as cargo's runner for the darwin targets
/// builds it: it refuses (exit 126) an image XNU's loader would refuse,
/// and runs the rest, answering as XNU would.
pub fn xnurun() -> PathBuf {
    hello_tests::xnurun_binary()
}

/// Runs `image` under xnurun, natively: (exit status, stdout, stderr). A
/// guest still running after a minute is killed, so a loop fails the test
/// instead of hanging it.
pub fn run(image: &Path) -> (Option<i32>, String, String) {
    use std::process::Stdio;
    let mut child = Command::new(xnurun()).arg(image).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run xnurun");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = child.wait_with_output().expect("xnurun output");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The sysroot holding `core` for `target`: rustup's, or for the tier-3
/// i686-apple-darwin the one `.ci/setup` builds (see README).
pub fn sysroot(target: &str) -> PathBuf {
    if target == I686 {
        root().join("target/sysroot")
    } else {
        let out = Command::new("rustc").args(["--print", "sysroot"]).output().expect("rustc --print sysroot");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    }
}

/// `core` and `compiler_builtins`, the rlibs rustc puts on a no_std link
/// line.
pub fn core_rlibs(target: &str) -> Vec<PathBuf> {
    let lib = sysroot(target).join("lib/rustlib").join(target).join("lib");
    let find = |prefix: &str| {
        std::fs::read_dir(&lib)
            .unwrap_or_else(|e| panic!("{}: {e}", lib.display()))
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with(prefix) && name.ends_with(".rlib")
            })
            .unwrap_or_else(|| panic!("{prefix}*.rlib in {}", lib.display()))
    };
    vec![find("libcore-"), find("libcompiler_builtins-")]
}

/// `rustc --emit=obj` of a no_std source, as a user compiling a program by
/// hand would; `opt` is rustc's `-C opt-level`.
pub fn compile(target: &str, source: &str, opt: &str, dir: &Path, name: &str) -> PathBuf {
    compile_crate(target, "bin", source, opt, dir, name)
}

fn compile_crate(target: &str, crate_type: &str, source: &str, opt: &str, dir: &Path, name: &str) -> PathBuf {
    let src = dir.join(format!("{name}.rs"));
    std::fs::write(&src, source).expect("write source");
    let obj = dir.join(format!("{name}.o"));
    let out = Command::new("rustc")
        .args(["--edition", "2024", "--crate-type", crate_type, "--emit=obj", "-C", "panic=abort", "-C", "codegen-units=1"])
        .arg("-C")
        .arg(format!("opt-level={opt}"))
        .args(["--target", target, "--sysroot"])
        .arg(sysroot(target))
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run rustc");
    assert!(out.status.success(), "rustc {name} -C opt-level={opt} --target {target}:\n{}", String::from_utf8_lossy(&out.stderr));
    obj
}

/// Hand-written assembly (AT&T syntax), assembled by rustc's own LLVM
/// assembler through `global_asm!`: always there, unlike a separate
/// llvm-mc. A library crate, so that it brings no panic handler of its
/// own and several such objects link together.
pub fn assemble(target: &str, asm: &str, dir: &Path, name: &str) -> PathBuf {
    let source = format!("#![no_std]\ncore::arch::global_asm!(r#\"\n{asm}\n\"#, options(att_syntax));\n");
    compile_crate(target, "lib", &source, "0", dir, name)
}

/// machlink `inputs... -arch A -o out -e __start [-dead_strip]`.
pub fn link(target: &str, inputs: &[PathBuf], out: &Path, dead_strip: bool) -> Output {
    let mut args: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    args.extend(["-arch", arch(target), "-static", "-e", "__start", "-o"].map(String::from));
    args.push(out.display().to_string());
    if dead_strip {
        args.push("-dead_strip".into());
    }
    machlink(&args)
}

/// Links and insists that it worked.
pub fn link_ok(target: &str, inputs: &[PathBuf], out: &Path, dead_strip: bool) -> Vec<u8> {
    let result = link(target, inputs, out, dead_strip);
    assert!(result.status.success(), "machlink failed: {}", String::from_utf8_lossy(&result.stderr));
    assert!(result.stderr.is_empty(), "machlink said: {}", String::from_utf8_lossy(&result.stderr));
    std::fs::read(out).expect("image")
}

/// Links `inputs` into `dir/image`, insisting that it worked, and reads
/// the image back.
pub fn link_image(target: &str, inputs: &[PathBuf], dir: &Path, dead_strip: bool) -> (PathBuf, Image) {
    let out = dir.join("image");
    link_ok(target, inputs, &out, dead_strip);
    let image = Image::read(&out);
    (out, image)
}

/// Runs the image under xnurun and insists on its exit status.
pub fn assert_exits(image: &Path, status: i32) {
    let (got, _, stderr) = run(image);
    assert_eq!(got, Some(status), "xnurun: {stderr}");
}

/// llvm-readobj: Debian's or the rustup component's; never skipped.
pub fn readobj() -> PathBuf {
    let p = objdump().with_file_name("llvm-readobj");
    if p.is_file() { p } else { hello_tests::tool("llvm-readobj", "rustup component add llvm-tools") }
}

/// The independent readers agree the image is well formed: llvm-objdump's
/// Mach-O header dump and llvm-readobj both succeed without a warning.
/// Assembles each source into its own object, links them with
/// `-dead_strip` into `<scratch test>/image`, checks the image with
/// llvm-objdump and reads it back: (image path, llvm-objdump's headers,
/// the image).
pub fn link_sources(target: &str, test: &str, sources: &[&str]) -> (PathBuf, String, Image) {
    let dir = scratch(test);
    let objs: Vec<PathBuf> = sources.iter().enumerate().map(|(i, src)| assemble(target, src, &dir, &format!("o{i}"))).collect();
    let out = dir.join("image");
    link_ok(target, &objs, &out, true);
    let headers = check_with_llvm(&out);
    let image = Image::read(&out);
    (out, headers, image)
}

pub fn check_with_llvm(image: &Path) -> String {
    let out = Command::new(objdump()).args(["--macho", "--private-headers"]).arg(image).output().expect("llvm-objdump");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "llvm-objdump on {}: {stderr}", image.display());
    let headers = String::from_utf8_lossy(&out.stdout).into_owned();
    let out = Command::new(readobj()).args(["--file-headers", "--sections", "--symbols"]).arg(image).output().expect("llvm-readobj");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "llvm-readobj on {}: {stderr}", image.display());
    headers
}

/// An image read back with the `object` crate, field by field.
pub struct Image {
    pub data: Vec<u8>,
    pub cputype: object::macho::CpuType,
    pub filetype: object::macho::FileType,
    pub flags: object::macho::FileFlags,
    pub commands: Vec<object::macho::LoadCommandType>,
    /// (name, vmaddr, vmsize, fileoff, filesize, maxprot, initprot)
    pub segments: Vec<(String, u64, u64, u64, u64, u32, u32)>,
    /// (segname, sectname, addr, size, offset, flags)
    pub sections: Vec<(String, String, u64, u64, u64, u32)>,
    /// (name, value, external)
    pub symbols: Vec<(String, u64, bool)>,
    /// LC_UNIXTHREAD: flavor, count, then the state words.
    pub thread: Vec<u32>,
}

impl Image {
    pub fn read(path: &Path) -> Image {
        use object::LittleEndian as LE;
        use object::macho::{MachHeader32, MachHeader64};
        let data = std::fs::read(path).expect("image");
        match object::FileKind::parse(&*data).expect("file kind") {
            object::FileKind::MachO64 => Image::parse::<MachHeader64<LE>>(data),
            object::FileKind::MachO32 => Image::parse::<MachHeader32<LE>>(data),
            other => panic!("{}: not a thin Mach-O image: {other:?}", path.display()),
        }
    }

    fn parse<Mach: object::read::macho::MachHeader<Endian = object::LittleEndian>>(data: Vec<u8>) -> Image {
        use object::read::macho::{Nlist, Section as _, Segment as _};
        let header = Mach::parse(&*data, 0).expect("Mach-O header");
        let e = header.endian().expect("endian");
        let mut image = Image {
            data: Vec::new(),
            cputype: header.cputype(e),
            filetype: header.filetype(e),
            flags: header.flags(e),
            commands: Vec::new(),
            segments: Vec::new(),
            sections: Vec::new(),
            symbols: Vec::new(),
            thread: Vec::new(),
        };
        {
            let mut commands = header.load_commands(e, &*data, 0).expect("load commands");
            while let Some(cmd) = commands.next().expect("load command") {
                image.commands.push(cmd.cmd());
                if let Some((seg, sdata)) = Mach::Segment::from_command(cmd).expect("segment") {
                    image.segments.push((
                        String::from_utf8_lossy(seg.name()).into(),
                        seg.vmaddr(e).into(),
                        seg.vmsize(e).into(),
                        seg.fileoff(e).into(),
                        seg.filesize(e).into(),
                        seg.maxprot(e).0,
                        seg.initprot(e).0,
                    ));
                    for s in seg.sections(e, sdata).expect("sections") {
                        image.sections.push((
                            String::from_utf8_lossy(s.segment_name()).into(),
                            String::from_utf8_lossy(s.name()).into(),
                            s.addr(e).into(),
                            s.size(e).into(),
                            s.offset(e).into(),
                            s.flags(e).0,
                        ));
                    }
                } else if let Some(symtab) = cmd.symtab().expect("symtab") {
                    let table = symtab.symbols::<Mach, _>(e, &*data).expect("symbols");
                    for n in table.iter() {
                        let name = n.name(e, table.strings()).expect("symbol name");
                        image.symbols.push((String::from_utf8_lossy(name).into(), n.n_value(e).into(), n.n_type().is_ext()));
                    }
                } else if let Some((_, rest)) = cmd.unix_thread().expect("thread") {
                    image.thread = rest.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
                }
            }
        }
        image.data = data;
        image
    }

    pub fn symbol(&self, name: &str) -> u64 {
        self.symbols.iter().find(|s| s.0 == name).unwrap_or_else(|| panic!("symbol {name} in the image")).1
    }

    pub fn segment(&self, name: &str) -> Option<&(String, u64, u64, u64, u64, u32, u32)> {
        self.segments.iter().find(|s| s.0 == name)
    }

    pub fn section(&self, seg: &str, sect: &str) -> Option<&(String, String, u64, u64, u64, u32)> {
        self.sections.iter().find(|s| s.0 == seg && s.1 == sect)
    }

    /// The file bytes at virtual address `addr`, through the segment
    /// that maps it.
    pub fn at(&self, addr: u64, len: usize) -> &[u8] {
        let seg = self
            .segments
            .iter()
            .find(|s| addr >= s.1 && addr + len as u64 <= s.1 + s.4)
            .unwrap_or_else(|| panic!("{addr:#x} is in no segment's file bytes"));
        let off = (seg.3 + addr - seg.1) as usize;
        &self.data[off..off + len]
    }

    pub fn u32_at(&self, addr: u64) -> u32 {
        u32::from_le_bytes(self.at(addr, 4).try_into().unwrap())
    }

    pub fn u64_at(&self, addr: u64) -> u64 {
        u64::from_le_bytes(self.at(addr, 8).try_into().unwrap())
    }
}

/// Runs machlink expecting it to fail: one line, naming `file`, saying
/// `what`, exit status 1, and nothing at the output path.
pub fn link_fails(target: &str, inputs: &[PathBuf], out: &Path, dead_strip: bool, file: &Path, what: &str) {
    std::fs::write(out, b"stale image from an earlier run").unwrap();
    let result = link(target, inputs, out, dead_strip);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with(&format!("machlink: {}", file.display())), "names {}: {stderr}", file.display());
    assert!(stderr.contains(what), "says {what:?}: {stderr}");
    assert!(!out.exists(), "no output file after a failed link");
}
