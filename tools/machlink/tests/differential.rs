//! Differential check against LLVM's ld64.lld (`rust-lld -flavor darwin`,
//! shipped with every Rust toolchain): generated programs of several
//! objects and an archive, using GOT loads and slots, SUBTRACTOR jump
//! tables, weak definitions, commons and dead-stripping, are linked by
//! machlink and by ld64.lld; the ld64.lld image is made static (see
//! [`make_static`]) and both run under xnurun. Exit status and output must
//! agree with each other and with the value the generator computed. i386
//! programs, which ld64.lld cannot link (`-arch i386` is refused), are
//! checked against the generator's value alone.
//!
//! Where ld64 and ld64.lld are known to differ, ld64 is the reference and
//! the case is kept out of the comparison: a common symbol that an archive
//! member defines as data is replaced by it in ld64 (and machlink; see
//! `common_replaced_by_an_archive_data_definition` in ld64_answers.rs),
//! while ld64.lld keeps the common. The generated commons are never
//! defined in an archive.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A small deterministic generator (xorshift64*): the same programs on
/// every run, so a failure names a case that can be reproduced.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A direct (pc-relative or absolute) load of the function's datum.
    Direct,
    /// x86_64 `movq @GOTPCREL` (relaxed to `leaq`); i386 PIC SECTDIFF.
    GotLoad,
    /// x86_64 `addq @GOTPCREL` (keeps a GOT slot); i386 non-lazy pointer.
    GotSlot,
    /// A jump table of differences (x86_64 SUBTRACTOR, i386 SECTDIFF).
    Table,
    /// A weak definition in two objects: the first on the line wins.
    Weak,
    /// A tentative definition in two objects, stored then read.
    Common,
}

const KINDS: [Kind; 6] = [Kind::Direct, Kind::GotLoad, Kind::GotSlot, Kind::Table, Kind::Weak, Kind::Common];

struct Program {
    /// Plain objects, in link order; object 0 holds `__start`.
    objects: Vec<String>,
    /// Members of one archive, linked after the objects.
    members: Vec<String>,
    /// What the program adds up: its exit status is the low byte, its
    /// output the whole value in hex.
    expected: u32,
}

fn generate(x86_64: bool, seed: u64) -> Program {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let n_objects = 2 + rng.below(3) as usize;
    let n_members = 1 + rng.below(3) as usize;
    let mut objects: Vec<String> = (0..n_objects).map(|_| String::from(".subsections_via_symbols\n")).collect();
    let mut members: Vec<String> = (0..n_members).map(|_| String::from(".subsections_via_symbols\n")).collect();
    let mut calls = String::new();
    let mut expected = 0u32;
    let n_functions = 4 + rng.below(6) as usize;
    for i in 0..n_functions {
        let kind = KINDS[rng.below(KINDS.len() as u64) as usize];
        let value = 1 + rng.below(1000) as u32;
        // Weak and common symbols go in two plain objects; the rest in
        // one object or one archive member.
        let in_archive = !matches!(kind, Kind::Weak | Kind::Common) && rng.below(2) == 0;
        let home = rng.below(if in_archive { n_members } else { n_objects } as u64) as usize;
        let (body, data, extra) = function(x86_64, kind, i, value, &mut rng, &mut expected, &mut objects);
        let text = format!(".text\n.globl _f{i}\n_f{i}:\n{body}.data\n{data}{extra}");
        let dead = format!(".text\n.globl _dead{i}\n_dead{i}:\n    ud2\n");
        let place = if in_archive { &mut members[home] } else { &mut objects[home] };
        place.push_str(&text);
        place.push_str(&dead);
        calls.push_str(&format!("    call _f{i}\n"));
    }
    objects[0].push_str(&start(x86_64, &calls));
    Program { objects, members, expected }
}

/// One function adding to `_acc`, its data, and anything else its object
/// needs; weak and common symbols are defined in other objects here too.
fn function(
    x86_64: bool,
    kind: Kind,
    i: usize,
    value: u32,
    rng: &mut Rng,
    expected: &mut u32,
    objects: &mut [String],
) -> (String, String, String) {
    let add = if x86_64 { "    addl %eax, _acc(%rip)\n    ret\n" } else { "    addl %eax, _acc\n    ret\n" };
    let datum = format!(".globl _d{i}\n_d{i}: .long {value}\n");
    match kind {
        Kind::Direct => {
            *expected = expected.wrapping_add(value);
            let load = if x86_64 { format!("    movl _d{i}(%rip), %eax\n") } else { format!("    movl _d{i}, %eax\n") };
            (load + add, datum, String::new())
        }
        Kind::GotLoad => {
            *expected = expected.wrapping_add(value);
            let load = if x86_64 {
                format!("    movq _d{i}@GOTPCREL(%rip), %rax\n    movl (%rax), %eax\n")
            } else {
                format!("    call Lp{i}\nLp{i}:\n    popl %ecx\n    movl _d{i}-Lp{i}(%ecx), %eax\n")
            };
            (load + add, datum, String::new())
        }
        Kind::GotSlot => {
            *expected = expected.wrapping_add(value);
            if x86_64 {
                let load = format!("    xorl %ecx, %ecx\n    addq _d{i}@GOTPCREL(%rip), %rcx\n    movl (%rcx), %eax\n");
                (load + add, datum, String::new())
            } else {
                let load = format!("    call Lp{i}\nLp{i}:\n    popl %ecx\n    movl L_d{i}$non_lazy_ptr-Lp{i}(%ecx), %eax\n    movl (%eax), %eax\n");
                let ptr = format!(".section __IMPORT,__pointers,non_lazy_symbol_pointers\nL_d{i}$non_lazy_ptr:\n    .indirect_symbol _d{i}\n    .long 0\n");
                (load + add, datum, ptr)
            }
        }
        Kind::Table => {
            let cases = 2 + rng.below(3) as usize;
            let pick = rng.below(cases as u64) as usize;
            let mut extra = format!(".section __TEXT,__const\n.p2align 2\n.globl _t{i}\n_t{i}:\n");
            for c in 0..cases {
                extra.push_str(&format!("    .long _g{i}_{c} - _t{i}\n"));
            }
            extra.push_str(".text\n");
            for c in 0..cases {
                let v = value + c as u32;
                let body = if x86_64 { format!("    addl ${v}, _acc(%rip)\n    ret\n") } else { format!("    addl ${v}, _acc\n    ret\n") };
                extra.push_str(&format!(".globl _g{i}_{c}\n_g{i}_{c}:\n{body}"));
            }
            *expected = expected.wrapping_add(value + pick as u32);
            let jump = if x86_64 {
                format!("    leaq _t{i}(%rip), %rdx\n    movslq {}(%rdx), %rax\n    addq %rdx, %rax\n    jmpq *%rax\n", 4 * pick)
            } else {
                format!("    movl _t{i}+{}, %eax\n    addl $_t{i}, %eax\n    jmp *%eax\n", 4 * pick)
            };
            (jump, datum, extra)
        }
        Kind::Weak => {
            // Two weak definitions with different values: the first
            // object on the line that holds one wins.
            let n = objects.len();
            let (a, b) = (rng.below(n as u64) as usize, rng.below(n as u64) as usize);
            let other = value + 7;
            for (o, v) in [(a, value), (b, other)] {
                if !objects[o].contains(&format!("_w{i}:")) {
                    objects[o].push_str(&format!(".data\n.globl _w{i}\n.weak_definition _w{i}\n_w{i}: .long {v}\n"));
                }
            }
            let winner = if b < a { other } else { value };
            *expected = expected.wrapping_add(winner);
            let load = if x86_64 { format!("    movl _w{i}(%rip), %eax\n") } else { format!("    movl _w{i}, %eax\n") };
            (load + add, datum, String::new())
        }
        Kind::Common => {
            for o in [0, objects.len() - 1] {
                objects[o].push_str(&format!(".comm _c{i}, {}, 2\n", 4 + 4 * o));
            }
            *expected = expected.wrapping_add(value);
            let body = if x86_64 {
                format!("    movl ${value}, _c{i}+4(%rip)\n    movl _c{i}+4(%rip), %eax\n")
            } else {
                format!("    movl ${value}, _c{i}+4\n    movl _c{i}+4, %eax\n")
            };
            (body + add, datum, String::new())
        }
    }
}

/// `__start`: the calls, then `_acc` in hex on stdout and its low byte as
/// the exit status.
fn start(x86_64: bool, calls: &str) -> String {
    let tail = if x86_64 {
        r#"    movl _acc(%rip), %eax
    leaq _buf(%rip), %rsi
    leaq _hex(%rip), %r8
    movl $8, %ecx
Lhex:
    movl %eax, %edx
    andl $15, %edx
    movb (%r8,%rdx), %dl
    movb %dl, -1(%rsi,%rcx)
    shrl $4, %eax
    decl %ecx
    jnz Lhex
    movb $10, 8(%rsi)
    movl $0x2000004, %eax
    movl $1, %edi
    movl $9, %edx
    syscall
    movl _acc(%rip), %edi
    movl $0x2000001, %eax
    syscall
"#
    } else {
        r#"    movl _acc, %eax
    movl $8, %ecx
Lhex:
    movl %eax, %edx
    andl $15, %edx
    movb _hex(%edx), %dl
    movb %dl, _buf-1(%ecx)
    shrl $4, %eax
    decl %ecx
    jnz Lhex
    movb $10, _buf+8
    pushl $9
    pushl $_buf
    pushl $1
    pushl $0
    movl $4, %eax
    int $0x80
    addl $16, %esp
    movl _acc, %eax
    pushl %eax
    pushl %eax
    movl $1, %eax
    int $0x80
"#
    };
    format!(
        ".text\n.globl __start\n__start:\n{calls}{tail}.data\n.globl _acc\n_acc: .long 0\n.globl _buf\n_buf: .space 12\n\
         .section __TEXT,__const\n.globl _hex\n_hex: .ascii \"0123456789abcdef\"\n"
    )
}

fn rust_lld() -> PathBuf {
    let out = Command::new("rustc").args(["--print", "sysroot"]).output().expect("rustc --print sysroot");
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let host = String::from_utf8_lossy(&Command::new("rustc").arg("-vV").output().expect("rustc -vV").stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("host triple");
    let lld = sysroot.join("lib/rustlib").join(host).join("bin/rust-lld");
    assert!(lld.is_file(), "rust-lld ships with the Rust toolchain: {}", lld.display());
    lld
}

/// An ld64.lld image turned into the static kind machlink writes and XNU
/// runs for x86_64: `MH_DYLDLINK` and `MH_PIE` dropped, `LC_MAIN` replaced
/// by an `LC_UNIXTHREAD` starting at the same address, and every load
/// command dyld alone reads dropped (segments and `LC_SYMTAB` kept). The
/// link was `-no_pie` against no dylib, so there must be nothing to rebase
/// or bind; that is checked, not assumed.
fn make_static(data: &mut [u8]) {
    const LC_SEGMENT_64: u32 = 0x19;
    const LC_SYMTAB: u32 = 0x2;
    const LC_MAIN: u32 = 0x8000_0028;
    const LC_DYLD_INFO_ONLY: u32 = 0x8000_0022;
    const LC_LOAD_DYLIB: u32 = 0xc;
    let u32_at = |d: &[u8], at: usize| u32::from_le_bytes(d[at..at + 4].try_into().unwrap());
    let u64_at = |d: &[u8], at: usize| u64::from_le_bytes(d[at..at + 8].try_into().unwrap());
    let ncmds = u32_at(data, 16) as usize;
    let mut at = 32;
    let mut kept = Vec::new();
    let (mut entryoff, mut text_vmaddr, mut first_section) = (None, None, usize::MAX);
    for _ in 0..ncmds {
        let (cmd, size) = (u32_at(data, at), u32_at(data, at + 4) as usize);
        match cmd {
            LC_SEGMENT_64 => {
                if &data[at + 8..at + 14] == b"__TEXT" {
                    text_vmaddr = Some(u64_at(data, at + 24));
                }
                let nsects = u32_at(data, at + 64) as usize;
                for s in 0..nsects {
                    let offset = u32_at(data, at + 72 + 80 * s + 48) as usize;
                    if offset != 0 {
                        first_section = first_section.min(offset);
                    }
                }
                kept.extend_from_slice(&data[at..at + size]);
            }
            LC_SYMTAB => kept.extend_from_slice(&data[at..at + size]),
            LC_MAIN => entryoff = Some(u64_at(data, at + 8)),
            LC_DYLD_INFO_ONLY => {
                for (what, field) in [("rebase", 12), ("bind", 20), ("lazy bind", 36)] {
                    assert_eq!(u32_at(data, at + field), 0, "ld64.lld left {what} information");
                }
            }
            LC_LOAD_DYLIB => panic!("ld64.lld image links a dylib"),
            _ => {}
        }
        at += size;
    }
    let entry = text_vmaddr.expect("__TEXT") + entryoff.expect("LC_MAIN");
    let mut thread = Vec::new();
    for word in [5u32, 184, 4, 42] {
        thread.extend_from_slice(&word.to_le_bytes());
    }
    let mut state = [0u32; 42];
    state[32] = entry as u32;
    state[33] = (entry >> 32) as u32;
    for word in state {
        thread.extend_from_slice(&word.to_le_bytes());
    }
    kept.extend_from_slice(&thread);
    assert!(32 + kept.len() <= first_section, "the new load commands fit before the first section (-headerpad)");
    data[32..at].fill(0);
    data[32..32 + kept.len()].copy_from_slice(&kept);
    let flags = u32_at(data, 24) & !(0x4 | 0x20_0000);
    data[16..20].copy_from_slice(&(count(&kept) as u32).to_le_bytes());
    data[20..24].copy_from_slice(&(kept.len() as u32).to_le_bytes());
    data[24..28].copy_from_slice(&flags.to_le_bytes());
}

/// How many load commands `commands` holds.
fn count(commands: &[u8]) -> usize {
    let mut at = 0;
    let mut n = 0;
    while at < commands.len() {
        at += u32::from_le_bytes(commands[at + 4..at + 8].try_into().unwrap()) as usize;
        n += 1;
    }
    n
}

/// An ar archive of the members, as `ar rc` writes it.
fn archive(dir: &Path, members: &[PathBuf]) -> PathBuf {
    let lib = dir.join("libgen.a");
    let _ = std::fs::remove_file(&lib);
    let status = Command::new(common::objdump().with_file_name("llvm-ar"))
        .arg("rc")
        .arg(&lib)
        .args(members)
        .status()
        .or_else(|_| Command::new("ar").arg("rc").arg(&lib).args(members).status())
        .expect("ar");
    assert!(status.success());
    lib
}

fn build(target: &str, program: &Program, dir: &Path) -> (Vec<PathBuf>, PathBuf) {
    let objects = program.objects.iter().enumerate().map(|(k, asm)| common::assemble(target, asm, dir, &format!("o{k}"))).collect();
    let members: Vec<PathBuf> = program.members.iter().enumerate().map(|(k, asm)| common::assemble(target, asm, dir, &format!("m{k}"))).collect();
    (objects, archive(dir, &members))
}

fn run(image: &Path) -> (Option<i32>, String) {
    let (status, stdout, stderr) = common::run(image);
    assert!(stderr.is_empty() || status.is_some(), "{}: {stderr}", image.display());
    (status, stdout)
}

const CASES: u64 = 10;

#[test]
fn x86_64_against_ld64_lld() {
    let lld = rust_lld();
    let target = common::X86_64;
    for seed in 0..CASES {
        let dead_strip = seed % 2 == 0;
        let program = generate(true, seed);
        let dir = common::scratch(&format!("differential-x86_64-{seed}"));
        let (objects, lib) = build(target, &program, &dir);
        let mut inputs = objects.clone();
        inputs.push(lib.clone());
        let ours = dir.join("machlink.out");
        common::link_ok(target, &inputs, &ours, dead_strip);

        let theirs = dir.join("lld.out");
        let mut cmd = Command::new(&lld);
        cmd.args(["-flavor", "darwin", "-arch", "x86_64", "-platform_version", "macos", "10.12.0", "10.12.0"])
            .args(["-no_pie", "-headerpad", "0x400", "-e", "__start", "-o"])
            .arg(&theirs)
            .args(&inputs);
        if dead_strip {
            cmd.arg("-dead_strip");
        }
        let out = cmd.output().expect("rust-lld");
        assert!(out.status.success(), "case {seed}: ld64.lld: {}", String::from_utf8_lossy(&out.stderr));
        let mut bytes = std::fs::read(&theirs).unwrap();
        make_static(&mut bytes);
        std::fs::write(&theirs, bytes).unwrap();

        let expected = (Some((program.expected & 0xff) as i32), format!("{:08x}\n", program.expected));
        assert_eq!(run(&ours), expected, "case {seed}: machlink's image ({})", dir.display());
        assert_eq!(run(&theirs), expected, "case {seed}: ld64.lld's image ({})", dir.display());
    }
}

#[test]
fn i386_checks_itself() {
    let target = common::I686;
    for seed in 0..CASES {
        let program = generate(false, seed);
        let dir = common::scratch(&format!("differential-i386-{seed}"));
        let (mut inputs, lib) = build(target, &program, &dir);
        inputs.push(lib);
        let ours = dir.join("machlink.out");
        common::link_ok(target, &inputs, &ours, seed % 2 == 0);
        let expected = (Some((program.expected & 0xff) as i32), format!("{:08x}\n", program.expected));
        assert_eq!(run(&ours), expected, "case {seed} ({})", dir.display());
    }
}
