//! `anatomy` on the real hello binaries: every byte of the file is
//! accounted for exactly once, and the values it prints are the file's.

use hello_tests::*;
use std::path::Path;
use std::process::Command;

fn anatomy(file: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_anatomy")).arg(file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The rows of one `## heading` block: (offset, size, field, rest).
fn block<'a>(text: &'a str, heading: &str) -> Vec<(usize, usize, &'a str, &'a str)> {
    let start = text.find(&format!("## {heading}")).unwrap_or_else(|| panic!("no block {heading:?}"));
    text[start..]
        .lines()
        .skip(2)
        .take_while(|l| !l.is_empty() && !l.starts_with("##"))
        .map(|l| {
            let mut it = l.split_whitespace();
            let off = usize::from_str_radix(it.next().unwrap().trim_start_matches("0x"), 16).unwrap();
            let size = it.next().unwrap().parse().unwrap();
            // Field names may hold one space ("ELF header"); the rest of the
            // line is value and meaning.
            let after_size = l.split_once(&format!(" {size}  ")).unwrap().1;
            let (field, rest) = after_size.split_once("  ").unwrap_or((after_size, ""));
            (off, size, field.trim(), rest.trim())
        })
        .collect()
}

fn value(text: &str, heading: &str, field: &str) -> u64 {
    let rows = block(text, heading);
    let (_, _, _, rest) = rows.iter().find(|r| r.2 == field).unwrap_or_else(|| panic!("no {field} in {heading}"));
    let v = rest.split_whitespace().next().unwrap();
    u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap()
}

/// The layout block covers [0, len) with no gap and no overlap.
fn covers_every_byte(text: &str, heading: &str, len: usize) {
    let mut next = 0;
    for (off, size, field, _) in block(text, heading) {
        assert_eq!(off, next, "{field} at {off:#x}: gap or overlap before it");
        next = off + size;
    }
    assert_eq!(next, len, "the layout stops short of the file's end");
    assert!(text.trim_end().ends_with(&format!("{len} bytes in all")));
}

fn elf(target: &str) {
    let bin = hello(target);
    let data = std::fs::read(&bin).unwrap();
    let text = anatomy(&bin);
    covers_every_byte(&text, "the file in order", data.len());
    let entry = match data[4] {
        2 => u64::from_le_bytes(data[24..32].try_into().unwrap()),
        _ => u32::from_le_bytes(data[24..28].try_into().unwrap()).into(),
    };
    assert_eq!(value(&text, "ELF header", "e_entry"), entry);
    let machine = u16::from_le_bytes(data[18..20].try_into().unwrap());
    assert_eq!(value(&text, "ELF header", "e_machine"), machine.into());
    let named = match machine {
        62 => "EM_X86_64",
        3 => "EM_386",
        183 => "EM_AARCH64",
        other => panic!("a machine hello is not built for: {other}"),
    };
    let row = block(&text, "ELF header").into_iter().find(|r| r.2 == "e_machine").unwrap();
    assert!(row.3.ends_with(named), "e_machine {machine} is named {named}: {row:?}");
    let msg = block(&text, "the file in order").into_iter().find(|r| r.2 == "message").unwrap();
    assert_eq!(&data[msg.0..msg.0 + msg.1], MESSAGE, "the row called message holds the message");
    assert_eq!(msg.3, r#""Hello, world!\n""#);
}

#[test]
fn linux_x86_64_elf() {
    elf(LINUX_X86_64);
}

#[test]
fn linux_i386_elf() {
    elf(LINUX_I386);
}

#[test]
fn linux_aarch64_elf() {
    elf(LINUX_AARCH64);
}

/// A Mach-O image: the bytes after the load commands are covered exactly
/// once to the end of the page, the entry point shown is `__start`'s
/// address, and the message is where the table says.
fn macho(target: &str) {
    let bin = hello(target);
    let data = std::fs::read(&bin).unwrap();
    let text = anatomy(&bin);
    let header = if data[0] == 0xcf { 32 } else { 28 };
    let sizeofcmds = u32::from_le_bytes(data[20..24].try_into().unwrap()) as usize;
    let rest = block(&text, "the rest of the file");
    assert_eq!(rest[0].0, header + sizeofcmds, "the rest starts right after the load commands");
    covers_every_byte_from(&text, "the rest of the file", header + sizeofcmds, data.len());
    let start = if header == 32 {
        symbol_address::<object::macho::MachHeader64<object::Endianness>>(&data, "__start")
    } else {
        symbol_address::<object::macho::MachHeader32<object::Endianness>>(&data, "__start")
    };
    let entry_heading = "load command 3: LC_UNIXTHREAD";
    let pc = if header == 32 { "rip" } else { "eip" };
    assert_eq!(value(&text, entry_heading, pc), start);
    let msg = rest.iter().find(|r| r.2 == "__TEXT,__const").unwrap();
    assert_eq!(&data[msg.0..msg.0 + msg.1], MESSAGE);
}

/// A symbol's address from LC_SYMTAB, read with `object`'s load-command
/// API, which reads that one command and no segment. (It dates from
/// `object` 0.37, whose `object::File::parse` refused any segment with no
/// sections, such as every `__PAGEZERO`, because its empty section slice
/// is not aligned; 0.40, which the workspace now uses, fixed that.)
fn symbol_address<H: object::read::macho::MachHeader<Endian = object::Endianness>>(data: &[u8], name: &str) -> u64 {
    use object::read::macho::Nlist;
    let h = H::parse(data, 0).unwrap();
    let e = h.endian().unwrap();
    let mut cmds = h.load_commands(e, data, 0).unwrap();
    while let Some(c) = cmds.next().unwrap() {
        if let Some(symtab) = c.symtab().unwrap() {
            let symbols = symtab.symbols::<H, _>(e, data).unwrap();
            for sym in symbols.iter() {
                if sym.name(e, symbols.strings()) == Ok(name.as_bytes()) {
                    return sym.n_value(e).into();
                }
            }
        }
    }
    panic!("no {name} in LC_SYMTAB");
}

fn covers_every_byte_from(text: &str, heading: &str, from: usize, len: usize) {
    let mut next = from;
    for (off, size, field, _) in block(text, heading) {
        assert_eq!(off, next, "{field} at {off:#x}: gap or overlap before it");
        next = off + size;
    }
    assert_eq!(next, len, "the layout stops short of the file's end");
}

#[test]
fn xnu_x86_64_macho() {
    macho(XNU_X86_64);
}

#[test]
fn xnu_i386_macho() {
    macho(XNU_I386);
}

#[test]
fn refuses_what_it_cannot_read() {
    let junk = tempfile("junk");
    std::fs::write(&junk, b"\x7fELF\x02").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_anatomy")).arg(&junk).output().unwrap();
    let _ = std::fs::remove_file(&junk);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("anatomy: ") && err.contains("runs past the end"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

/// Every row of every block whose heading starts with `prefix`.
fn rows_under<'a>(text: &'a str, prefix: &str) -> Vec<(usize, usize, &'a str, &'a str)> {
    let headings: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("## ")).filter(|h| h.starts_with(prefix)).collect();
    assert!(!headings.is_empty(), "no heading starts with {prefix:?}");
    headings.into_iter().flat_map(|h| block(text, h)).collect()
}

/// Rows that tile [from, to) exactly: sorted, no gap, no overlap.
fn tiles(mut rows: Vec<(usize, usize, &str, &str)>, from: usize, to: usize, what: &str) {
    rows.sort_by_key(|r| r.0);
    let mut next = from;
    for (off, size, field, _) in rows {
        assert_eq!(off, next, "{what}: {field} at {off:#x}: gap or overlap before it");
        next = off + size;
    }
    assert_eq!(next, to, "{what}: the rows stop at {next:#x}, not {to:#x}");
}

/// The header and every load command, sections and in-command strings
/// included, are shown field by field with nothing left out.
fn header_bytes_all_shown(target: &str) {
    let data = std::fs::read(hello(target)).unwrap();
    let text = anatomy(&hello(target));
    let header = if data[0] == 0xcf { 32 } else { 28 };
    let sizeofcmds = u32::from_le_bytes(data[20..24].try_into().unwrap()) as usize;
    let mut rows = rows_under(&text, "mach_header");
    rows.extend(rows_under(&text, "load command"));
    rows.extend(rows_under(&text, "section"));
    tiles(rows, 0, header + sizeofcmds, "header and load commands");
}

#[test]
fn xnu_x86_64_header_bytes_all_shown() {
    header_bytes_all_shown(XNU_X86_64);
}

#[test]
fn xnu_i386_header_bytes_all_shown() {
    header_bytes_all_shown(XNU_I386);
}

#[test]
fn xnu_arm64_header_bytes_all_shown() {
    header_bytes_all_shown(XNU_ARM64);
}

/// The arm64 image: the rest of the file is covered to its last byte,
/// LC_MAIN's entryoff is `__start`, the message is where the table says,
/// and the code signature is shown field by field over exactly the bytes
/// LC_CODE_SIGNATURE names, with each stored hash shown as stored: equal
/// to what coreutils' sha256sum computes for that page.
#[test]
fn xnu_arm64_macho() {
    let bin = hello(XNU_ARM64);
    let data = std::fs::read(&bin).unwrap();
    let text = anatomy(&bin);
    let sizeofcmds = u32::from_le_bytes(data[20..24].try_into().unwrap()) as usize;
    covers_every_byte_from(&text, "the rest of the file", 32 + sizeofcmds, data.len());
    assert!(text.trim_end().ends_with(&format!("{} bytes in all", data.len())));

    let start = symbol_address::<object::macho::MachHeader64<object::Endianness>>(&data, "__start");
    let main = text.lines().filter_map(|l| l.strip_prefix("## ")).find(|h| h.contains(": LC_MAIN (")).unwrap();
    let text_seg = text.lines().filter_map(|l| l.strip_prefix("## ")).find(|h| h.starts_with("load command 1: ")).unwrap();
    assert_eq!(value(&text, text_seg, "vmaddr") + value(&text, main, "entryoff"), start);

    let rest = block(&text, "the rest of the file");
    let msg = rest.iter().find(|r| r.2 == "__TEXT,__const").unwrap();
    assert_eq!(&data[msg.0..msg.0 + msg.1], MESSAGE);

    let sig = text.lines().filter_map(|l| l.strip_prefix("## ")).find(|h| h.contains(": LC_CODE_SIGNATURE (")).unwrap();
    let (dataoff, datasize) = (value(&text, sig, "dataoff") as usize, value(&text, sig, "datasize") as usize);
    assert_eq!(dataoff + datasize, data.len(), "the signature ends the file");
    let rows = rows_under(&text, "code signature:");
    tiles(rows.clone(), dataoff, dataoff + datasize, "code signature");

    let cd = text.lines().filter_map(|l| l.strip_prefix("## ")).find(|h| h.starts_with("code signature: CodeDirectory")).unwrap();
    assert_eq!(value(&text, cd, "codeLimit") as usize, dataoff);
    assert_eq!(value(&text, cd, "flags"), 0x20002);
    let slots: Vec<_> = rows.iter().filter(|r| r.2.starts_with("hash slot ")).collect();
    assert_eq!(slots.len() as u64, value(&text, cd, "nCodeSlots"));
    assert_eq!(slots.len(), dataoff.div_ceil(4096));
    let sha256sum = tool("sha256sum", "apt-get install coreutils");
    for (i, (off, size, field, rest)) in slots.into_iter().enumerate() {
        assert_eq!(*field, format!("hash slot {i}"));
        let shown = rest.split_whitespace().next().unwrap();
        let stored: String = data[*off..off + size].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(shown, stored, "slot {i} shown as stored");
        let page = tempfile("page");
        std::fs::write(&page, &data[i * 4096..((i + 1) * 4096).min(dataoff)]).unwrap();
        let out = Command::new(&sha256sum).arg(&page).output().unwrap();
        let _ = std::fs::remove_file(&page);
        let digest = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string();
        assert_eq!(shown, digest, "slot {i}: the stored hash is the page's SHA-256");
    }
}

/// Every program header's fields as anatomy prints them, against the same
/// fields read by the `object` crate: a second reader, so that a field
/// shown wrong (its value, or the permissions its meaning spells out) fails
/// here and not only in the guide's snapshot.
fn elf_agrees_with_object<E: object::read::elf::FileHeader<Endian = object::Endianness>>(target: &str) {
    use object::read::elf::ProgramHeader;
    let bin = hello(target);
    let data = std::fs::read(&bin).unwrap();
    let text = anatomy(&bin);
    let h = E::parse(&*data).unwrap();
    let e = h.endian().unwrap();
    assert_eq!(value(&text, "ELF header", "e_phoff"), h.e_phoff(e).into());
    assert_eq!(value(&text, "ELF header", "e_phnum"), u64::from(h.e_phnum(e)));
    for (i, ph) in h.program_headers(e, &*data).unwrap().iter().enumerate() {
        let heading = format!("program header {i}");
        for (field, want) in [
            ("p_type", u64::from(ph.p_type(e).0)),
            ("p_flags", u64::from(ph.p_flags(e).0)),
            ("p_offset", ph.p_offset(e).into()),
            ("p_vaddr", ph.p_vaddr(e).into()),
            ("p_filesz", ph.p_filesz(e).into()),
            ("p_memsz", ph.p_memsz(e).into()),
        ] {
            assert_eq!(value(&text, &heading, field), want, "{target} {heading} {field}");
        }
        if ph.p_type(e) == object::elf::PT_LOAD {
            let f = ph.p_flags(e).0;
            let rwx: String = [(object::elf::PF_R.0, 'R'), (object::elf::PF_W.0, 'W'), (object::elf::PF_X.0, 'X')]
                .iter()
                .map(|&(bit, c)| if f & bit != 0 { c } else { '-' })
                .collect();
            let row = block(&text, &heading).into_iter().find(|r| r.2 == "p_flags").unwrap();
            assert_eq!(row.3.split_whitespace().nth(1), Some(format!("{rwx}:").as_str()), "{target} {heading}: p_flags {f:#x} is {rwx}: {row:?}");
        }
    }
}

#[test]
fn elf_fields_agree_with_the_object_crate() {
    elf_agrees_with_object::<object::elf::FileHeader64<object::Endianness>>(LINUX_X86_64);
    elf_agrees_with_object::<object::elf::FileHeader32<object::Endianness>>(LINUX_I386);
    elf_agrees_with_object::<object::elf::FileHeader64<object::Endianness>>(LINUX_AARCH64);
}

/// Every load command's segment as anatomy prints it, against `object`.
fn macho_agrees_with_object<H: object::read::macho::MachHeader<Endian = object::Endianness>>(target: &str) {
    let bin = hello(target);
    let data = std::fs::read(&bin).unwrap();
    let text = anatomy(&bin);
    let h = H::parse(&*data, 0).unwrap();
    let e = h.endian().unwrap();
    assert_eq!(value(&text, "mach_header", "ncmds"), u64::from(h.ncmds(e)));
    assert_eq!(value(&text, "mach_header", "sizeofcmds"), u64::from(h.sizeofcmds(e)));
    assert_eq!(value(&text, "mach_header", "flags"), u64::from(h.flags(e).0));
    let mut cmds = h.load_commands(e, &*data, 0).unwrap();
    let mut index = 0;
    let mut segments = 0;
    while let Some(c) = cmds.next().unwrap() {
        if let Some((seg, _)) = c.segment_32().unwrap().map(|(s, d)| (Seg::from32(s, e), d)).or(c.segment_64().unwrap().map(|(s, d)| (Seg::from64(s, e), d))) {
            let heading = block_heading(&text, index);
            for (field, want) in [("vmaddr", seg.vmaddr), ("vmsize", seg.vmsize), ("fileoff", seg.fileoff), ("filesize", seg.filesize), ("maxprot", seg.maxprot.into()), ("initprot", seg.initprot.into())] {
                assert_eq!(value(&text, &heading, field), want, "{target} {heading} {field}");
            }
            for (field, prot) in [("maxprot", seg.maxprot), ("initprot", seg.initprot)] {
                let rwx: String = [(1, 'r'), (2, 'w'), (4, 'x')].iter().map(|&(b, c)| if prot & b != 0 { c } else { '-' }).collect();
                let row = block(&text, &heading).into_iter().find(|r| r.2 == field).unwrap();
                assert_eq!(row.3.split_whitespace().nth(1), Some(format!("{rwx}:").as_str()), "{target} {heading} {field} {prot:#x} is {rwx}: {row:?}");
            }
            segments += 1;
        }
        index += 1;
    }
    assert!(segments >= 2, "{target}: {segments} segments");
}

/// A segment's fields, whatever the width.
struct Seg {
    vmaddr: u64,
    vmsize: u64,
    fileoff: u64,
    filesize: u64,
    maxprot: u32,
    initprot: u32,
}

impl Seg {
    fn from32(s: &object::macho::SegmentCommand32<object::Endianness>, e: object::Endianness) -> Seg {
        Seg { vmaddr: s.vmaddr.get(e).into(), vmsize: s.vmsize.get(e).into(), fileoff: s.fileoff.get(e).into(), filesize: s.filesize.get(e).into(), maxprot: s.maxprot.get(e).0, initprot: s.initprot.get(e).0 }
    }
    fn from64(s: &object::macho::SegmentCommand64<object::Endianness>, e: object::Endianness) -> Seg {
        Seg { vmaddr: s.vmaddr.get(e), vmsize: s.vmsize.get(e), fileoff: s.fileoff.get(e), filesize: s.filesize.get(e), maxprot: s.maxprot.get(e).0, initprot: s.initprot.get(e).0 }
    }
}

/// The heading of load command `index`'s block.
fn block_heading(text: &str, index: usize) -> String {
    let prefix = format!("## load command {index}: ");
    let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no load command {index}"));
    line.trim_start_matches("## ").split(" (").next().unwrap().to_string()
}

#[test]
fn macho_fields_agree_with_the_object_crate() {
    macho_agrees_with_object::<object::macho::MachHeader64<object::Endianness>>(XNU_X86_64);
    macho_agrees_with_object::<object::macho::MachHeader32<object::Endianness>>(XNU_I386);
    macho_agrees_with_object::<object::macho::MachHeader64<object::Endianness>>(XNU_ARM64);
}
