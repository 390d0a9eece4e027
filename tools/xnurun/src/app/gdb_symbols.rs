//! The image's symbols as a file gdb reads. Debian's gdb-multiarch has no
//! Mach-O reader, so xnurun writes the symbols into a small ELF file (no
//! code or data: one SHT_NOBITS section per segment, where the segment
//! lies, and a symbol table) and offers it to gdb as the program's file
//! (qXfer:exec-file), which gdb then reads through the connection
//! (vFile): `target remote` alone loads it, from any machine.

use crate::image::Image;
use crate::xnu::Arch;
use std::path::PathBuf;

/// The symbol file: its bytes, and where they were also written (for a
/// gdb that reads files from its own machine rather than through the
/// connection), removed when dropped.
pub struct SymbolFile {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

impl Drop for SymbolFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes the symbol file for `image`, moved `slide` from its vmaddrs,
/// with `symbols` (`(name, vmaddr)`); `None` where it cannot be written.
pub fn write(image: &Image, slide: u64, symbols: &[(String, u64)]) -> Option<SymbolFile> {
    let bytes = elf(image, slide, symbols);
    let path = std::env::temp_dir().join(format!("xnurun-{}-symbols.elf", std::process::id()));
    std::fs::write(&path, &bytes).ok()?;
    Some(SymbolFile { path, bytes })
}

/// The ELF file: header, string and symbol tables, section headers.
/// ELFCLASS64 for x86_64 and arm64, ELFCLASS32 for i386 (gdb wants the
/// file's class and machine to match the target's).
fn elf(image: &Image, slide: u64, symbols: &[(String, u64)]) -> Vec<u8> {
    let wide = image.arch != Arch::I386;
    let machine: u16 = match image.arch {
        Arch::X86_64 => 62, // EM_X86_64
        Arch::I386 => 3,    // EM_386
        Arch::Arm64 => 183, // EM_AARCH64
    };
    let word = |v: &mut Vec<u8>, x: u64| if wide { v.extend_from_slice(&x.to_le_bytes()) } else { v.extend_from_slice(&(x as u32).to_le_bytes()) };
    let page = image.page();
    // Section 0 is the null one; then the segments, then the tables.
    let segs: Vec<(String, u64, u64, u32)> = image.segments.iter().map(|s| {
        let (a, b) = s.vm_range(page);
        (s.name.clone(), a + slide, b - a, s.initprot)
    }).collect();
    let mut shstr = vec![0u8];
    let name = |n: &str, t: &mut Vec<u8>| {
        let at = t.len() as u32;
        t.extend_from_slice(n.as_bytes());
        t.push(0);
        at
    };
    let seg_names: Vec<u32> = segs.iter().map(|s| name(&s.0, &mut shstr)).collect();
    let (symtab_name, strtab_name, shstrtab_name) = (name(".symtab", &mut shstr), name(".strtab", &mut shstr), name(".shstrtab", &mut shstr));
    let mut strtab = vec![0u8];
    let mut symtab = vec![0u8; if wide { 24 } else { 16 }];
    for (n, addr) in symbols {
        let value = addr + slide;
        let Some(i) = segs.iter().position(|s| value >= s.1 && value < s.1 + s.2) else { continue };
        let at = name(&without_hash(n), &mut strtab);
        // STB_GLOBAL; STT_FUNC in executable segments, else STT_OBJECT.
        let info = 0x10 | if segs[i].3 & 4 != 0 { 2 } else { 1 };
        let shndx = (i + 1) as u16;
        symtab.extend_from_slice(&at.to_le_bytes());
        if wide {
            symtab.extend_from_slice(&[info, 0]);
            symtab.extend_from_slice(&shndx.to_le_bytes());
            symtab.extend_from_slice(&value.to_le_bytes());
            symtab.extend_from_slice(&0u64.to_le_bytes());
        } else {
            symtab.extend_from_slice(&(value as u32).to_le_bytes());
            symtab.extend_from_slice(&0u32.to_le_bytes());
            symtab.extend_from_slice(&[info, 0]);
            symtab.extend_from_slice(&shndx.to_le_bytes());
        }
    }
    let ehsize: u64 = if wide { 64 } else { 52 };
    let (symtab_at, strtab_at) = (ehsize, ehsize + symtab.len() as u64);
    let shstr_at = strtab_at + strtab.len() as u64;
    let shoff = (shstr_at + shstr.len() as u64 + 7) & !7;
    let nsec = segs.len() + 4;
    let symtab_index = segs.len() + 1;
    let mut out = Vec::new();
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', if wide { 2 } else { 1 }, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out.extend_from_slice(&machine.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    word(&mut out, image.entry + slide);
    word(&mut out, 0);
    word(&mut out, shoff);
    out.extend_from_slice(&0u32.to_le_bytes());
    for h in [ehsize as u16, 0, 0, if wide { 64 } else { 40 }, nsec as u16, (nsec - 1) as u16] {
        out.extend_from_slice(&h.to_le_bytes());
    }
    out.extend_from_slice(&symtab);
    out.extend_from_slice(&strtab);
    out.extend_from_slice(&shstr);
    out.resize(shoff as usize, 0);
    // name, type, flags, addr, offset, size, link, info, align, entsize
    let mut section = |n: u32, ty: u32, flags: u64, addr: u64, off: u64, size: u64, link: u32, info: u32, entsize: u64| {
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&ty.to_le_bytes());
        word(&mut out, flags);
        word(&mut out, addr);
        word(&mut out, off);
        word(&mut out, size);
        out.extend_from_slice(&link.to_le_bytes());
        out.extend_from_slice(&info.to_le_bytes());
        word(&mut out, 1);
        word(&mut out, entsize);
    };
    section(0, 0, 0, 0, 0, 0, 0, 0, 0);
    for (s, n) in segs.iter().zip(&seg_names) {
        // SHF_ALLOC, SHF_WRITE and SHF_EXECINSTR from the protection.
        let flags = 2 | if s.3 & 2 != 0 { 1 } else { 0 } | if s.3 & 4 != 0 { 4 } else { 0 };
        section(*n, 8, flags, s.1, 0, s.2, 0, 0, 0); // SHT_NOBITS
    }
    let strtab_index = (symtab_index + 1) as u32;
    section(symtab_name, 2, 0, 0, symtab_at, symtab.len() as u64, strtab_index, 1, if wide { 24 } else { 16 });
    section(strtab_name, 3, 0, 0, strtab_at, strtab.len() as u64, 0, 0, 0);
    section(shstrtab_name, 3, 0, 0, shstr_at, shstr.len() as u64, 0, 0, 0);
    out
}

/// A Rust symbol without the hash its legacy mangling ends with
/// (`_ZN4args4main17h0123456789abcdefE` is `args::main::h0123...` to gdb's
/// demangler): `_ZN4args4mainE`, which gdb calls `args::main`, so that
/// `break args::main` finds it.
fn without_hash(name: &str) -> String {
    let b = name.as_bytes();
    let n = b.len();
    if name.starts_with("_ZN") && n > 3 + 20 && b[n - 1] == b'E' && &b[n - 20..n - 17] == b"17h" && b[n - 17..n - 1].iter().all(u8::is_ascii_hexdigit) {
        return format!("{}E", &name[..n - 20]);
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_hashes_go() {
        assert_eq!(without_hash("_ZN4args4main17hcd0d7638073b5fadE"), "_ZN4args4mainE");
        assert_eq!(without_hash("_ZN4args4main17hcd0d7638073b5faXE"), "_ZN4args4main17hcd0d7638073b5faXE");
        assert_eq!(without_hash("_start"), "_start");
    }
}
