//! Every bad input gives one line, `machlink: <file>: <what>`, exit status
//! 1, and no file at the output path. The bad objects are written with
//! `object::write`, which makes real Mach-O relocatable files.

mod common;

use std::path::{Path, PathBuf};

use object::write::{Mangling, Object, Relocation, StandardSection, Symbol, SymbolId, SymbolSection};
use object::{Architecture, BinaryFormat, Endianness, RelocationFlags, SymbolFlags, SymbolKind, SymbolScope, macho};

fn new_object(format: BinaryFormat, arch: Architecture) -> Object<'static> {
    let mut obj = Object::new(format, arch, Endianness::Little);
    obj.set_mangling(Mangling::None);
    if format == BinaryFormat::MachO {
        obj.set_subsections_via_symbols();
    }
    obj
}

fn define(obj: &mut Object<'_>, name: &str, code: &[u8]) -> SymbolId {
    let text = obj.section_id(StandardSection::Text);
    let value = obj.append_section_data(text, code, 4);
    obj.add_symbol(Symbol {
        name: name.as_bytes().to_vec(),
        value,
        size: code.len() as u64,
        kind: SymbolKind::Text,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Section(text),
        flags: SymbolFlags::None,
    })
}

fn undefined(obj: &mut Object<'_>, name: &str) -> SymbolId {
    obj.add_symbol(Symbol {
        name: name.as_bytes().to_vec(),
        value: 0,
        size: 0,
        kind: SymbolKind::Text,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Undefined,
        flags: SymbolFlags::None,
    })
}

/// `object::write` takes ELF-style addends (value = S + A - P for a
/// pc-relative field) and stores `A + 4` in the field. For x86_64 that
/// makes -4 a plain `call symbol`. An i386 extern pc-relative field must
/// hold minus the end of the field in the object, as `llvm-mc` writes it
/// (`call _foo` at 0 is `e8 fb ff ff ff`), hence the larger i386 addend.
fn reloc(obj: &mut Object<'_>, offset: u64, symbol: SymbolId, r_type: macho::RelocationType, r_pcrel: bool) {
    let text = obj.section_id(StandardSection::Text);
    let i386 = obj.architecture() == Architecture::I386;
    let addend = match (r_pcrel, i386) {
        (false, _) => 0,
        (true, false) => -4,
        (true, true) => -(offset as i64 + 4) - 4,
    };
    obj.add_relocation(text, Relocation { offset, symbol, addend, flags: RelocationFlags::MachO { r_type, r_pcrel, r_length: 2 } })
        .expect("add relocation");
}

fn save(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write input");
    path
}

/// Runs machlink with a stale file at the output path, and checks the
/// failure: one line naming `file`, containing `what`, status 1, and the
/// output path left empty.
fn expect_error(test: &str, arch: &str, inputs: &[(&str, Vec<u8>)], file: &str, what: &str) {
    let dir = common::scratch(test);
    let paths: Vec<PathBuf> = inputs.iter().map(|(n, b)| save(&dir, n, b)).collect();
    let out = dir.join("hello");
    std::fs::write(&out, b"stale image from an earlier run").unwrap();
    let mut args: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    args.extend(["-arch", arch, "-o"].map(String::from));
    args.push(out.display().to_string());
    args.extend(["-static", "-Wl,-dead_strip", "-Wl,-e,__start"].map(String::from));
    check_failure(&common::machlink(&args), &dir.join(file).display().to_string(), what, &out);
}

fn check_failure(result: &std::process::Output, file: &str, what: &str, out: &Path) {
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with(&format!("machlink: {file}")), "names {file}: {stderr}");
    assert!(stderr.contains(what), "says {what:?}: {stderr}");
    assert!(!out.exists(), "no output file after a failed link");
}

const RET: &[u8] = &[0xc3];
/// call rel32 (x86_64 and i386 alike)
const CALL: &[u8] = &[0xe8, 0, 0, 0, 0, 0xc3];

fn hello_bytes(target: &str) -> Vec<u8> {
    std::fs::read(common::object(target)).expect("hello object")
}

#[test]
fn truncated_object() {
    let mut bytes = hello_bytes(common::X86_64);
    bytes.truncate(600);
    expect_error("truncated", "x86_64", &[("hello.o", bytes)], "hello.o", "malformed Mach-O");
}

#[test]
fn corrupted_object() {
    let mut bytes = hello_bytes(common::I686);
    // sizeofcmds far past the end of the file.
    bytes[20..24].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    expect_error("corrupted", "i386", &[("hello.o", bytes)], "hello.o", "malformed Mach-O");
}

#[test]
fn elf_object() {
    let mut obj = new_object(BinaryFormat::Elf, Architecture::X86_64);
    define(&mut obj, "_start", RET);
    expect_error("elf", "x86_64", &[("start.o", obj.write().unwrap())], "start.o", "ELF");
}

#[test]
fn x86_64_object_on_i386_link() {
    let mut obj = new_object(BinaryFormat::MachO, Architecture::X86_64);
    define(&mut obj, "__start", RET);
    expect_error("wrong-arch", "i386", &[("start.o", obj.write().unwrap())], "start.o", "built for x86_64, but this link is for i386");
}

#[test]
fn undefined_entry() {
    let mut obj = new_object(BinaryFormat::MachO, Architecture::X86_64);
    define(&mut obj, "_main", RET);
    expect_error("no-start", "x86_64", &[("main.o", obj.write().unwrap())], "hello", "entry symbol __start is not defined");
}

#[test]
fn undefined_symbol() {
    let mut obj = new_object(BinaryFormat::MachO, Architecture::I386);
    define(&mut obj, "__start", CALL);
    let foo = undefined(&mut obj, "_foo");
    reloc(&mut obj, 1, foo, macho::GENERIC_RELOC_VANILLA, true);
    expect_error("undefined", "i386", &[("start.o", obj.write().unwrap())], "start.o", "symbol _foo is undefined");
}

#[test]
fn duplicate_symbol() {
    let mut a = new_object(BinaryFormat::MachO, Architecture::X86_64);
    define(&mut a, "__start", RET);
    let mut b = new_object(BinaryFormat::MachO, Architecture::X86_64);
    define(&mut b, "__start", RET);
    expect_error(
        "duplicate",
        "x86_64",
        &[("a.o", a.write().unwrap()), ("b.o", b.write().unwrap())],
        "b.o",
        "duplicate symbol __start",
    );
}

/// Issue 11: the second definition was looked up in the list of objects
/// before its own object was added to it, and machlink panicked (exit
/// 134) and left the old output in place.
#[test]
fn duplicate_symbol_in_one_object() {
    for (arch, name) in [(Architecture::X86_64, "x86_64"), (Architecture::I386, "i386")] {
        let mut obj = new_object(BinaryFormat::MachO, arch);
        define(&mut obj, "__start", RET);
        define(&mut obj, "_twice", RET);
        define(&mut obj, "_twice", RET);
        expect_error(
            &format!("duplicate-one-{name}"),
            name,
            &[("twice.o", obj.write().unwrap())],
            "twice.o",
            "duplicate symbol _twice (defined twice in this file)",
        );
    }
}

#[test]
fn unsupported_relocation() {
    let mut obj = new_object(BinaryFormat::MachO, Architecture::X86_64);
    // lea rax, [rip + _foo], with a pc-relative UNSIGNED: a shape ld64
    // refuses too ("pcrel and X86_64_RELOC_UNSIGNED not supported").
    define(&mut obj, "__start", &[0x48, 0x8d, 0x05, 0, 0, 0, 0, 0xc3]);
    let foo = define(&mut obj, "_foo", RET);
    reloc(&mut obj, 3, foo, macho::X86_64_RELOC_UNSIGNED, true);
    expect_error("unsupported", "x86_64", &[("start.o", obj.write().unwrap())], "start.o", "unsupported relocation X86_64_RELOC_UNSIGNED with pcrel=1");
}

#[test]
fn library_requested() {
    let dir = common::scratch("library");
    let out = dir.join("hello");
    // An earlier link's output is there: the failed link must not leave it.
    std::fs::write(&out, b"stale").unwrap();
    let args: Vec<String> = ["x.o", "-lSystem", "-o"].iter().map(|s| s.to_string()).chain([out.display().to_string()]).collect();
    let result = common::machlink(&args);
    assert_eq!(String::from_utf8_lossy(&result.stderr), "machlink: static images link no libraries: -lSystem\n");
    assert_eq!(result.status.code(), Some(1));
    assert!(!out.exists(), "a stale output survived a failed link");
}

#[test]
fn unknown_option() {
    let result = common::machlink(&["x.o".into(), "-pie".into()]);
    assert_eq!(String::from_utf8_lossy(&result.stderr), "machlink: unknown option: -pie (see --help)\n");
    assert_eq!(result.status.code(), Some(1));
}

#[test]
fn help() {
    let result = common::machlink(&["--help".into()]);
    assert!(result.status.success());
    assert!(String::from_utf8_lossy(&result.stdout).contains("-dead_strip"));
}

/// The good side of the same machinery: a call into a second object is
/// linked and relocated, and a function nothing calls is dead-stripped.
#[test]
fn links_across_objects_and_strips_the_rest() {
    for (arch, name) in [(Architecture::X86_64, "x86_64"), (Architecture::I386, "i386")] {
        let mut a = new_object(BinaryFormat::MachO, arch);
        define(&mut a, "__start", CALL);
        let helper = undefined(&mut a, "_helper");
        let r_type = if name == "x86_64" { macho::X86_64_RELOC_BRANCH } else { macho::GENERIC_RELOC_VANILLA };
        reloc(&mut a, 1, helper, r_type, true);
        let mut b = new_object(BinaryFormat::MachO, arch);
        define(&mut b, "_unused", &[0x90; 64]);
        define(&mut b, "_helper", RET);

        let dir = common::scratch(&format!("good-{name}"));
        let a = save(&dir, "a.o", &a.write().unwrap());
        let b = save(&dir, "b.o", &b.write().unwrap());
        let out = dir.join("image");
        let mut args = vec![a.display().to_string(), b.display().to_string(), "-arch".into(), name.into(), "-o".into()];
        args.push(out.display().to_string());
        args.extend(["-Wl,-dead_strip".to_string(), "-Wl,-e,__start".to_string()]);
        let result = common::machlink(&args);
        assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));

        let image = std::fs::read(&out).unwrap();
        let file = object::File::parse(&*image).unwrap();
        use object::{Object as _, ObjectSymbol as _};
        let addr = |n: &str| file.symbols().find(|s| s.name() == Ok(n)).map(|s| s.address());
        let (start, helper) = (addr("__start").unwrap(), addr("_helper").unwrap());
        assert_eq!(addr("_unused"), None, "_unused was dead-stripped");
        // Read the call's displacement from the image itself.
        let base = if name == "x86_64" { 1u64 << 32 } else { 0x1000 };
        let at = (start - base) as usize;
        assert_eq!(image[at], 0xe8);
        let disp = i32::from_le_bytes(image[at + 1..at + 5].try_into().unwrap());
        assert_eq!((start as i64 + 5 + i64::from(disp)) as u64, helper, "{name}: call lands on _helper");
        assert_eq!(image[(helper - base) as usize], 0xc3);
    }
}

/// A relocation naming symbol number `nsyms`, one past the table, is
/// refused in one line (the boundary itself: `nsyms - 1` is a real symbol).
#[test]
fn relocation_naming_one_past_the_symbol_table() {
    use object::read::macho::{MachHeader, Segment as _};
    let mut obj = new_object(BinaryFormat::MachO, Architecture::X86_64);
    define(&mut obj, "__start", CALL);
    let foo = define(&mut obj, "_foo", RET);
    reloc(&mut obj, 1, foo, macho::X86_64_RELOC_BRANCH, true);
    let mut bytes = obj.write().unwrap();
    let (reloff, nsyms) = {
        let header = macho::MachHeader64::<Endianness>::parse(&*bytes, 0).unwrap();
        let e = header.endian().unwrap();
        let mut cmds = header.load_commands(e, &*bytes, 0).unwrap();
        let (mut reloff, mut nsyms) = (None, None);
        while let Some(cmd) = cmds.next().unwrap() {
            if let Some(st) = cmd.symtab().unwrap() {
                nsyms = Some(st.nsyms.get(e));
            }
            if let Some((seg, data)) = cmd.segment_64().unwrap() {
                for s in seg.sections(e, data).unwrap() {
                    if s.nreloc.get(e) == 1 {
                        reloff = Some(s.reloff.get(e) as usize);
                    }
                }
            }
        }
        (reloff.expect("one relocation"), nsyms.expect("a symbol table"))
    };
    // relocation_info's second word: r_symbolnum in its low 24 bits.
    let word = u32::from_le_bytes(bytes[reloff + 4..reloff + 8].try_into().unwrap());
    bytes[reloff + 4..reloff + 8].copy_from_slice(&((word & !0xff_ffff) | nsyms).to_le_bytes());
    expect_error("past-symtab", "x86_64", &[("start.o", bytes)], "start.o", "relocation names a symbol past the symbol table");
}
