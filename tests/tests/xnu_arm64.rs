//! The XNU arm64 image, checked with tools the project did not write:
//! llvm-objdump's Mach-O dumper for every header and load-command fact that
//! XNU (bsd/kern/mach_loader.c) and dyld (mach_o/UnsafeHeader.cpp) rely on,
//! its disassembler for the two system calls, and Python's hashlib
//! (tests/verify_signature.py) for every page hash of the code signature.
//!
//! Nothing here runs the image: that needs Apple Silicon, or an emulated
//! CPU answering `svc #0x80` as XNU would.

use hello_tests::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PAGE_16K: u64 = 0x4000;
const FOUR_GIB: u64 = 0x1_0000_0000;

fn image() -> PathBuf {
    hello(XNU_ARM64)
}

fn objdump_on(file: &Path, args: &[&str]) -> String {
    let out = Command::new(llvm_objdump()).args(args).arg(file).output().expect("run llvm-objdump");
    assert!(out.status.success(), "llvm-objdump {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("llvm-objdump prints text")
}

fn objdump(args: &[&str]) -> String {
    objdump_on(&image(), args)
}

/// A number as llvm-objdump prints it: `0x...` or decimal.
fn num(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

/// One `Load command N` block of `--private-headers`: `key value` lines,
/// with the section blocks of a segment kept apart.
#[derive(Debug, Default)]
struct Cmd {
    fields: Vec<(String, String)>,
    sections: Vec<Vec<(String, String)>>,
}

fn lookup<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no `{key}` in {fields:?}"))
}

impl Cmd {
    fn get(&self, key: &str) -> &str {
        lookup(&self.fields, key)
    }
    fn num(&self, key: &str) -> u64 {
        num(self.get(key))
    }
    fn name(&self) -> &str {
        self.get("cmd")
    }
}

struct Headers {
    /// The values row of the `Mach header` table, by column name.
    header: Vec<(String, String)>,
    /// Every word of the flags column.
    flags: Vec<String>,
    cmds: Vec<Cmd>,
}

impl Headers {
    fn all(&self, name: &str) -> Vec<&Cmd> {
        self.cmds.iter().filter(|c| c.name() == name).collect()
    }
    fn one(&self, name: &str) -> &Cmd {
        let found = self.all(name);
        assert_eq!(found.len(), 1, "expected exactly one {name}, found {}", found.len());
        found[0]
    }
    fn segment(&self, name: &str) -> &Cmd {
        let found: Vec<_> = self.all("LC_SEGMENT_64").into_iter().filter(|c| c.get("segname") == name).collect();
        assert_eq!(found.len(), 1, "expected exactly one {name} segment");
        found[0]
    }
}

/// `llvm-objdump --macho --private-headers`, parsed.
fn headers() -> Headers {
    let text = objdump(&["--macho", "--private-headers"]);
    let mut lines = text.lines().skip_while(|l| l.trim() != "Mach header").skip(1);
    let columns: Vec<String> = lines.next().expect("header columns").split_whitespace().map(String::from).collect();
    let values: Vec<&str> = lines.next().expect("header values").split_whitespace().collect();
    // Every column holds one word except the last, flags, which holds one per flag.
    let n = columns.len() - 1;
    let header = columns[..n].iter().cloned().zip(values[..n].iter().map(|v| v.to_string())).collect();
    let flags = values[n..].iter().map(|v| v.to_string()).collect();
    let mut cmds: Vec<Cmd> = Vec::new();
    let mut in_section = false;
    for line in lines {
        let line = line.trim();
        if line.starts_with("Load command ") {
            cmds.push(Cmd::default());
            in_section = false;
            continue;
        }
        let cmd = cmds.last_mut().expect("a field before the first load command");
        if line == "Section" {
            cmd.sections.push(Vec::new());
            in_section = true;
            continue;
        }
        let (key, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let field = (key.to_string(), value.trim().to_string());
        match cmd.sections.last_mut() {
            Some(section) if in_section => section.push(field),
            _ => cmd.fields.push(field),
        }
    }
    Headers { header, flags, cmds }
}

fn file_len() -> u64 {
    std::fs::metadata(image()).unwrap().len()
}

/// A symbol's address from `llvm-objdump -t`.
fn symbol(name: &str) -> u64 {
    let text = objdump(&["-t"]);
    let line = text
        .lines()
        .find(|l| l.split_whitespace().last() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in the symbol table:\n{text}"));
    num(&format!("0x{}", line.split_whitespace().next().unwrap()))
}

#[test]
fn mach_header_is_a_pie_dyld_executable_for_arm64() {
    let h = headers();
    let col = |c: &str| lookup(&h.header, c).to_string();
    assert_eq!(col("magic"), "MH_MAGIC_64");
    assert_eq!(col("cputype"), "ARM64");
    assert_eq!(col("cpusubtype"), "ALL");
    assert_eq!(col("filetype"), "EXECUTE");
    // parse_machfile: no MH_DYLDLINK is refused on arm64, and pie_required()
    // holds for CPU_TYPE_ARM64.
    for flag in ["DYLDLINK", "PIE"] {
        assert!(h.flags.iter().any(|f| f == flag), "no {flag} in {:?}", h.flags);
    }
    assert_eq!(num(&col("ncmds")), h.cmds.len() as u64);
    let total: u64 = h.cmds.iter().map(|c| c.num("cmdsize")).sum();
    assert_eq!(num(&col("sizeofcmds")), total);
}

#[test]
fn pagezero_is_4_gib_at_0_with_no_access() {
    let h = headers();
    let z = h.segment("__PAGEZERO");
    assert_eq!(z.num("vmaddr"), 0);
    assert_eq!(z.num("vmsize"), FOUR_GIB);
    assert_eq!(z.num("fileoff"), 0);
    assert_eq!(z.num("filesize"), 0);
    assert_eq!(z.get("maxprot"), "---");
    assert_eq!(z.get("initprot"), "---");
    assert!(std::ptr::eq(&h.cmds[0], z), "__PAGEZERO is the first load command");
}

#[test]
fn text_is_read_execute_from_file_offset_0() {
    let h = headers();
    let t = h.segment("__TEXT");
    assert_eq!(t.num("fileoff"), 0);
    assert_eq!(t.num("vmaddr"), FOUR_GIB, "right above the page zero");
    assert_eq!(t.get("maxprot"), "r-x");
    assert_eq!(t.get("initprot"), "r-x");
    let sizeofcmds = num(lookup(&h.header, "sizeofcmds"));
    assert!(t.num("filesize") >= 32 + sizeofcmds, "the header and load commands lie inside __TEXT");
    // Only code and the message: a __stubs or __got section would mean an
    // imported function.
    let names: Vec<&str> = t.sections.iter().map(|s| lookup(s, "sectname")).collect();
    assert_eq!(names, ["__text", "__const"]);
}

#[test]
fn segments_are_16k_aligned_and_linkedit_ends_the_file() {
    let h = headers();
    let names: Vec<&str> = h.all("LC_SEGMENT_64").iter().map(|c| c.get("segname")).collect();
    assert_eq!(names, ["__PAGEZERO", "__TEXT", "__LINKEDIT"], "no writable segment");
    for seg in h.all("LC_SEGMENT_64") {
        let name = seg.get("segname");
        assert_eq!(seg.num("fileoff") % PAGE_16K, 0, "{name} file offset");
        assert_eq!(seg.num("vmaddr") % PAGE_16K, 0, "{name} address");
    }
    let l = h.segment("__LINKEDIT");
    assert_eq!(l.get("maxprot"), "r--");
    assert_eq!(l.get("initprot"), "r--");
    assert_eq!(l.num("fileoff") + l.num("filesize"), file_len());
}

#[test]
fn loads_usr_lib_dyld() {
    let h = headers();
    let d = h.one("LC_LOAD_DYLINKER");
    assert_eq!(d.get("name").split(" (offset").next(), Some("/usr/lib/dyld"));
}

#[test]
fn lc_main_enters_the_naked_start() {
    let h = headers();
    let main = h.one("LC_MAIN");
    assert!(h.all("LC_UNIXTHREAD").is_empty(), "dyld refuses LC_MAIN with LC_UNIXTHREAD");
    let text = h.segment("__TEXT");
    // entryoff is a file offset; __TEXT maps offset 0 at its vmaddr.
    let entry = text.num("vmaddr") + main.num("entryoff");
    assert_eq!(entry, symbol("__start"));
    let code = text.sections.iter().find(|s| lookup(s, "sectname") == "__text").unwrap();
    let (addr, size) = (num(lookup(code, "addr")), num(lookup(code, "size")));
    assert!(addr <= entry && entry < addr + size, "the entry lies in __TEXT,__text");
    assert_eq!(main.num("stacksize"), 0, "the main thread's usual stack");
}

#[test]
fn build_version_says_macos() {
    let h = headers();
    let b = h.one("LC_BUILD_VERSION");
    assert_eq!(b.get("platform"), "macos");
    // rustc's minimum for aarch64-apple-darwin: the first arm64 macOS.
    assert_eq!(b.get("minos"), "11.0");
    assert!(h.all("LC_VERSION_MIN_MACOSX").is_empty());
}

#[test]
fn has_a_uuid() {
    let h = headers();
    let uuid = h.one("LC_UUID").get("uuid").to_string();
    assert_eq!(uuid.len(), 36, "{uuid}");
    assert!(uuid.chars().any(|c| c.is_ascii_hexdigit() && c != '0'), "all-zero UUID");
}

#[test]
fn symtab_and_dysymtab_with_no_undefined_symbol() {
    let h = headers();
    let symtab = h.one("LC_SYMTAB");
    let dysymtab = h.one("LC_DYSYMTAB");
    assert_eq!(dysymtab.num("nundefsym"), 0);
    assert_eq!(
        dysymtab.num("nlocalsym") + dysymtab.num("nextdefsym"),
        symtab.num("nsyms"),
        "every symbol is local or defined"
    );
    let table = objdump(&["-t"]);
    assert!(table.contains("__start"), "{table}");
    assert!(!table.contains("*UND*"), "an undefined symbol:\n{table}");
    // Nothing for dyld to bind: every table empty.
    let binds = objdump(&["--macho", "--bind", "--lazy-bind", "--weak-bind"]);
    let rows: Vec<&str> = binds
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty() && !l.ends_with("table:") && !l.starts_with("segment"))
        .collect();
    assert!(rows.is_empty(), "bound symbols: {rows:?}");
}

#[test]
fn names_libsystem_and_no_other_library() {
    let h = headers();
    const KINDS: [&str; 5] =
        ["LC_LOAD_DYLIB", "LC_LOAD_WEAK_DYLIB", "LC_LOAD_UPWARD_DYLIB", "LC_LAZY_LOAD_DYLIB", "LC_REEXPORT_DYLIB"];
    let dylibs: Vec<(&str, &str)> = h
        .cmds
        .iter()
        .filter(|c| KINDS.contains(&c.name()))
        .map(|c| (c.name(), c.get("name").split(" (offset").next().unwrap()))
        .collect();
    // A plain load: dyld fails the launch if it cannot load it, as it
    // would without libSystem anyway.
    assert_eq!(dylibs, [("LC_LOAD_DYLIB", "/usr/lib/libSystem.B.dylib")]);
    let used = objdump(&["--macho", "--dylibs-used"]);
    let used: Vec<&str> = used.lines().skip(1).map(|l| l.trim().split(" (").next().unwrap()).collect();
    assert_eq!(used, ["/usr/lib/libSystem.B.dylib"]);
}

#[test]
fn code_signature_is_last_in_linkedit() {
    let h = headers();
    let sig = h.one("LC_CODE_SIGNATURE");
    let (dataoff, datasize) = (sig.num("dataoff"), sig.num("datasize"));
    assert_eq!(dataoff % 16, 0);
    assert_eq!(dataoff + datasize, file_len(), "the signature ends the file");
    let l = h.segment("__LINKEDIT");
    assert!(l.num("fileoff") <= dataoff);
    // Every other __LINKEDIT table ends before the signature starts.
    let symtab = h.one("LC_SYMTAB");
    assert!(symtab.num("symoff") < dataoff && symtab.num("stroff") + symtab.num("strsize") <= dataoff);
    for c in h.cmds.iter().filter(|c| c.fields.iter().any(|(k, _)| k == "dataoff") && c.name() != "LC_CODE_SIGNATURE") {
        assert!(c.num("dataoff") + c.num("datasize") <= dataoff, "{} after the signature", c.name());
    }
    let info = h.one("LC_DYLD_INFO_ONLY");
    assert!(info.num("export_off") + info.num("export_size") <= dataoff);
}

// ---- the signature, hashed independently ------------------------------

fn verify_signature(file: &Path) -> Output {
    let python = tool("python3", "apt-get install python3");
    Command::new(python)
        .arg(root().join("tests/verify_signature.py"))
        .arg(file)
        .output()
        .expect("run tests/verify_signature.py")
}

#[test]
fn every_page_hash_matches_hashlib() {
    let h = headers();
    let dataoff = h.one("LC_CODE_SIGNATURE").num("dataoff");
    let out = verify_signature(&image());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let pages = dataoff.div_ceil(4096);
    assert!(
        stdout.starts_with(&format!("ok: {pages} page hashes (SHA-256, 4096-byte pages up to {dataoff:#x}) match; ")),
        "{stdout}"
    );
    assert!(stdout.contains("flags 0x20002, execSeg 0x0+0x4000 main-binary"), "{stdout}");
}

/// A copy of the image with one byte changed, checked.
fn tampered(offset: u64) -> (Option<i32>, String) {
    let mut data = std::fs::read(image()).unwrap();
    data[offset as usize] ^= 0x20;
    let copy = tempfile("tampered");
    std::fs::write(&copy, &data).unwrap();
    let out = verify_signature(&copy);
    let _ = std::fs::remove_file(&copy);
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_changed_byte_fails_the_check_on_its_page() {
    let h = headers();
    let text = h.segment("__TEXT");
    let message = text.sections.iter().find(|s| lookup(s, "sectname") == "__const").unwrap();
    let message_off = num(lookup(message, "offset"));
    let dataoff = h.one("LC_CODE_SIGNATURE").num("dataoff");
    let last = dataoff - 1;
    // The message ('H' -> 'h'), a zero byte of __TEXT's padding, and the
    // last byte the signature covers (the string table).
    for offset in [message_off, 0x3000, last] {
        let page = offset / 4096;
        let (code, stderr) = tampered(offset);
        assert_eq!(code, Some(1), "byte {offset:#x} changed, yet the check passed: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "exactly one problem: {stderr}");
        assert!(lines[0].contains(&format!(": page {page} ({:#x}): stored hash", page * 4096)), "{stderr}");
    }
}

#[test]
fn a_changed_stored_hash_fails_the_check() {
    let h = headers();
    let dataoff = h.one("LC_CODE_SIGNATURE").num("dataoff");
    let data = std::fs::read(image()).unwrap();
    let be = |o: u64| u32::from_be_bytes(data[o as usize..o as usize + 4].try_into().unwrap()) as u64;
    // SuperBlob index entry 0 gives the CodeDirectory; its hashOffset (at
    // +16, cs_blobs.h) the first slot. Page 2's slot, first byte:
    let cd = dataoff + be(dataoff + 16);
    let slot2 = cd + be(cd + 16) + 2 * 32;
    let (code, stderr) = tampered(slot2);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(": page 2 (0x2000): stored hash"), "{stderr}");
}

// ---- the code -----------------------------------------------------------

/// `llvm-objdump -d`: the instructions of __TEXT,__text as `mnemonic
/// operands`, comments dropped, and the symbol labels seen.
fn disassembly() -> (Vec<String>, Vec<String>) {
    let text = objdump(&["-d"]);
    let (mut insns, mut labels) = (Vec::new(), Vec::new());
    for line in text.lines() {
        if let Some(label) = line.strip_suffix(">:") {
            labels.push(label.rsplit('<').next().unwrap().to_string());
            continue;
        }
        // "100000328: d2800023    \tmov\tx3, #0x1   ; =1"
        let Some((addr, rest)) = line.trim().split_once(": ") else { continue };
        if !addr.chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        let rest = rest.trim_start();
        let Some((_word, insn)) = rest.split_once(char::is_whitespace) else { continue };
        let insn = insn.split(';').next().unwrap();
        insns.push(insn.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    (insns, labels)
}

#[test]
fn two_svc_0x80_with_x16_4_then_1() {
    let (insns, labels) = disassembly();
    assert_eq!(labels, ["__start"], "the code is _start and nothing else");
    let svcs: Vec<usize> = insns.iter().enumerate().filter(|(_, i)| i.starts_with("svc")).map(|(n, _)| n).collect();
    assert_eq!(svcs.len(), 2, "{insns:#?}");
    let before: Vec<&str> = svcs.iter().map(|&n| insns[n - 1].as_str()).collect();
    assert_eq!(before, ["mov x16, #0x4", "mov x16, #0x1"], "SYS_write, then SYS_exit");
    for &n in &svcs {
        assert_eq!(insns[n], "svc #0x80");
    }
    let x16_writes = insns.iter().filter(|i| i.split_whitespace().nth(1) == Some("x16,")).count();
    assert_eq!(x16_writes, 2, "x16 is set only right before each svc");
    assert_eq!(svcs[1], insns.len() - 1, "exit's svc is the last instruction");
}

#[test]
fn the_code_calls_nothing_and_never_returns() {
    let (insns, _) = disassembly();
    for i in &insns {
        let mnemonic = i.split_whitespace().next().unwrap();
        assert!(
            !matches!(mnemonic, "bl" | "blr" | "br" | "ret" | "braa" | "blraa" | "retaa"),
            "`{i}`: the entry must neither call out (libSystem is never called) nor return to dyld"
        );
    }
}

#[test]
fn the_message_is_14_bytes_in_text_const() {
    let h = headers();
    let message = h.segment("__TEXT").sections.iter().find(|s| lookup(s, "sectname") == "__const").unwrap();
    let (off, size) = (num(lookup(message, "offset")), num(lookup(message, "size")));
    let data = std::fs::read(image()).unwrap();
    assert_eq!(&data[off as usize..(off + size) as usize], MESSAGE);
}
