//! A Linux ELF executable, field by field, with what the kernel's loader
//! (fs/binfmt_elf.c, `load_elf_binary`) does with each.
//!
//! Field offsets come from `object`'s typed structures (`offset_of!`).

use crate::table::{Kind, R, Table, at, f, hex, quoted};
use object::LittleEndian as LE;
use object::elf::*;
use std::mem::{offset_of, size_of};

/// The bytes hello writes: shown as the message where a section holds them.
const MESSAGE: &[u8] = b"Hello, world!\n";

pub fn explain(data: &[u8]) -> R<Table> {
    match data.get(4).copied().map(FileClass) {
        Some(ELFCLASS64) => explain64(data),
        Some(ELFCLASS32) => explain32(data),
        _ => Err("not an ELF file of a known class".into()),
    }
}

/// e_machine: the instruction set, which `load_elf_binary` checks against
/// the kernel's own (`elf_check_arch`) before anything else.
fn machine(m: Machine) -> &'static str {
    match m {
        EM_X86_64 => "EM_X86_64",
        EM_386 => "EM_386",
        EM_AARCH64 => "EM_AARCH64",
        _ => "another machine",
    }
}

fn phdr_type(t: ProgramType) -> &'static str {
    match t {
        PT_LOAD => "PT_LOAD: map this range of the file into memory",
        PT_GNU_STACK => "PT_GNU_STACK: its flags set the stack's permissions; without it i386 gets READ_IMPLIES_EXEC",
        PT_INTERP => "PT_INTERP: needs a dynamic loader",
        PT_DYNAMIC => "PT_DYNAMIC: dynamic linking information",
        _ => "another segment type",
    }
}

fn pflags(f: ProgramFlags) -> String {
    let r = if f.intersects(PF_R) { 'R' } else { '-' };
    let w = if f.intersects(PF_W) { 'W' } else { '-' };
    let x = if f.intersects(PF_X) { 'X' } else { '-' };
    format!("{r}{w}{x}")
}

fn shdr_type(t: SectionType) -> &'static str {
    match t {
        SHT_NULL => "SHT_NULL: the reserved first entry",
        SHT_PROGBITS => "SHT_PROGBITS: bytes from the file",
        SHT_STRTAB => "SHT_STRTAB: a string table",
        SHT_SYMTAB => "SHT_SYMTAB: a symbol table",
        _ => "another section type",
    }
}

struct Region {
    offset: usize,
    size: usize,
    name: String,
    /// What the bytes are; a header kind for the headers as a whole,
    /// shown field by field above.
    kind: Kind,
}

macro_rules! explainer {
    ($fn:ident, $Hdr:ident, $Phdr:ident, $Shdr:ident, $bits:expr) => {
        fn $fn(data: &[u8]) -> R<Table> {
            let mut t = Table::default();
            let h: &$Hdr<LE> = at(data, 0, "the ELF header")?;
            t.heading(Kind::Header, &format!("ELF header ({} bytes at 0x0)", size_of::<$Hdr<LE>>()));
            let id = &h.e_ident;
            let base = offset_of!($Hdr<LE>, e_ident);
            t.field(base + offset_of!(Ident, magic), 4, "ei_magic", hex(&id.magic), "\\x7fELF");
            t.field(base + offset_of!(Ident, class), 1, "ei_class", id.class.0, concat!("ELFCLASS", $bits));
            t.field(base + offset_of!(Ident, data), 1, "ei_data", id.data.0, "ELFDATA2LSB: little-endian");
            t.field(base + offset_of!(Ident, version), 1, "ei_version", id.version.0, "EV_CURRENT");
            t.field(base + offset_of!(Ident, os_abi), 1, "ei_osabi", id.os_abi.0, "ELFOSABI_NONE (System V); Linux ignores it");
            t.field(base + offset_of!(Ident, abi_version), 1, "ei_abiversion", id.abi_version, "");
            t.field(base + offset_of!(Ident, padding), 7, "ei_pad", "0", "");
            f!(t, 0, $Hdr<LE>, h, e_type, if h.e_type.get(LE) == ET_EXEC { "ET_EXEC: loaded at its own addresses, no relocation" } else { "not ET_EXEC" });
            f!(t, 0, $Hdr<LE>, h, e_machine, machine(h.e_machine.get(LE)));
            f!(t, 0, $Hdr<LE>, h, e_version, "EV_CURRENT");
            f!(t, 0, $Hdr<LE>, h, e_entry, "the entry point: first instruction of _start");
            f!(t, 0, $Hdr<LE>, h, e_phoff, "program headers: what load_elf_binary maps");
            f!(t, 0, $Hdr<LE>, h, e_shoff, "section headers: for tools only, the kernel never reads them");
            f!(t, 0, $Hdr<LE>, h, e_flags, "");
            f!(t, 0, $Hdr<LE>, h, e_ehsize, "this header's size");
            f!(t, 0, $Hdr<LE>, h, e_phentsize, "one program header's size");
            f!(t, 0, $Hdr<LE>, h, e_phnum, "program headers");
            f!(t, 0, $Hdr<LE>, h, e_shentsize, "one section header's size");
            f!(t, 0, $Hdr<LE>, h, e_shnum, "section headers");
            f!(t, 0, $Hdr<LE>, h, e_shstrndx, "the section holding section names");

            let phoff = h.e_phoff.get(LE) as usize;
            for i in 0..h.e_phnum.get(LE) as usize {
                let o = phoff.saturating_add(i.saturating_mul(size_of::<$Phdr<LE>>()));
                let p: &$Phdr<LE> = at(data, o, "a program header")?;
                t.heading(Kind::ProgramHeader, &format!("program header {i} ({} bytes at {o:#x})", size_of::<$Phdr<LE>>()));
                f!(t, o, $Phdr<LE>, p, p_type, phdr_type(p.p_type.get(LE)));
                f!(t, o, $Phdr<LE>, p, p_flags, pflags(p.p_flags.get(LE)) + ": the mapping's permissions");
                f!(t, o, $Phdr<LE>, p, p_offset, "file offset of the range");
                f!(t, o, $Phdr<LE>, p, p_vaddr, "its address in memory");
                f!(t, o, $Phdr<LE>, p, p_paddr, "unused on Linux");
                f!(t, o, $Phdr<LE>, p, p_filesz, "bytes from the file");
                f!(t, o, $Phdr<LE>, p, p_memsz, "bytes of memory (more would be zero-filled)");
                f!(t, o, $Phdr<LE>, p, p_align, "offset and address agree modulo this");
            }

            let mut regions = Vec::new();
            let shoff = h.e_shoff.get(LE) as usize;
            let shnum = h.e_shnum.get(LE) as usize;
            let shdrs: Vec<&$Shdr<LE>> = (0..shnum)
                .map(|i| at(data, shoff.saturating_add(i.saturating_mul(size_of::<$Shdr<LE>>())), "a section header"))
                .collect::<R<_>>()?;
            let names = shdrs
                .get(h.e_shstrndx.get(LE).0 as usize)
                .and_then(|s| data.get(s.sh_offset.get(LE) as usize..s.sh_offset.get(LE).saturating_add(s.sh_size.get(LE)) as usize))
                .unwrap_or_default();
            let name_of = |n: u32| -> String {
                let s = names.get(n as usize..).and_then(|s| s.split(|&b| b == 0).next()).unwrap_or_default();
                String::from_utf8_lossy(s).into_owned()
            };
            for (i, s) in shdrs.iter().enumerate() {
                let o = shoff.saturating_add(i.saturating_mul(size_of::<$Shdr<LE>>()));
                let name = name_of(s.sh_name.get(LE));
                t.heading(Kind::SectionHeader, &format!("section header {i}: {name:?} ({} bytes at {o:#x})", size_of::<$Shdr<LE>>()));
                f!(t, o, $Shdr<LE>, s, sh_name, format!("offset of {name:?} in the section-name table"));
                f!(t, o, $Shdr<LE>, s, sh_type, shdr_type(s.sh_type.get(LE)));
                // ELF32's sh_flags is 32 bits wide, ELF64's 64: read through
                // `object`'s header trait, which widens both to one type.
                let flags = object::read::elf::SectionHeader::sh_flags(*s, LE);
                f!(t, o, $Shdr<LE>, s, sh_flags = flags.0, if flags.intersects(SHF_EXECINSTR) { "SHF_ALLOC|SHF_EXECINSTR: in memory, code" } else { "" });
                f!(t, o, $Shdr<LE>, s, sh_addr, "");
                f!(t, o, $Shdr<LE>, s, sh_offset, "");
                f!(t, o, $Shdr<LE>, s, sh_size, "");
                f!(t, o, $Shdr<LE>, s, sh_link, "");
                f!(t, o, $Shdr<LE>, s, sh_info, "");
                f!(t, o, $Shdr<LE>, s, sh_addralign, "");
                f!(t, o, $Shdr<LE>, s, sh_entsize, "");
                if s.sh_type.get(LE) != SHT_NULL && s.sh_size.get(LE) != 0 {
                    let kind = match s.sh_type.get(LE) {
                        SHT_STRTAB => Kind::Strings,
                        SHT_SYMTAB => Kind::Symbols,
                        _ if flags.intersects(SHF_EXECINSTR) => Kind::Code,
                        _ => Kind::Data,
                    };
                    regions.push(Region {
                        offset: s.sh_offset.get(LE) as usize,
                        size: s.sh_size.get(LE) as usize,
                        name,
                        kind,
                    });
                }
            }
            regions.push(Region { offset: 0, size: size_of::<$Hdr<LE>>(), name: "ELF header".into(), kind: Kind::Header });
            regions.push(Region {
                offset: phoff,
                size: (h.e_phnum.get(LE) as usize).saturating_mul(size_of::<$Phdr<LE>>()),
                name: "program headers".into(),
                kind: Kind::ProgramHeader,
            });
            regions.push(Region {
                offset: shoff,
                size: shnum.saturating_mul(size_of::<$Shdr<LE>>()),
                name: "section headers".into(),
                kind: Kind::SectionHeader,
            });
            layout(&mut t, data, regions);
            Ok(t)
        }
    };
}

explainer!(explain64, FileHeader64, ProgramHeader64, SectionHeader64, "64");
explainer!(explain32, FileHeader32, ProgramHeader32, SectionHeader32, "32");

/// The whole file in order: headers, code, message, names, padding.
fn layout(t: &mut Table, data: &[u8], mut regions: Vec<Region>) {
    regions.sort_by_key(|r| r.offset);
    // No fields of its own: each region says what it holds.
    t.heading(Kind::Unknown, "the file in order");
    let mut off = 0;
    for r in regions {
        gap(t, data, off, r.offset);
        let bytes = data.get(r.offset..r.offset.saturating_add(r.size)).unwrap_or_default();
        let header = matches!(r.kind, Kind::Header | Kind::ProgramHeader | Kind::SectionHeader);
        match bytes.windows(MESSAGE.len()).position(|w| w == MESSAGE) {
            Some(m) if !header => {
                t.region(Kind::Code, r.offset, m, &r.name, &format!("machine code: {}", hex(&bytes[..m])));
                t.region(Kind::Data, r.offset + m, MESSAGE.len(), "message", &quoted(MESSAGE));
            }
            _ if header => t.summary(r.offset, r.size, &r.name, "(fields above)"),
            _ => t.region(r.kind, r.offset, r.size, &r.name, &quoted(bytes)),
        }
        off = off.max(r.offset.saturating_add(r.size));
    }
    gap(t, data, off, data.len());
    t.note(&format!("\n{} bytes in all", data.len()));
}

fn gap(t: &mut Table, data: &[u8], from: usize, to: usize) {
    if to <= from {
        return;
    }
    let bytes = data.get(from..to).unwrap_or_default();
    if bytes.iter().all(|&b| b == 0) {
        t.region(Kind::Padding, from, to - from, "padding", "zeros: aligns the section headers");
    } else {
        t.region(Kind::Unknown, from, to - from, "unlisted", &hex(bytes));
    }
}
