//! The cases a differential audit against ld64 found machlink answering
//! wrongly or refusing (issue 20, section 2): each linked and run under
//! xnurun, or refused in one line with no output, as ld64 would answer.

mod common;

use std::path::{Path, PathBuf};

/// An ar archive of `members` (BSD names, at most 16 bytes), as `ar rc`
/// writes one: the shapes the tests need (empty members, text members)
/// are awkward to get from a tool.
fn archive(dir: &Path, name: &str, members: &[(&str, Vec<u8>)]) -> PathBuf {
    let mut out = b"!<arch>\n".to_vec();
    for (member, data) in members {
        let header = format!("{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n", member, 0, 0, 0, 644, data.len());
        assert_eq!(header.len(), 60);
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    let path = dir.join(name);
    std::fs::write(&path, out).unwrap();
    path
}

fn exit_status(target: &str, image: &Path) -> i32 {
    let (status, _, stderr) = common::run(image);
    status.unwrap_or_else(|| panic!("{} under xnurun: no exit status: {stderr}", target))
}

/// The i386 exit: `exit(%eax)` through `int $0x80`, the argument above a
/// return-address slot.
const I386_EXIT: &str = "    pushl %eax\n    pushl %eax\n    movl $1, %eax\n    int $0x80\n";

/// Code that exits with the sum of the 32-bit values at `symbols`.
fn exit_with_sum(target: &str, symbols: &[&str]) -> String {
    let x86_64 = target == common::X86_64;
    let mut code = String::from(if x86_64 { "    xorl %edi, %edi\n" } else { "    xorl %eax, %eax\n" });
    for s in symbols {
        code.push_str(&if x86_64 { format!("    addl {s}(%rip), %edi\n") } else { format!("    addl {s}, %eax\n") });
    }
    code.push_str(if x86_64 { "    movl $0x2000001, %eax\n    syscall\n" } else { I386_EXIT });
    code
}

/// Two objects each define a weak `_shared` and increment it PIC-style
/// (`incl _shared-Lpic(%ecx)`: a SECTDIFF naming only addresses). Both
/// must reach the one copy that won, as ld64 binds address-based
/// references to global atoms by name: 2, not 1.
#[test]
fn i386_pic_reference_to_a_weak_symbol_reaches_the_winner() {
    let object = |name: &str, start: bool| {
        let entry = if start {
            format!(".globl __start\n__start:\n    call _inc_a\n    call _inc_b\n    movl _shared, %eax\n{I386_EXIT}")
        } else {
            String::new()
        };
        format!(
            r#"
.text
{entry}
.globl _inc_{name}
_inc_{name}:
    call Lpic_{name}
Lpic_{name}:
    popl %ecx
    incl _shared-Lpic_{name}(%ecx)
    ret
.data
.globl _shared
.weak_definition _shared
_shared: .long 0
.subsections_via_symbols
"#
        )
    };
    let target = common::I686;
    let (out, _, _) = common::link_sources(target, "weak-pic", &[&object("a", true), &object("b", false)]);
    assert_eq!(exit_status(target, &out), 2, "both increments reach the winning _shared");
}

/// `movl $L_tab_end-4, %edi`, `L_tab_end` ending `__const` where
/// `__cstring` starts: the stored value, inside `__const`, decides, so
/// the load reads the table's last word (12) even with another object's
/// `__const` placed between the two sections in the image.
#[test]
fn i386_scattered_vanilla_at_a_section_end_is_placed_by_its_stored_value() {
    let a = format!(
        r#"
.text
.globl __start
__start:
    movl $L_tab_end-4, %edi
    movl (%edi), %eax
{I386_EXIT}
.section __TEXT,__const
.globl _tab
_tab: .long 11, 12
L_tab_end:
.section __TEXT,__cstring,cstring_literals
    .asciz "text"
.subsections_via_symbols
"#
    );
    let b = ".section __TEXT,__const\n.globl _other\n_other: .long 97, 98\n.subsections_via_symbols\n";
    let target = common::I686;
    let dir = common::scratch("vanilla-end");
    let objs = vec![common::assemble(target, &a, &dir, "a"), common::assemble(target, b, &dir, "b")];
    let out = dir.join("image");
    common::link_ok(target, &objs, &out, false);
    assert_eq!(exit_status(target, &out), 12);
}

/// A common `_x` and an archive member that defines `_x` as data: ld64
/// loads the member and its definition wins (42), where a linker that
/// never looks keeps the zero-filled common (0).
#[test]
fn common_replaced_by_an_archive_data_definition() {
    let main = r#"
.text
.globl __start
__start:
    movl _x(%rip), %edi
    movl $0x2000001, %eax
    syscall
.comm _x, 4, 2
"#;
    let member = ".data\n.globl _x\n_x: .long 42\n";
    let target = common::X86_64;
    let dir = common::scratch("common-archive");
    let main = common::assemble(target, main, &dir, "main");
    let member = common::assemble(target, member, &dir, "member");
    let lib = archive(&dir, "libx.a", &[("x.o", std::fs::read(&member).unwrap())]);
    let out = dir.join("image");
    common::link_ok(target, &[main, lib], &out, true);
    assert_eq!(exit_status(target, &out), 42);
}

/// A section in a segment of the input's own (`__FOO,__bar`) gets a
/// segment of that name, rw- after `__DATA`, as ld64 makes it.
#[test]
fn section_in_a_custom_segment() {
    for target in [common::X86_64, common::I686] {
        let load = exit_with_sum(target, &["_foo", "_d"]);
        let asm = format!(
            ".text\n.globl __start\n__start:\n{load}\n.section __FOO,__bar\n.globl _foo\n_foo: .long 30\n.data\n.globl _d\n_d: .long 3\n"
        );
        let (out, _, image) = common::link_sources(target, &format!("custom-segment-{target}"), &[&asm]);
        let foo = image.segment("__FOO").unwrap_or_else(|| panic!("{target}: a __FOO segment"));
        let data = image.segment("__DATA").expect("__DATA");
        assert_eq!((foo.5, foo.6), (3, 3), "{target}: __FOO is rw-");
        assert!(foo.1 > data.1, "{target}: __FOO after __DATA");
        assert!(image.section("__FOO", "__bar").is_some());
        assert_eq!(exit_status(target, &out), 33, "{target}");
    }
}

/// Section alignment above a page (ld64 allows up to 2^15): the address
/// is aligned, on i386 too, whose `__TEXT` starts at one page.
#[test]
fn section_alignment_above_a_page() {
    for target in [common::X86_64, common::I686] {
        let load = exit_with_sum(target, &["_big"]);
        let asm = format!(".text\n.globl __start\n__start:\n{load}\n.data\n.long 1\n.p2align 14\n.globl _big\n_big: .long 9\n");
        let (out, _, image) = common::link_sources(target, &format!("align-{target}"), &[&asm]);
        assert_eq!(image.symbol("_big") % (1 << 14), 0, "{target}: _big aligned to 2^14");
        assert_eq!(exit_status(target, &out), 9, "{target}");
    }
}

/// Non-extern x86_64 references whose targets lie outside their section
/// (`Ltab+32`, `Ltab-8`): the entry names the section, so the target moves
/// with it, even with another object's `__const` placed after this one's.
#[test]
fn x86_64_non_extern_reference_outside_its_section() {
    let a = r#"
.text
.globl __start
__start:
    leaq Ltab+32(%rip), %rax
    movl -28(%rax), %edi
    leaq Ltab-8(%rip), %rax
    addl 16(%rax), %edi
    movl $0x2000001, %eax
    syscall
.section __TEXT,__const
.p2align 4
Ltab: .long 1, 20, 300, 4000
"#;
    let b = ".section __TEXT,__const\n.globl _other\n_other: .long 5, 6, 7, 8\n";
    let target = common::X86_64;
    let dir = common::scratch("outside-section");
    let objs = vec![common::assemble(target, a, &dir, "a"), common::assemble(target, b, &dir, "b")];
    let out = dir.join("image");
    common::link_ok(target, &objs, &out, false);
    assert_eq!(exit_status(target, &out), (20 + 300) & 0xff);
}

/// An empty archive, and members that are empty, not objects, or for the
/// other architecture but never needed: ignored, as ld64 ignores them.
/// Such a member that the link does need is refused, by name.
#[test]
fn archive_members_that_cannot_be_used() {
    let target = common::X86_64;
    let dir = common::scratch("archive-members");
    let main = common::assemble(target, ".text\n.globl __start\n__start:\n    call _f\n    movl $0x2000001, %eax\n    syscall\n", &dir, "main");
    let f = common::assemble(target, ".text\n.globl _f\n_f:\n    movl $5, %edi\n    ret\n", &dir, "f");
    let g32 = common::assemble(common::I686, ".text\n.globl _g\n_g:\n    ret\n", &dir, "g32");
    let empty = archive(&dir, "libempty.a", &[]);
    assert_eq!(std::fs::read(&empty).unwrap().len(), 8);
    let mixed = archive(
        &dir,
        "libmixed.a",
        &[
            ("zero.o", Vec::new()),
            ("notes.txt", b"not an object\n".to_vec()),
            ("g32.o", std::fs::read(&g32).unwrap()),
            ("f.o", std::fs::read(&f).unwrap()),
        ],
    );
    let out = dir.join("image");
    common::link_ok(target, &[main.clone(), empty, mixed.clone()], &out, true);
    assert_eq!(exit_status(target, &out), 5);

    let needs_g = common::assemble(target, ".text\n.globl __start\n__start:\n    call _g\n    ud2\n", &dir, "needs_g");
    let member = PathBuf::from(format!("{}(g32.o)", mixed.display()));
    common::link_fails(target, &[needs_g, mixed], &out, true, &member, "built for i386, but this link is for x86_64, and the link needs its symbol _g");
}

/// `-e` naming a data symbol: XNU would refuse the image (the entry must
/// be in an r-x segment), so the link is refused, in one line, with no
/// output file.
#[test]
fn entry_in_data_is_refused() {
    let target = common::X86_64;
    let dir = common::scratch("entry-data");
    let obj = common::assemble(target, ".text\n.globl __start\n__start:\n    ud2\n.data\n.globl _counter\n_counter: .long 0\n", &dir, "o");
    let out = dir.join("image");
    std::fs::write(&out, b"stale").unwrap();
    let args: Vec<String> =
        [obj.display().to_string(), "-arch".into(), "x86_64".into(), "-e".into(), "_counter".into(), "-o".into(), out.display().to_string()].into();
    let result = common::machlink(&args);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with(&format!("machlink: {}: entry symbol _counter is in __DATA,__data, which is not executable", obj.display())), "{stderr}");
    assert!(!out.exists());
}

/// What `-C linker-plugin-lto` hands a linker: `-plugin-opt=` options and
/// LLVM bitcode objects (here from `rustc --emit=llvm-bc`). Each is named
/// in one line saying that machlink does not do LTO.
#[test]
fn llvm_bitcode_and_plugin_options_are_named() {
    let target = common::X86_64;
    let dir = common::scratch("bitcode");
    let src = dir.join("b.rs");
    std::fs::write(&src, "#![no_std]\npub fn f() -> u32 { 7 }\n").unwrap();
    let bc = dir.join("b.o");
    let status = std::process::Command::new("rustc")
        .args(["--edition", "2024", "--crate-type", "lib", "--emit=llvm-bc", "-C", "panic=abort", "--target", target])
        .arg(&src)
        .arg("-o")
        .arg(&bc)
        .env_remove("RUSTFLAGS")
        .status()
        .unwrap();
    assert!(status.success());
    let out = dir.join("image");
    common::link_fails(target, std::slice::from_ref(&bc), &out, true, &bc, "is LLVM bitcode (from -C linker-plugin-lto or -flto): machlink does not do LTO");
    let lib = archive(&dir, "libb.a", &[("b.o", std::fs::read(&bc).unwrap())]);
    let member = PathBuf::from(format!("{}(b.o)", lib.display()));
    common::link_fails(target, &[lib], &out, true, &member, "machlink does not do LTO");

    let args: Vec<String> = ["x.o", "-Wl,-plugin-opt=O3", "-o"].map(String::from).into_iter().chain([out.display().to_string()]).collect();
    let result = common::machlink(&args);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1));
    assert_eq!(stderr.trim_end(), "machlink: -plugin-opt=O3: machlink does not do LTO (-C linker-plugin-lto); rustc's own -C lto works");
}
