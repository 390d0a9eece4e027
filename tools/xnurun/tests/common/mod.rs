//! Test-only Mach-O builder and a tiny assembler for hand-encoded guests.
//!
//! `Image::new64(code)` / `Image::new32(code)` give a 4096-byte static
//! MH_EXECUTE: `__PAGEZERO`, `__TEXT` r-x mapping file offset 0 (at
//! 0x100000000 / 0x1000), `LC_UNIXTHREAD` pointing at `code`, which sits at
//! file offset `CODE_OFF`. Every field is public so refusal tests can break
//! exactly one rule.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

pub const CODE_OFF: u64 = 0x400;
pub const BASE64: u64 = 0x1_0000_0000;
pub const BASE32: u64 = 0x1000;

#[derive(Clone, Debug)]
pub struct Seg {
    pub name: &'static str,
    pub vmaddr: u64,
    pub vmsize: u64,
    pub fileoff: u64,
    pub filesize: u64,
    pub maxprot: u32,
    pub initprot: u32,
}

#[derive(Clone, Debug)]
pub struct Image {
    pub is64: bool,
    pub magic: u32,
    pub cputype: u32,
    pub filetype: u32,
    pub flags: u32,
    pub segs: Vec<Seg>,
    pub flavor: u32,
    pub count: u32,
    pub entry: u64,
    pub sp: u64,
    /// The thread state's rax/eax (0 by default).
    pub rax: u64,
    /// Extra raw load commands (cmd, payload after cmd/cmdsize).
    pub extra: Vec<(u32, Vec<u8>)>,
    pub code: Vec<u8>,
    /// Where `code` starts in the file (CODE_OFF unless the load commands
    /// need more room).
    pub code_off: u64,
    pub size: usize,
}

impl Image {
    pub fn new64(code: Vec<u8>) -> Image {
        Image {
            is64: true,
            magic: 0xfeed_facf,
            cputype: 0x0100_0007,
            filetype: 2,
            flags: 1,
            segs: vec![
                Seg { name: "__PAGEZERO", vmaddr: 0, vmsize: BASE64, fileoff: 0, filesize: 0, maxprot: 0, initprot: 0 },
                Seg { name: "__TEXT", vmaddr: BASE64, vmsize: 0x1000, fileoff: 0, filesize: 0x1000, maxprot: 5, initprot: 5 },
            ],
            flavor: 4,
            count: 42,
            entry: BASE64 + CODE_OFF,
            sp: 0,
            rax: 0,
            extra: vec![],
            code,
            code_off: CODE_OFF,
            size: 4096,
        }
    }

    pub fn new32(code: Vec<u8>) -> Image {
        Image {
            is64: false,
            magic: 0xfeed_face,
            cputype: 7,
            filetype: 2,
            flags: 1,
            segs: vec![
                Seg { name: "__PAGEZERO", vmaddr: 0, vmsize: 0x1000, fileoff: 0, filesize: 0, maxprot: 0, initprot: 0 },
                Seg { name: "__TEXT", vmaddr: BASE32, vmsize: 0x1000, fileoff: 0, filesize: 0x1000, maxprot: 5, initprot: 5 },
            ],
            flavor: 1,
            count: 16,
            entry: BASE32 + CODE_OFF,
            sp: 0,
            rax: 0,
            extra: vec![],
            code,
            code_off: CODE_OFF,
            size: 4096,
        }
    }

    /// The code `off` bytes into `__TEXT`, the entry there; `__TEXT` is
    /// `text` bytes of the file, which is `file` bytes long (room before
    /// the code for many load commands, or a file past `__TEXT`).
    pub fn code_at(mut self, off: u64, text: u64, file: usize) -> Image {
        self.code_off = off;
        self.entry = self.segs[1].vmaddr + off;
        self.segs[1].vmsize = text;
        self.segs[1].filesize = text;
        self.size = file;
        self
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut cmds: Vec<u8> = Vec::new();
        let mut ncmds = 0u32;
        let p32 = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
        let p64 = |v: &mut Vec<u8>, x: u64| v.extend_from_slice(&x.to_le_bytes());
        for s in &self.segs {
            let mut name = [0u8; 16];
            name[..s.name.len()].copy_from_slice(s.name.as_bytes());
            if self.is64 {
                p32(&mut cmds, 0x19);
                p32(&mut cmds, 72);
                cmds.extend_from_slice(&name);
                p64(&mut cmds, s.vmaddr);
                p64(&mut cmds, s.vmsize);
                p64(&mut cmds, s.fileoff);
                p64(&mut cmds, s.filesize);
            } else {
                p32(&mut cmds, 0x1);
                p32(&mut cmds, 56);
                cmds.extend_from_slice(&name);
                p32(&mut cmds, s.vmaddr as u32);
                p32(&mut cmds, s.vmsize as u32);
                p32(&mut cmds, s.fileoff as u32);
                p32(&mut cmds, s.filesize as u32);
            }
            p32(&mut cmds, s.maxprot);
            p32(&mut cmds, s.initprot);
            p32(&mut cmds, 0);
            p32(&mut cmds, 0);
            ncmds += 1;
        }
        // LC_UNIXTHREAD
        let mut state = vec![0u8; self.count as usize * 4];
        if self.is64 && state.len() >= 18 * 8 {
            state[..8].copy_from_slice(&self.rax.to_le_bytes());
            state[7 * 8..8 * 8].copy_from_slice(&self.sp.to_le_bytes());
            state[16 * 8..17 * 8].copy_from_slice(&self.entry.to_le_bytes());
        } else if !self.is64 && state.len() >= 11 * 4 {
            state[..4].copy_from_slice(&(self.rax as u32).to_le_bytes());
            state[7 * 4..8 * 4].copy_from_slice(&(self.sp as u32).to_le_bytes());
            state[10 * 4..11 * 4].copy_from_slice(&(self.entry as u32).to_le_bytes());
        }
        p32(&mut cmds, 5);
        p32(&mut cmds, 16 + state.len() as u32);
        p32(&mut cmds, self.flavor);
        p32(&mut cmds, self.count);
        cmds.extend_from_slice(&state);
        ncmds += 1;
        for (cmd, payload) in &self.extra {
            p32(&mut cmds, *cmd);
            p32(&mut cmds, 8 + payload.len() as u32);
            cmds.extend_from_slice(payload);
            ncmds += 1;
        }
        let mut out = Vec::new();
        p32(&mut out, self.magic);
        p32(&mut out, self.cputype);
        p32(&mut out, 3);
        p32(&mut out, self.filetype);
        p32(&mut out, ncmds);
        p32(&mut out, cmds.len() as u32);
        p32(&mut out, self.flags);
        if self.is64 {
            p32(&mut out, 0);
        }
        out.extend_from_slice(&cmds);
        assert!(out.len() <= self.code_off as usize, "load commands overlap the code");
        out.resize(self.code_off as usize, 0);
        out.extend_from_slice(&self.code);
        out.resize(self.size.max(out.len().min(self.size)), 0);
        out.truncate(self.size);
        out
    }
}

/// A minimal assembler: raw bytes plus labels with rel32 / absolute fixups.
pub struct Asm {
    pub base: u64,
    pub b: Vec<u8>,
    labels: Vec<(&'static str, usize)>,
    rel32: Vec<(usize, &'static str)>,
    abs32: Vec<(usize, &'static str)>,
}

impl Asm {
    /// `base` is the address of the first byte.
    pub fn new(base: u64) -> Asm {
        Asm { base, b: vec![], labels: vec![], rel32: vec![], abs32: vec![] }
    }
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.b.extend_from_slice(bytes);
        self
    }
    pub fn label(&mut self, name: &'static str) -> &mut Self {
        self.labels.push((name, self.b.len()));
        self
    }
    /// Opcode bytes followed by a rel32 to `label` (jmp e9, jcc 0f 8x,
    /// call e8, rip-relative lea).
    pub fn rel(&mut self, op: &[u8], label: &'static str) -> &mut Self {
        self.b.extend_from_slice(op);
        self.rel32.push((self.b.len(), label));
        self.b.extend_from_slice(&[0; 4]);
        self
    }
    /// Opcode bytes followed by the absolute 32-bit address of `label`.
    pub fn abs(&mut self, op: &[u8], label: &'static str) -> &mut Self {
        self.b.extend_from_slice(op);
        self.abs32.push((self.b.len(), label));
        self.b.extend_from_slice(&[0; 4]);
        self
    }
    pub fn addr(&self, label: &str) -> u64 {
        self.base + self.labels.iter().find(|l| l.0 == label).expect("label").1 as u64
    }
    pub fn finish(&mut self) -> Vec<u8> {
        let find = |n: &str| self.labels.iter().find(|l| l.0 == n).unwrap_or_else(|| panic!("label {n}")).1;
        for &(at, l) in &self.rel32 {
            let rel = find(l) as i64 - (at as i64 + 4);
            self.b[at..at + 4].copy_from_slice(&(rel as i32).to_le_bytes());
        }
        for &(at, l) in &self.abs32 {
            let a = (self.base + find(l) as u64) as u32;
            self.b[at..at + 4].copy_from_slice(&a.to_le_bytes());
        }
        self.b.clone()
    }
}

/// The binary users run (see `hello_tests::xnurun_binary`), not the test
/// profile's build of it.
pub fn xnurun() -> Command {
    Command::new(hello_tests::xnurun_binary())
}

/// Writes `bytes` to a fresh file in the test's temp dir and returns its path.
pub fn write_image(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xnurun-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Runs the image on both CPUs, real and emulated, asserts that they
/// agree on stdout, stderr and status, and returns the output.
pub fn run(name: &str, bytes: &[u8], opts: &[&str]) -> Output {
    let p = write_image(name, bytes);
    both(xnurun().args(opts).arg(&p))
}

/// Runs `cmd` (an xnurun command with no --cpu yet) with `--cpu real` and
/// `--cpu emulated`; they must agree exactly.
///
/// One exception, on Intel CPUs only: an i386 guest's `sysenter` with EBP
/// at unreadable memory (as every guest starts: EBP is 0) loses its call
/// number inside Linux before xnurun sees it (docs/limits.md), and the
/// real CPU run natively ends with exactly that one line, 125. Intel's
/// default for i386 images is the emulated CPU; the real CPU gives XNU's
/// answer there single-stepped (`--max-steps`), and that run must then
/// agree exactly.
pub fn both(cmd: &mut Command) -> Output {
    let args: Vec<std::ffi::OsString> = cmd.get_args().map(|a| a.to_owned()).collect();
    let on = |cpu: &str| xnurun().args(["--cpu", cpu]).args(&args).output().unwrap();
    let (mut real, emulated) = (on("real"), on("emulated"));
    if real.status.code() == Some(125) && stderr(&real).ends_with(SYSENTER_CALL_LOST) && !args.iter().any(|a| a == "--max-steps") {
        assert!(on_intel(), "{args:?}: only Intel CPUs run sysenter in 32-bit mode");
        real = xnurun().args(["--cpu", "real", "--max-steps", "100000000"]).args(&args).output().unwrap();
    }
    assert_eq!(
        (real.status.code(), String::from_utf8_lossy(&real.stdout), stderr(&real)),
        (emulated.status.code(), String::from_utf8_lossy(&emulated.stdout), stderr(&emulated)),
        "{args:?}: the real and the emulated CPU differ (left real, right emulated)"
    );
    real
}

/// Whether this machine's CPU is Intel's (cpu/real/vendor.rs asks it).
pub fn on_intel() -> bool {
    xnurun::cpu::real::vendor::actual() == xnurun::cpu::real::vendor::Vendor::Intel
}

/// The real CPU's last line when Linux lost an i386 `sysenter` (Intel only).
pub const SYSENTER_CALL_LOST: &str = "xnurun: the guest ran sysenter with EBP pointing at unreadable memory: on Intel CPUs Linux then loses EAX, the call number, before xnurun sees the call; without --cpu real (the emulated CPU, Intel's choice for i386 images), or with --max-steps N (single-stepped), xnurun sees it first\n";

/// Runs the image on one CPU only.
pub fn run_on(cpu: &str, name: &str, bytes: &[u8], opts: &[&str]) -> Output {
    let p = write_image(name, bytes);
    xnurun().args(["--cpu", cpu]).args(opts).arg(&p).output().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An arm64 guest from assembly lines, assembled by rustc and linked and
/// signed by rust-lld exactly as hello is.
/// `__start` is its LC_MAIN entry.
pub fn arm64_guest(name: &str, asm: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xnurun-arm64-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join(format!("{name}.rs"));
    let lines: Vec<String> = asm.iter().map(|l| format!("    {l:?},")).collect();
    std::fs::write(
        &src,
        format!(
            "#![no_std]\n#![no_main]\ncore::arch::global_asm!(\n    \".globl __start\",\n    \"__start:\",\n{}\n);\n#[panic_handler]\nfn p(_: &core::panic::PanicInfo) -> ! {{ loop {{}} }}\n",
            lines.join("\n")
        ),
    )
    .unwrap();
    let out = dir.join(name);
    let o = std::process::Command::new("rustc")
        .env("SDKROOT", hello_tests::root().join(".cargo/MacOSX.sdk"))
        .args(["--edition", "2024", "--target", "aarch64-apple-darwin", "-C", "opt-level=z", "-C", "panic=abort"])
        .args(["-C", "linker=rust-lld", "-C", "linker-flavor=ld64.lld", "-C", "link-arg=-e", "-C", "link-arg=__start", "-C", "link-arg=-lSystem"])
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .output()
        .expect("rustc (rustup target add aarch64-apple-darwin)");
    assert!(o.status.success(), "building {name}: {}", String::from_utf8_lossy(&o.stderr));
    out
}

