//! What the mutation check (`bench/mutants anatomy`) found no other test
//! noticing: the meanings anatomy prints next to each value, and the paths
//! the real hello binaries never take (other CPU types, flags, section
//! kinds, thread states, signature layouts), reached here by patching a
//! real binary's fields one at a time.

use hello_tests::*;
use std::path::Path;
use std::process::Command;

/// anatomy on `file`: its output, or its one line of error.
fn run(file: &Path) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_anatomy")).arg(file).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    match out.status.code() {
        Some(0) if stderr.is_empty() => Ok(stdout),
        Some(1) if stdout.is_empty() && stderr.lines().count() == 1 => Err(stderr),
        other => panic!("anatomy {}: status {other:?}, stderr {stderr}", file.display()),
    }
}

/// anatomy on `bytes`, written to a file of their own.
fn run_bytes(bytes: &[u8]) -> Result<String, String> {
    let file = tempfile("anatomy-mutants");
    std::fs::write(&file, bytes).unwrap();
    let result = run(&file);
    let _ = std::fs::remove_file(&file);
    result
}

/// The guide's pages (docs/anatomy) are anatomy's output on the six hello
/// binaries, byte for byte, as `docs/generate` writes them: every value
/// and every meaning the guide prints, not only the ones the other tests
/// read back.
#[test]
fn the_guide_pages_are_its_output() {
    for (target, page) in [
        (LINUX_X86_64, "linux_x86_64"),
        (LINUX_I386, "linux_i386"),
        (LINUX_AARCH64, "linux_aarch64"),
        (XNU_X86_64, "xnu_x86_64"),
        (XNU_I386, "xnu_i386"),
        (XNU_ARM64, "xnu_arm64"),
    ] {
        let text = run(&hello(target)).unwrap_or_else(|e| panic!("{target}: {e}"));
        let page = root().join("docs/anatomy").join(format!("{page}.txt"));
        let want = std::fs::read_to_string(&page).unwrap();
        assert!(text == want, "{target}: anatomy's output is not {} (docs/generate rewrites it)", page.display());
    }
}

/// The rows of the block whose heading starts with `heading`: (offset,
/// size, field, rest of the line).
fn rows(text: &str, heading: &str) -> Vec<(usize, usize, String, String)> {
    let start = text.find(&format!("## {heading}")).unwrap_or_else(|| panic!("no block {heading:?} in:\n{text}"));
    text[start..].lines().skip(2).take_while(|l| !l.is_empty() && !l.starts_with("##")).map(parse_row).collect()
}

/// Every row of every block whose heading starts with `prefix`.
fn rows_under(text: &str, prefix: &str) -> Vec<(usize, usize, String, String)> {
    let mut all = Vec::new();
    for (i, _) in text.match_indices(&format!("\n## {prefix}")) {
        all.extend(text[i + 1..].lines().skip(2).take_while(|l| !l.is_empty() && !l.starts_with("##")).map(parse_row));
    }
    assert!(!all.is_empty(), "no heading starts with {prefix:?}");
    all
}

fn parse_row(l: &str) -> (usize, usize, String, String) {
    let mut it = l.split_whitespace();
    let off = usize::from_str_radix(it.next().unwrap().trim_start_matches("0x"), 16).unwrap();
    let size: usize = it.next().unwrap().parse().unwrap();
    let after_size = l.split_once(&format!(" {size}  ")).unwrap().1;
    let (field, rest) = after_size.split_once("  ").unwrap_or((after_size, ""));
    (off, size, field.trim().to_string(), rest.trim().to_string())
}

/// The row of `field` in the block `heading`: (offset, size, rest).
fn row(text: &str, heading: &str, field: &str) -> (usize, usize, String) {
    let (off, size, _, rest) = rows(text, heading).into_iter().find(|r| r.2 == field).unwrap_or_else(|| panic!("no {field} in {heading}"));
    (off, size, rest)
}

/// Rows that tile [from, to): sorted, no gap, no overlap, none empty.
fn tiles(mut rows: Vec<(usize, usize, String, String)>, from: usize, to: usize) {
    rows.sort_by_key(|r| r.0);
    let mut next = from;
    for (off, size, field, _) in rows {
        assert_eq!(off, next, "{field} at {off:#x}: gap or overlap before it");
        assert!(size > 0, "{field} at {off:#x}: a row of no bytes");
        next = off + size;
    }
    assert_eq!(next, to, "the rows stop at {next:#x}, not {to:#x}");
}

fn le16(data: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(data[at..at + 2].try_into().unwrap())
}

fn le32(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().unwrap())
}

fn le64(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(data[at..at + 8].try_into().unwrap())
}

fn put_le32(data: &mut [u8], at: usize, v: u32) {
    data[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn be32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(data[at..at + 4].try_into().unwrap())
}

fn put_be32(data: &mut [u8], at: usize, v: u32) {
    data[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// No row anywhere in the output covers zero bytes: a padding row
/// appears only where there is padding.
#[test]
fn no_row_is_empty() {
    for target in [LINUX_X86_64, LINUX_I386, LINUX_AARCH64, XNU_X86_64, XNU_I386, XNU_ARM64] {
        let text = run(&hello(target)).unwrap();
        for line in text.lines().filter(|l| l.starts_with("0x")) {
            assert_ne!(parse_row(line).1, 0, "{target}: {line}");
        }
    }
}

// ELF (x86_64 hello: two program headers, PT_LOAD and PT_GNU_STACK; three
// section headers, SHT_NULL, `_start` and `.shstrtab`).

/// (e_phoff, e_phentsize, e_shoff, e_shentsize) of an ELF64 file.
fn elf64_tables(data: &[u8]) -> (usize, usize, usize, usize) {
    (le64(data, 0x20) as usize, le16(data, 0x36) as usize, le64(data, 0x28) as usize, le16(data, 0x3a) as usize)
}

/// The segment kinds the hello binaries lack, each named as the ELF
/// specification names its number (PT_DYNAMIC 2, PT_INTERP 3), with what
/// it means to `load_elf_binary`; and SHT_SYMTAB (2).
#[test]
fn elf_segment_and_section_kinds_hello_lacks() {
    let data = std::fs::read(hello(LINUX_X86_64)).unwrap();
    let (phoff, phentsize, shoff, shentsize) = elf64_tables(&data);
    assert_eq!(le32(&data, phoff + phentsize), object::elf::PT_GNU_STACK.0, "program header 1 is PT_GNU_STACK");
    for (p_type, meaning) in [(object::elf::PT_INTERP.0, "PT_INTERP: needs a dynamic loader"), (object::elf::PT_DYNAMIC.0, "PT_DYNAMIC: dynamic linking information")] {
        let mut bytes = data.clone();
        put_le32(&mut bytes, phoff + phentsize, p_type);
        let text = run_bytes(&bytes).unwrap();
        assert_eq!(row(&text, "program header 1", "p_type").2, format!("{p_type:#x}                  {meaning}"));
    }
    let mut bytes = data.clone();
    put_le32(&mut bytes, shoff + 2 * shentsize + 4, object::elf::SHT_SYMTAB.0);
    let text = run_bytes(&bytes).unwrap();
    assert_eq!(row(&text, "section header 2", "sh_type").2, "0x2                  SHT_SYMTAB: a symbol table");
}

/// The message's bytes inside a header (here written over the reserved
/// first section header, which is all zeros) are header bytes all the
/// same: the section headers stay one row, "(fields above)", and the only
/// row called message is the real one, in `_start`.
#[test]
fn elf_message_bytes_inside_a_header_are_not_the_message() {
    let mut data = std::fs::read(hello(LINUX_X86_64)).unwrap();
    let (_, _, shoff, shentsize) = elf64_tables(&data);
    // sh_addr and sh_offset of section header 0: its type stays SHT_NULL.
    data[shoff + 16..shoff + 16 + MESSAGE.len()].copy_from_slice(MESSAGE);
    let text = run_bytes(&data).unwrap();
    let layout = rows(&text, "the file in order");
    let headers: Vec<_> = layout.iter().filter(|r| r.2 == "section headers").collect();
    assert_eq!(headers.len(), 1, "{layout:?}");
    assert_eq!((headers[0].0, headers[0].1, headers[0].3.as_str()), (shoff, 3 * shentsize, "(fields above)"));
    let messages: Vec<_> = layout.iter().filter(|r| r.2 == "message").collect();
    assert_eq!(messages.len(), 1, "{layout:?}");
    assert_eq!(&data[messages[0].0..messages[0].0 + messages[0].1], MESSAGE);
    tiles(layout, 0, data.len());
}

/// Bytes no header describes and that are not zeros (here the message's
/// last two bytes, once `_start`'s sh_size is two short) are shown as
/// "unlisted", in hex, over exactly their extent. Two bytes, not one: a
/// region's size computed as end / start instead of end - start is also
/// 1 for a one-byte gap this far into the file.
#[test]
fn elf_bytes_no_header_describes() {
    let mut data = std::fs::read(hello(LINUX_X86_64)).unwrap();
    let (_, _, shoff, shentsize) = elf64_tables(&data);
    let size_at = shoff + shentsize + 32;
    let (offset, size) = (le64(&data, shoff + shentsize + 24) as usize, le64(&data, size_at));
    assert_eq!(data[offset + size as usize - 1], b'\n', "_start ends with the message");
    data[size_at..size_at + 8].copy_from_slice(&(size - 2).to_le_bytes());
    let text = run_bytes(&data).unwrap();
    let layout = rows(&text, "the file in order");
    let end = offset + size as usize - 2;
    assert!(layout.contains(&(end, 2, "unlisted".into(), "21 0a".into())), "{layout:?}");
    tiles(layout, 0, data.len());
}

// Mach-O.

/// (offset, cmd, cmdsize) of each load command.
fn commands(data: &[u8]) -> Vec<(usize, u32, usize)> {
    let mut off = if le32(data, 0) == object::macho::MH_MAGIC_64 { 32 } else { 28 };
    let mut all = Vec::new();
    for _ in 0..le32(data, 16) {
        let (cmd, size) = (le32(data, off), le32(data, off + 4) as usize);
        all.push((off, cmd, size));
        off += size;
    }
    all
}

/// The offset of the one load command `cmd`.
fn command(data: &[u8], cmd: u32) -> usize {
    let found: Vec<usize> = commands(data).into_iter().filter(|c| c.1 == cmd).map(|c| c.0).collect();
    assert_eq!(found.len(), 1, "one load command {cmd:#x}");
    found[0]
}

/// File offset of the section header `seg,sect`.
fn section_header(data: &[u8], seg: &str, sect: &str) -> usize {
    let name16 = |at: usize| String::from_utf8_lossy(&data[at..at + 16]).trim_end_matches('\0').to_string();
    for (off, cmd, _) in commands(data) {
        let (first, size) = match object::macho::LoadCommandType(cmd) {
            object::macho::LC_SEGMENT_64 => (off + 72, 80),
            object::macho::LC_SEGMENT => (off + 56, 68),
            _ => continue,
        };
        let nsects = le32(data, if cmd == object::macho::LC_SEGMENT_64.0 { off + 64 } else { off + 48 }) as usize;
        for i in 0..nsects {
            let at = first + i * size;
            if name16(at) == sect && name16(at + 16) == seg {
                return at;
            }
        }
    }
    panic!("no section {seg},{sect}");
}

/// `MH_OBJECT` (filetype 1) and a section of C strings
/// (`S_CSTRING_LITERALS`, type 2), named as loader.h names them.
#[test]
fn macho_object_file_type_and_cstring_section() {
    let data = std::fs::read(hello(XNU_X86_64)).unwrap();
    let mut bytes = data.clone();
    put_le32(&mut bytes, 12, object::macho::MH_OBJECT.0);
    let text = run_bytes(&bytes).unwrap();
    assert_eq!(row(&text, "mach_header", "filetype").2, "0x1                  MH_OBJECT: a relocatable object, not runnable");

    let mut bytes = data.clone();
    let flags = section_header(&bytes, "__TEXT", "__const") + 64;
    put_le32(&mut bytes, flags, object::macho::S_CSTRING_LITERALS.0.into());
    let text = run_bytes(&bytes).unwrap();
    let heading = "section 1 of __TEXT: __TEXT,__const";
    assert_eq!(row(&text, heading, "flags").2, "0x2                  S_CSTRING_LITERALS");
}

/// Registers that are not zero at exec: a stack pointer, which means the
/// program brings its own stack (`load_unixthread` makes none), and any
/// other register, are "set at exec"; only a zero stack pointer asks the
/// kernel for one.
#[test]
fn macho_thread_registers_set_at_exec() {
    for (target, regs, width) in [(XNU_X86_64, ["rax", "rsp"], 8), (XNU_I386, ["eax", "esp"], 4)] {
        let mut data = std::fs::read(hello(target)).unwrap();
        let thread = command(&data, object::macho::LC_UNIXTHREAD.0);
        let heading = text_heading(&run_bytes(&data).unwrap(), "LC_UNIXTHREAD");
        let text = run_bytes(&data).unwrap();
        let sp = row(&text, &heading, regs[1]);
        assert!(sp.2.ends_with("0x0                  0: the kernel allocates the stack and puts argc, argv, envp, apple there"), "{target}: {sp:?}");
        // rax/eax is the state's first word, rsp/esp its eighth.
        for (reg, at, value) in [(regs[0], thread + 16, 5u32), (regs[1], thread + 16 + 7 * width, 0x7fff_0000)] {
            assert_eq!(le32(&data, at), 0, "{target}: {reg} starts at 0");
            put_le32(&mut data, at, value);
        }
        let text = run_bytes(&data).unwrap();
        assert_eq!(row(&text, &heading, regs[0]).2, "0x5                  set at exec", "{target}");
        assert_eq!(row(&text, &heading, regs[1]).2, "0x7fff0000           set at exec", "{target}");
    }
}

/// The heading of the one load command `name`, without its size.
fn text_heading(text: &str, name: &str) -> String {
    let line = text.lines().find(|l| l.starts_with("## load command ") && l.contains(&format!(": {name} ("))).unwrap();
    line.trim_start_matches("## ").split(" (").next().unwrap().to_string()
}

/// A file that ends with its load commands (its `LC_SYMTAB`, whose table
/// lies further on, turned into a command anatomy does not explain): the
/// thread state is still read from the command's own bytes, and shown.
#[test]
fn macho_file_cut_after_its_load_commands() {
    let mut data = std::fs::read(hello(XNU_I386)).unwrap();
    let symtab = command(&data, object::macho::LC_SYMTAB.0);
    put_le32(&mut data, symtab, 0x7e);
    let end = 28 + le32(&data, 20) as usize;
    let thread = command(&data, object::macho::LC_UNIXTHREAD.0);
    let eip = le32(&data, thread + 16 + 10 * 4);
    data.truncate(end);
    let text = run_bytes(&data).unwrap();
    let heading = text_heading(&text, "LC_UNIXTHREAD");
    assert_eq!(row(&text, &heading, "flavor").2, "0x1                  x86_THREAD_STATE32");
    assert_eq!(row(&text, &heading, "eip").2, format!("{eip:#x}               the entry point: first instruction of _start"));
    assert!(text.trim_end().ends_with(&format!("{end} bytes in all")));
}

/// An `LC_BUILD_VERSION` with two tool entries (ld64 writes one per tool
/// that made the file): the second is read right after the first, at
/// +32 (+24 for the command's fields, +8 for the first entry). Here it
/// overlaps the next command, whose first words it shows.
#[test]
fn macho_build_version_with_two_tools() {
    let mut data = std::fs::read(hello(XNU_ARM64)).unwrap();
    let build = command(&data, object::macho::LC_BUILD_VERSION.0);
    assert_eq!(le32(&data, build + 20), 1, "one tool");
    put_le32(&mut data, build + 20, 2);
    let text = run_bytes(&data).unwrap();
    let heading = text_heading(&text, "LC_BUILD_VERSION");
    let tools: Vec<_> = rows(&text, &heading).into_iter().filter(|r| r.2 == "tool").map(|r| (r.0, r.1)).collect();
    assert_eq!(tools, [(build + 24, 4), (build + 32, 4)]);
    let second = le32(&data, build + 32);
    assert!(rows(&text, &heading).iter().any(|r| r.0 == build + 32 && r.3.starts_with(&format!("{second:#x} "))), "{text}");
}

// The arm64 image's code signature (osfmk/kern/cs_blobs.h): a SuperBlob
// (magic, length, count), `count` index entries of 8 bytes (type,
// offset), then the blobs; the one blob rust-lld writes is the
// CodeDirectory, 4 bytes after the index (8-byte aligned), as long as its
// `length` says, ending the file.

/// (the image, LC_CODE_SIGNATURE's offset, dataoff, datasize).
fn signed() -> (Vec<u8>, usize, usize, usize) {
    let data = std::fs::read(hello(XNU_ARM64)).unwrap();
    let lc = command(&data, object::macho::LC_CODE_SIGNATURE.0);
    let (off, size) = (le32(&data, lc + 8) as usize, le32(&data, lc + 12) as usize);
    assert_eq!(off + size, data.len(), "the signature ends the file");
    assert_eq!((be32(&data, off + 8), be32(&data, off + 12), be32(&data, off + 16)), (1, 0, 24), "one blob, a CodeDirectory, at +24");
    (data, lc, off, size)
}

/// The signature's rows tile its bytes exactly, whatever the layout.
fn signature_tiles(data: &[u8], off: usize, size: usize) -> String {
    let text = run_bytes(data).unwrap();
    tiles(rows_under(&text, "code signature:"), off, off + size);
    text
}

/// CodeDirectory flags one at a time: each bit is named only when set.
#[test]
fn signature_flags_each_alone() {
    let (data, _, off, _) = signed();
    let flags_at = off + 24 + 12;
    assert_eq!(be32(&data, flags_at), 0x20002);
    for (flags, meaning) in [
        (0, "no flags"),
        (0x2, "CS_ADHOC: no certificate, only hashes"),
        (0x20000, "CS_LINKER_SIGNED: made by the linker, not codesign"),
    ] {
        let mut bytes = data.clone();
        put_be32(&mut bytes, flags_at, flags);
        let text = run_bytes(&bytes).unwrap();
        let (_, _, rest) = row(&text, "code signature: CodeDirectory", "flags");
        assert_eq!(rest.split_once(' ').map(|(_, m)| m.trim()), Some(meaning), "flags {flags:#x}");
    }
}

/// The CodeDirectory moved 4 bytes down, right after the index (no
/// padding row between them, none of 0 bytes), leaving 4 bytes after
/// the SuperBlob inside LC_CODE_SIGNATURE's datasize; then the same with
/// the CodeDirectory's length taking those 4 bytes, which become padding
/// after its hash slots.
#[test]
fn signature_with_the_code_directory_right_after_the_index() {
    let (data, _, off, size) = signed();
    let mut moved = data.clone();
    moved.copy_within(off + 24..off + size, off + 20);
    moved[off + size - 4..].fill(0);
    put_be32(&mut moved, off + 16, 20);
    let text = signature_tiles(&moved, off, size);
    let index = rows(&text, "code signature: blob index 0");
    assert_eq!(index.last().map(|r| r.0 + r.1), Some(off + 20), "the index ends where the CodeDirectory starts: {index:?}");
    let last = rows_under(&text, "code signature:").pop();
    assert_eq!(last, Some((off + size - 4, 4, "padding".into(), "zeros: after the SuperBlob, up to LC_CODE_SIGNATURE's datasize".into())));

    let cd = off + 20;
    let length = be32(&moved, cd + 4);
    put_be32(&mut moved, cd + 4, length + 4);
    let text = signature_tiles(&moved, off, size);
    let slots = rows(&text, "code signature: identifier and hash slots");
    assert_eq!(slots.last().map(|r| (r.0, r.1, r.3.as_str())), Some((off + size - 4, 4, "zeros: after the hash slots, inside the CodeDirectory")));
}

/// The identifier 8 bytes further on (`identOffset` + 8, the bytes
/// skipped shown as padding, not zeros: they are the identifier's first
/// 8), and the hash slots right after the identifier (`hashOffset` at
/// its NUL + 1: no padding row between).
#[test]
fn signature_with_moved_identifier_and_hashes() {
    let (data, _, off, size) = signed();
    let cd = off + 24;
    let (hash_offset, ident_offset) = (be32(&data, cd + 16) as usize, be32(&data, cd + 20) as usize);
    let mut bytes = data.clone();
    put_be32(&mut bytes, cd + 20, (ident_offset + 8) as u32);
    let text = signature_tiles(&bytes, off, size);
    let first8: String = data[cd + ident_offset..cd + ident_offset + 8].iter().map(|b| format!("{b:02x} ")).collect();
    let (o, len, rest) = row(&text, "code signature: identifier and hash slots", "padding");
    assert_eq!((o, len, rest), (cd + ident_offset, 8, format!("not described by any field: {}", first8.trim_end())));

    let nul = data[cd + ident_offset..].iter().position(|&b| b == 0).unwrap();
    let mut bytes = data.clone();
    let new_hashes = ident_offset + nul + 1;
    assert!(new_hashes < hash_offset);
    put_be32(&mut bytes, cd + 16, new_hashes as u32);
    let text = signature_tiles(&bytes, off, size);
    let slots = rows(&text, "code signature: identifier and hash slots");
    assert_eq!(slots[1].2, "hash slot 0", "no padding row between identifier and hashes: {slots:?}");
    assert_eq!(slots[1].0, cd + new_hashes);
}

/// A SuperBlob that holds no blob: everything after its 12 bytes is
/// shown as bytes no field describes.
#[test]
fn signature_with_no_blob() {
    let (data, _, off, size) = signed();
    let mut bytes = data.clone();
    put_be32(&mut bytes, off + 8, 0);
    let text = signature_tiles(&bytes, off, size);
    let superblob = rows(&text, "code signature: SuperBlob");
    let last = superblob.last().unwrap();
    assert_eq!((last.0, last.1, last.2.as_str()), (off + 12, size - 12, "padding"));
    assert!(last.3.starts_with("not described by any field: 00 00 00 00 00 00 00 18 "), "{last:?}");
}

/// A second blob, a requirements blob (slot 2, magic 0xfade0c01), after
/// the CodeDirectory, with its index entry second: both index entries
/// are shown, at +12 and +20, and the requirements blob is refused by
/// its address, as anatomy explains only a CodeDirectory.
#[test]
fn signature_with_a_second_blob() {
    let (data, lc, off, size) = signed();
    let cd_length = be32(&data, off + 24 + 4) as usize;
    // SuperBlob, two index entries, the CodeDirectory at +32 (8-byte
    // aligned), then the 12-byte requirements blob.
    let cd_at = 32;
    let req_at = cd_at + cd_length;
    let total = req_at + 12;
    let mut sig = Vec::new();
    for word in [0xfade_0cc0, total as u32, 2, 0, cd_at as u32, 2, req_at as u32] {
        sig.extend_from_slice(&u32::to_be_bytes(word));
    }
    sig.resize(cd_at, 0);
    sig.extend_from_slice(&data[off + 24..off + 24 + cd_length]);
    for word in [0xfade_0c01, 12, 0] {
        sig.extend_from_slice(&u32::to_be_bytes(word));
    }
    let mut bytes = data[..off].to_vec();
    bytes.extend_from_slice(&sig);
    put_le32(&mut bytes, lc + 12, total as u32);
    assert!(total > size);
    let err = run_bytes(&bytes).unwrap_err();
    assert!(err.ends_with(&format!(": blob at {:#x}: only a CodeDirectory is explained\n", off + req_at)), "{err}");
}
