//! A static Mach-O image, field by field, with what XNU's exec path does
//! with each (bsd/kern/mach_loader.c: `load_machfile`, `parse_machfile`,
//! `load_segment`, `load_unixthread`).
//!
//! Field offsets come from `object`'s typed structures (`offset_of!`), so
//! they are the structures' own, not numbers typed in here.

use crate::table::{R, Table, at, f, hex, quoted};
use object::LittleEndian as LE;
use object::macho::*;
use std::mem::{offset_of, size_of};

fn name16(bytes: &[u8; 16]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(16);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn cpu(cputype: u32) -> &'static str {
    match cputype {
        CPU_TYPE_X86_64 => "CPU_TYPE_X86_64: static images are allowed for this type only in current XNU (parse_machfile)",
        CPU_TYPE_X86 => "CPU_TYPE_I386: ran on macOS up to 10.14 (no 32-bit exec since 10.15)",
        _ => "not an Intel CPU type",
    }
}

fn filetype(t: u32) -> &'static str {
    match t {
        MH_EXECUTE => "MH_EXECUTE: a main program, the only type execve accepts",
        MH_OBJECT => "MH_OBJECT: a relocatable object, not runnable",
        _ => "not an executable",
    }
}

fn flags(f: u32) -> String {
    let mut names = Vec::new();
    for (bit, name) in [
        (MH_NOUNDEFS, "MH_NOUNDEFS"),
        (MH_DYLDLINK, "MH_DYLDLINK"),
        (MH_PIE, "MH_PIE"),
        (MH_TWOLEVEL, "MH_TWOLEVEL"),
    ] {
        if f & bit != 0 {
            names.push(name);
        }
    }
    let why = if f & MH_DYLDLINK == 0 {
        "no MH_DYLDLINK: the kernel maps no dyld and jumps straight to the entry"
    } else {
        "MH_DYLDLINK: needs dyld"
    };
    format!("{}; {why}", if names.is_empty() { "none".into() } else { names.join("|") })
}

fn prot(p: u32) -> String {
    let r = if p & 1 != 0 { 'r' } else { '-' };
    let w = if p & 2 != 0 { 'w' } else { '-' };
    let x = if p & 4 != 0 { 'x' } else { '-' };
    format!("{r}{w}{x}")
}

fn cmd_name(cmd: u32) -> &'static str {
    match cmd {
        LC_SEGMENT => "LC_SEGMENT",
        LC_SEGMENT_64 => "LC_SEGMENT_64",
        LC_SYMTAB => "LC_SYMTAB",
        LC_UNIXTHREAD => "LC_UNIXTHREAD",
        LC_MAIN => "LC_MAIN",
        LC_LOAD_DYLINKER => "LC_LOAD_DYLINKER",
        LC_LOAD_DYLIB => "LC_LOAD_DYLIB",
        LC_UUID => "LC_UUID",
        LC_BUILD_VERSION => "LC_BUILD_VERSION",
        _ => "another load command",
    }
}

/// Register names of `x86_THREAD_STATE64` (flavor 4, 42 words) and
/// `x86_THREAD_STATE32` (flavor 1, 16 words), in their order in
/// osfmk/mach/i386/_structs.h.
const REGS64: [&str; 21] = [
    "rax", "rbx", "rcx", "rdx", "rdi", "rsi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12",
    "r13", "r14", "r15", "rip", "rflags", "cs", "fs", "gs",
];
const REGS32: [&str; 16] = [
    "eax", "ebx", "ecx", "edx", "edi", "esi", "ebp", "esp", "ss", "eflags", "eip", "cs", "ds",
    "es", "fs", "gs",
];

/// What each region of the file holds, for the part after the headers.
struct Region {
    offset: usize,
    size: usize,
    name: String,
    what: String,
}

pub fn explain(data: &[u8]) -> R<String> {
    let magic = data.get(..4).ok_or("the file is shorter than a Mach-O magic number")?;
    match u32::from_le_bytes(magic.try_into().unwrap_or_default()) {
        MH_MAGIC_64 => explain64(data),
        MH_MAGIC => explain32(data),
        _ => Err("not a little-endian thin Mach-O file".into()),
    }
}

macro_rules! explainer {
    ($fn:ident, $Hdr:ident, $segment:ident, $Nlist:ident, $LC_SEG:expr, $word:ty, $regs:expr, $magic_note:expr) => {
        fn $fn(data: &[u8]) -> R<String> {
            let mut t = Table::default();
            let mut regions: Vec<Region> = Vec::new();
            let h: &$Hdr<LE> = at(data, 0, "the Mach-O header")?;
            t.heading(&format!("mach_header ({} bytes at 0x0)", size_of::<$Hdr<LE>>()));
            // `object` stores the magic big-endian so that it can tell the
            // byte order from it; shown here as the little-endian word it is.
            let magic = u32::from_le_bytes(h.magic.get(object::BigEndian).to_be_bytes());
            t.field(offset_of!($Hdr<LE>, magic), 4, "magic", magic, $magic_note);
            f!(t, 0, $Hdr<LE>, h, cputype, cpu(h.cputype.get(LE)));
            f!(t, 0, $Hdr<LE>, h, cpusubtype, "CPU_SUBTYPE_*_ALL: any model of that CPU");
            f!(t, 0, $Hdr<LE>, h, filetype, filetype(h.filetype.get(LE)));
            f!(t, 0, $Hdr<LE>, h, ncmds, "load commands that follow the header");
            f!(t, 0, $Hdr<LE>, h, sizeofcmds, "their total size; parse_machfile reads header + this much");
            f!(t, 0, $Hdr<LE>, h, flags, flags(h.flags.get(LE)));

            let mut off = size_of::<$Hdr<LE>>();
            for i in 0..h.ncmds.get(LE) {
                let lc: &LoadCommand<LE> = at(data, off, "a load command")?;
                let cmd = lc.cmd.get(LE);
                let size = lc.cmdsize.get(LE) as usize;
                if size < size_of::<LoadCommand<LE>>() {
                    return Err(format!("load command {i} at {off:#x} has cmdsize {size}"));
                }
                t.heading(&format!("load command {i}: {} ({size} bytes at {off:#x})", cmd_name(cmd)));
                f!(t, off, LoadCommand<LE>, lc, cmd, cmd_name(cmd));
                f!(t, off, LoadCommand<LE>, lc, cmdsize, "bytes in this command, sections included");
                match cmd {
                    c if c == $LC_SEG => $segment(&mut t, &mut regions, data, off)?,
                    LC_SYMTAB => symtab::<$Nlist<LE>>(&mut t, &mut regions, data, off)?,
                    LC_UNIXTHREAD => thread::<$word>(&mut t, data, off, &$regs)?,
                    _ => t.note("   (not part of a static image: shown as raw bytes only)"),
                }
                off += size;
            }
            rest(&mut t, data, off, regions);
            Ok(t.finish())
        }
    };
}

explainer!(explain64, MachHeader64, segment64, Nlist64, LC_SEGMENT_64, u64, REGS64,
    "MH_MAGIC_64: a 64-bit Mach-O, little-endian");
explainer!(explain32, MachHeader32, segment32, Nlist32, LC_SEGMENT, u32, REGS32,
    "MH_MAGIC: a 32-bit Mach-O, little-endian");

/// A segment command and its section headers, for either width.
macro_rules! segment_fn {
    ($fn:ident, $Seg:ident, $Sect:ident) => {
        fn $fn(t: &mut Table, regions: &mut Vec<Region>, data: &[u8], off: usize) -> R<()> {
            let s: &$Seg<LE> = at(data, off, "a segment command")?;
            let name = name16(&s.segname);
            let zero = name == "__PAGEZERO";
            t.field(off + offset_of!($Seg<LE>, segname), 16, "segname", name.as_str(), match name.as_str() {
                "__PAGEZERO" => "the hard page zero: catches null pointers; load_machfile insists on one for 64-bit",
                "__TEXT" => "code and read-only data; maps file offset 0 (the headers too), r-x",
                _ => "a segment",
            });
            f!(t, off, $Seg<LE>, s, vmaddr, if zero { "address 0" } else { "where load_segment maps it" });
            f!(t, off, $Seg<LE>, s, vmsize, if zero { "the whole low range, mapped with no access" } else { "bytes of address space" });
            f!(t, off, $Seg<LE>, s, fileoff, "file offset of its first byte: page-aligned, inside the file");
            f!(t, off, $Seg<LE>, s, filesize, if zero { "nothing from the file" } else { "bytes mapped from the file" });
            f!(t, off, $Seg<LE>, s, maxprot, prot(s.maxprot.get(LE)) + ": the most its pages may ever allow");
            f!(t, off, $Seg<LE>, s, initprot, prot(s.initprot.get(LE)) + ": what they allow at exec");
            f!(t, off, $Seg<LE>, s, nsects, "section headers that follow");
            f!(t, off, $Seg<LE>, s, flags, "no segment flags");
            let mut o = off + size_of::<$Seg<LE>>();
            for i in 0..s.nsects.get(LE) {
                let x: &$Sect<LE> = at(data, o, "a section header")?;
                let (sect, seg) = (name16(&x.sectname), name16(&x.segname));
                t.heading(&format!("section {i} of {name}: {seg},{sect} ({} bytes at {o:#x})", size_of::<$Sect<LE>>()));
                t.field(o + offset_of!($Sect<LE>, sectname), 16, "sectname", sect.as_str(), "");
                t.field(o + offset_of!($Sect<LE>, segname), 16, "segname", seg.as_str(), "");
                f!(t, o, $Sect<LE>, x, addr, "its address at run time");
                f!(t, o, $Sect<LE>, x, size, "bytes");
                f!(t, o, $Sect<LE>, x, offset, "where its bytes are in the file");
                f!(t, o, $Sect<LE>, x, align, "log2 of its alignment");
                f!(t, o, $Sect<LE>, x, reloff, "no relocations left: everything is resolved");
                f!(t, o, $Sect<LE>, x, nreloc, "");
                f!(t, o, $Sect<LE>, x, flags, section_type(x.flags.get(LE)));
                let what = if x.flags.get(LE) & S_ATTR_PURE_INSTRUCTIONS != 0 { "machine code" } else { "read-only data" };
                regions.push(Region {
                    offset: x.offset.get(LE) as usize,
                    size: x.size.get(LE) as usize,
                    name: format!("{seg},{sect}"),
                    what: what.into(),
                });
                o += size_of::<$Sect<LE>>();
            }
            Ok(())
        }
    };
}
segment_fn!(segment64, SegmentCommand64, Section64);
segment_fn!(segment32, SegmentCommand32, Section32);

fn section_type(flags: u32) -> String {
    let mut parts = Vec::new();
    if flags & S_ATTR_PURE_INSTRUCTIONS != 0 {
        parts.push("S_ATTR_PURE_INSTRUCTIONS");
    }
    if flags & S_ATTR_SOME_INSTRUCTIONS != 0 {
        parts.push("S_ATTR_SOME_INSTRUCTIONS");
    }
    match flags & SECTION_TYPE {
        S_REGULAR => parts.push("S_REGULAR"),
        S_CSTRING_LITERALS => parts.push("S_CSTRING_LITERALS"),
        _ => parts.push("another section type"),
    }
    parts.join("|")
}

fn symtab<N: object::Pod + NlistFields>(t: &mut Table, regions: &mut Vec<Region>, data: &[u8], off: usize) -> R<()> {
    let s: &SymtabCommand<LE> = at(data, off, "LC_SYMTAB")?;
    f!(t, off, SymtabCommand<LE>, s, symoff, "the symbol table (nlist entries); read by debuggers and objdump, not by exec");
    f!(t, off, SymtabCommand<LE>, s, nsyms, "symbols");
    f!(t, off, SymtabCommand<LE>, s, stroff, "the string table their names point into");
    f!(t, off, SymtabCommand<LE>, s, strsize, "bytes of names");
    let (symoff, nsyms) = (s.symoff.get(LE) as usize, s.nsyms.get(LE) as usize);
    let (stroff, strsize) = (s.stroff.get(LE) as usize, s.strsize.get(LE) as usize);
    let strings = data.get(stroff..stroff.saturating_add(strsize)).unwrap_or_default();
    let mut names = Vec::new();
    for i in 0..nsyms {
        let o = symoff.saturating_add(i.saturating_mul(size_of::<N>()));
        let n: &N = at(data, o, "a symbol")?;
        let (strx, ty, sect, value) = n.fields();
        let name = strings.get(strx as usize..).and_then(|s| s.split(|&b| b == 0).next()).unwrap_or_default();
        let name = String::from_utf8_lossy(name);
        let kind = if ty & N_EXT != 0 { "external" } else { "local" };
        names.push(format!("{name} = {value:#x} ({kind}, section {sect})"));
    }
    regions.push(Region { offset: symoff, size: nsyms.saturating_mul(size_of::<N>()), name: "symbol table".into(), what: names.join("; ") });
    regions.push(Region { offset: stroff, size: strsize, name: "string table".into(), what: quoted(strings) });
    Ok(())
}

trait NlistFields {
    fn fields(&self) -> (u32, u8, u8, u64);
}
impl NlistFields for Nlist64<LE> {
    fn fields(&self) -> (u32, u8, u8, u64) {
        (self.n_strx.get(LE), self.n_type, self.n_sect, self.n_value.get(LE))
    }
}
impl NlistFields for Nlist32<LE> {
    fn fields(&self) -> (u32, u8, u8, u64) {
        (self.n_strx.get(LE), self.n_type, self.n_sect, self.n_value.get(LE).into())
    }
}

/// `LC_UNIXTHREAD`: flavor, count, then the register file `load_unixthread`
/// hands to `thread_setstatus`. A zero stack pointer asks the kernel for a
/// stack; a non-zero one means "custom stack", and the kernel makes none.
fn thread<W: Word>(t: &mut Table, data: &[u8], off: usize, regs: &[&str]) -> R<()> {
    let read = |o: usize| -> R<u32> {
        data.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| format!("LC_UNIXTHREAD at {off:#x} runs past the end of the file"))
    };
    let flavor = read(off + 8)?;
    let count = read(off + 12)?;
    let fname = match flavor {
        4 => "x86_THREAD_STATE64",
        1 => "x86_THREAD_STATE32",
        _ => "an unknown flavor",
    };
    t.field(off + 8, 4, "flavor", flavor, fname);
    t.field(off + 12, 4, "count", count, "32-bit words of register state that follow");
    let mut o = off + 16;
    for name in regs {
        let v = W::read(data, o).ok_or_else(|| format!("LC_UNIXTHREAD at {off:#x} runs past the end of the file"))?;
        let meaning = match *name {
            "rip" | "eip" => "the entry point: first instruction of _start",
            "rsp" | "esp" if v == 0 => "0: the kernel allocates the stack and puts argc, argv, envp, apple there",
            _ if v == 0 => "",
            _ => "set at exec",
        };
        t.field(o, W::SIZE, name, v, meaning);
        o += W::SIZE;
    }
    Ok(())
}

trait Word {
    const SIZE: usize;
    fn read(data: &[u8], o: usize) -> Option<u64>;
}
impl Word for u64 {
    const SIZE: usize = 8;
    fn read(data: &[u8], o: usize) -> Option<u64> {
        Some(u64::from_le_bytes(data.get(o..o + 8)?.try_into().ok()?))
    }
}
impl Word for u32 {
    const SIZE: usize = 4;
    fn read(data: &[u8], o: usize) -> Option<u64> {
        Some(u32::from_le_bytes(data.get(o..o + 4)?.try_into().ok()?).into())
    }
}

/// Everything after the load commands, in file order, gaps included.
fn rest(t: &mut Table, data: &[u8], mut off: usize, mut regions: Vec<Region>) {
    regions.retain(|r| r.size > 0);
    regions.sort_by_key(|r| r.offset);
    t.heading("the rest of the file");
    for r in regions {
        gap(t, data, off, r.offset, "zeros: alignment");
        let bytes = data.get(r.offset..r.offset.saturating_add(r.size)).unwrap_or_default();
        let what = match r.what.as_str() {
            "machine code" => format!("machine code: {}", hex(bytes)),
            "read-only data" => format!("read-only data: {}", quoted(bytes)),
            _ => r.what,
        };
        t.region(r.offset, r.size, &r.name, &what);
        off = off.max(r.offset.saturating_add(r.size));
    }
    gap(t, data, off, data.len(), "zeros up to one page: parse_machfile reads round_page(header + sizeofcmds) bytes and refuses a shorter file");
    t.note(&format!("\n{} bytes in all", data.len()));
}

fn gap(t: &mut Table, data: &[u8], from: usize, to: usize, zeros: &str) {
    if to <= from {
        return;
    }
    let bytes = data.get(from..to).unwrap_or_default();
    let what = if bytes.iter().all(|&b| b == 0) {
        zeros.to_string()
    } else {
        format!("not described by any header: {}", hex(&bytes[..bytes.len().min(32)]))
    };
    t.region(from, to - from, "padding", &what);
}
