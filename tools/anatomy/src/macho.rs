//! A Mach-O image, field by field, with what XNU's exec path does with each
//! (bsd/kern/mach_loader.c: `load_machfile`, `parse_machfile`,
//! `load_segment`, `load_unixthread`, `load_main`, `load_dylinker`), and,
//! for the arm64 image, what dyld reads (mach_o/UnsafeHeader.cpp in
//! apple-oss-distributions/dyld) and its code signature (codesign.rs).
//!
//! Field offsets come from `object`'s typed structures (`offset_of!`), so
//! they are the structures' own, not numbers typed in here.

use crate::codesign;
use crate::table::{Kind, R, Table, at, f, hex, quoted};
use object::LittleEndian as LE;
use object::macho::*;
use std::mem::{offset_of, size_of};

fn name16(bytes: &[u8; 16]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(16);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn cpu(cputype: CpuType) -> &'static str {
    match cputype {
        CPU_TYPE_X86_64 => "CPU_TYPE_X86_64: static images are allowed for this type only in current XNU (parse_machfile)",
        CPU_TYPE_X86 => "CPU_TYPE_I386: ran on macOS up to 10.14 (no 32-bit exec since 10.15)",
        CPU_TYPE_ARM64 => "CPU_TYPE_ARM64: Apple Silicon; parse_machfile wants MH_DYLDLINK, and MH_PIE (pie_required)",
        _ => "not a CPU type this project builds for",
    }
}

fn filetype(t: FileType) -> &'static str {
    match t {
        MH_EXECUTE => "MH_EXECUTE: a main program, the only type execve accepts",
        MH_OBJECT => "MH_OBJECT: a relocatable object, not runnable",
        _ => "not an executable",
    }
}

fn flags(f: FileFlags) -> String {
    let mut names = Vec::new();
    for (bit, name) in [
        (MH_NOUNDEFS, "MH_NOUNDEFS"),
        (MH_DYLDLINK, "MH_DYLDLINK"),
        (MH_PIE, "MH_PIE"),
        (MH_TWOLEVEL, "MH_TWOLEVEL"),
    ] {
        if f.intersects(bit) {
            names.push(name);
        }
    }
    let why = if !f.intersects(MH_DYLDLINK) {
        "no MH_DYLDLINK: the kernel maps no dyld and jumps straight to the entry"
    } else if f.intersects(MH_PIE) {
        "MH_DYLDLINK: the kernel maps dyld and starts it; MH_PIE: loaded at a random slide"
    } else {
        "MH_DYLDLINK: the kernel maps dyld and starts it"
    };
    format!("{}; {why}", if names.is_empty() { "none".into() } else { names.join("|") })
}

fn prot(p: u32) -> String {
    let r = if p & 1 != 0 { 'r' } else { '-' };
    let w = if p & 2 != 0 { 'w' } else { '-' };
    let x = if p & 4 != 0 { 'x' } else { '-' };
    format!("{r}{w}{x}")
}

fn cmd_name(cmd: LoadCommandType) -> &'static str {
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
        LC_DYLD_INFO_ONLY => "LC_DYLD_INFO_ONLY",
        LC_DYSYMTAB => "LC_DYSYMTAB",
        LC_FUNCTION_STARTS => "LC_FUNCTION_STARTS",
        LC_DATA_IN_CODE => "LC_DATA_IN_CODE",
        LC_CODE_SIGNATURE => "LC_CODE_SIGNATURE",
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
    kind: Kind,
}

pub fn explain(data: &[u8]) -> R<Table> {
    let magic = data.get(..4).ok_or("the file is shorter than a Mach-O magic number")?;
    match u32::from_le_bytes(magic.try_into().unwrap_or_default()) {
        MH_MAGIC_64 => explain64(data),
        MH_MAGIC => explain32(data),
        _ => Err("not a little-endian thin Mach-O file".into()),
    }
}

macro_rules! explainer {
    ($fn:ident, $Hdr:ident, $segment:ident, $Nlist:ident, $LC_SEG:expr, $word:ty, $regs:expr, $magic_note:expr) => {
        fn $fn(data: &[u8]) -> R<Table> {
            let mut t = Table::default();
            let mut regions: Vec<Region> = Vec::new();
            let h: &$Hdr<LE> = at(data, 0, "the Mach-O header")?;
            t.heading(Kind::Header, &format!("mach_header ({} bytes at 0x0)", size_of::<$Hdr<LE>>()));
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
            // mach_header_64 ends with a word mach_header lacks.
            if size_of::<$Hdr<LE>>() == 32 {
                t.field(28, 4, "reserved", u32_at(data, 28)?, "unused");
            }

            let mut off = size_of::<$Hdr<LE>>();
            let mut signature = None;
            for i in 0..h.ncmds.get(LE) {
                let lc: &LoadCommand<LE> = at(data, off, "a load command")?;
                let cmd = lc.cmd.get(LE);
                let size = lc.cmdsize.get(LE) as usize;
                if size < size_of::<LoadCommand<LE>>() {
                    return Err(format!("load command {i} at {off:#x} has cmdsize {size}"));
                }
                t.heading(Kind::Command, &format!("load command {i}: {} ({size} bytes at {off:#x})", cmd_name(cmd)));
                f!(t, off, LoadCommand<LE>, lc, cmd, cmd_name(cmd));
                f!(t, off, LoadCommand<LE>, lc, cmdsize, "bytes in this command, sections included");
                match cmd {
                    c if c == $LC_SEG => $segment(&mut t, &mut regions, data, off)?,
                    LC_SYMTAB => symtab::<$Nlist<LE>>(&mut t, &mut regions, data, off)?,
                    LC_UNIXTHREAD => thread::<$word>(&mut t, data, off, &$regs)?,
                    LC_DYLD_INFO_ONLY => dyld_info(&mut t, &mut regions, data, off)?,
                    LC_DYSYMTAB => dysymtab(&mut t, data, off)?,
                    LC_LOAD_DYLINKER => dylinker(&mut t, data, off, size)?,
                    LC_UUID => uuid(&mut t, data, off)?,
                    LC_BUILD_VERSION => build_version(&mut t, data, off, size)?,
                    LC_MAIN => entry_point(&mut t, data, off)?,
                    LC_LOAD_DYLIB => dylib(&mut t, data, off, size)?,
                    LC_FUNCTION_STARTS | LC_DATA_IN_CODE | LC_CODE_SIGNATURE => {
                        let (dataoff, datasize) = linkedit_data(&mut t, &mut regions, data, off, cmd)?;
                        if cmd == LC_CODE_SIGNATURE {
                            signature = Some((dataoff, datasize));
                        }
                    }
                    _ => t.note("   (not explained here: shown as raw bytes only)"),
                }
                off += size;
            }
            rest(&mut t, data, off, regions);
            if let Some((dataoff, datasize)) = signature {
                codesign::explain(&mut t, data, dataoff, datasize)?;
            }
            t.note(&format!("\n{} bytes in all", data.len()));
            Ok(t)
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
                "__LINKEDIT" => "data for dyld and the kernel (exports, symbols, the code signature), read-only",
                _ => "a segment",
            });
            f!(t, off, $Seg<LE>, s, vmaddr, if zero { "address 0" } else { "where load_segment maps it" });
            f!(t, off, $Seg<LE>, s, vmsize, if zero { "the whole low range, mapped with no access" } else { "bytes of address space" });
            f!(t, off, $Seg<LE>, s, fileoff, "file offset of its first byte: page-aligned, inside the file");
            f!(t, off, $Seg<LE>, s, filesize, if zero { "nothing from the file" } else { "bytes mapped from the file" });
            f!(t, off, $Seg<LE>, s, maxprot, prot(s.maxprot.get(LE).0) + ": the most its pages may ever allow");
            f!(t, off, $Seg<LE>, s, initprot, prot(s.initprot.get(LE).0) + ": what they allow at exec");
            f!(t, off, $Seg<LE>, s, nsects, "section headers that follow");
            f!(t, off, $Seg<LE>, s, flags, "no segment flags");
            // A marker, not bytes: lets `rest` say why zeros precede it.
            regions.push(Region { offset: s.fileoff.get(LE) as usize, size: 0, name: name.clone(), what: "segment".into(), kind: Kind::Padding });
            let mut o = off + size_of::<$Seg<LE>>();
            for i in 0..s.nsects.get(LE) {
                let x: &$Sect<LE> = at(data, o, "a section header")?;
                let (sect, seg) = (name16(&x.sectname), name16(&x.segname));
                t.heading(Kind::SectionHeader, &format!("section {i} of {name}: {seg},{sect} ({} bytes at {o:#x})", size_of::<$Sect<LE>>()));
                t.field(o + offset_of!($Sect<LE>, sectname), 16, "sectname", sect.as_str(), "");
                t.field(o + offset_of!($Sect<LE>, segname), 16, "segname", seg.as_str(), "");
                f!(t, o, $Sect<LE>, x, addr, "its address at run time");
                f!(t, o, $Sect<LE>, x, size, "bytes");
                f!(t, o, $Sect<LE>, x, offset, "where its bytes are in the file");
                f!(t, o, $Sect<LE>, x, align, "log2 of its alignment");
                f!(t, o, $Sect<LE>, x, reloff, "no relocations left: everything is resolved");
                f!(t, o, $Sect<LE>, x, nreloc, "");
                f!(t, o, $Sect<LE>, x, flags, section_type(x.flags.get(LE)));
                f!(t, o, $Sect<LE>, x, reserved1, "indirect-symbol index: used by stub and pointer sections only");
                f!(t, o, $Sect<LE>, x, reserved2, "stub size: used by stub sections only");
                // section_64 ends with a word section lacks.
                if size_of::<$Sect<LE>>() == 80 {
                    t.field(o + 76, 4, "reserved3", u32_at(data, o + 76)?, "unused");
                }
                let kind = if x.flags.get(LE).intersects(S_ATTR_PURE_INSTRUCTIONS) { Kind::Code } else { Kind::Data };
                regions.push(Region {
                    offset: x.offset.get(LE) as usize,
                    size: x.size.get(LE) as usize,
                    name: format!("{seg},{sect}"),
                    // `rest` describes code and data from their bytes.
                    what: String::new(),
                    kind,
                });
                o += size_of::<$Sect<LE>>();
            }
            Ok(())
        }
    };
}
segment_fn!(segment64, SegmentCommand64, Section64);
segment_fn!(segment32, SegmentCommand32, Section32);

fn section_type(flags: SectionFlags) -> String {
    let mut parts = Vec::new();
    if flags.intersects(S_ATTR_PURE_INSTRUCTIONS) {
        parts.push("S_ATTR_PURE_INSTRUCTIONS");
    }
    if flags.intersects(S_ATTR_SOME_INSTRUCTIONS) {
        parts.push("S_ATTR_SOME_INSTRUCTIONS");
    }
    // The low byte (SECTION_TYPE) of the flags.
    match flags.typ() {
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
        let kind = if ty.intersects(N_EXT) { "external" } else { "local" };
        names.push(format!("{name} = {value:#x} ({kind}, section {sect})"));
    }
    regions.push(Region {
        offset: symoff,
        size: nsyms.saturating_mul(size_of::<N>()),
        name: "symbol table".into(),
        what: names.join("; "),
        kind: Kind::Symbols,
    });
    regions.push(Region { offset: stroff, size: strsize, name: "string table".into(), what: quoted(strings), kind: Kind::Strings });
    Ok(())
}

trait NlistFields {
    fn fields(&self) -> (u32, SymbolFlags, u8, u64);
}
impl NlistFields for Nlist64<LE> {
    fn fields(&self) -> (u32, SymbolFlags, u8, u64) {
        (self.n_strx.get(LE), self.n_type, self.n_sect, self.n_value.get(LE))
    }
}
impl NlistFields for Nlist32<LE> {
    fn fields(&self) -> (u32, SymbolFlags, u8, u64) {
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
    let segment_starts: Vec<usize> =
        regions.iter().filter(|r| r.what == "segment" && r.offset > 0).map(|r| r.offset).collect();
    regions.retain(|r| r.size > 0);
    regions.sort_by_key(|r| r.offset);
    // No fields of its own: each region says what it holds.
    t.heading(Kind::Unknown, "the rest of the file");
    let after_commands = off;
    for r in regions {
        let why = if off == after_commands {
            "zeros: room left after the load commands for tools that add one (the linker's -headerpad: 32 bytes unless told otherwise)"
        } else if segment_starts.contains(&r.offset) {
            "zeros: the next segment starts on a page boundary (load_segment: file offsets are page-aligned; a page is 16 KiB on Apple Silicon)"
        } else {
            "zeros: alignment"
        };
        gap(t, data, off, r.offset, why);
        let bytes = data.get(r.offset..r.offset.saturating_add(r.size)).unwrap_or_default();
        let what = match r.kind {
            Kind::Code => format!("machine code: {}", hex(bytes)),
            Kind::Data => format!("read-only data: {}", quoted(bytes)),
            _ => r.what,
        };
        if r.kind == Kind::Signature {
            t.summary(r.offset, r.size, &r.name, &what);
        } else {
            t.region(r.kind, r.offset, r.size, &r.name, &what);
        }
        off = off.max(r.offset.saturating_add(r.size));
    }
    gap(t, data, off, data.len(), "zeros up to one page: parse_machfile reads round_page(header + sizeofcmds) bytes and refuses a shorter file");
}

fn gap(t: &mut Table, data: &[u8], from: usize, to: usize, zeros: &str) {
    if to <= from {
        return;
    }
    let bytes = data.get(from..to).unwrap_or_default();
    let (kind, what) = if bytes.iter().all(|&b| b == 0) {
        (Kind::Padding, zeros.to_string())
    } else {
        (Kind::Unknown, format!("not described by any header: {}", hex(&bytes[..bytes.len().min(32)])))
    };
    t.region(kind, from, to - from, "padding", &what);
}

/// `LC_DYLD_INFO_ONLY`: where dyld finds the rebase, bind and export
/// information. "_ONLY": the image has no older-style relocations besides.
fn dyld_info(t: &mut Table, regions: &mut Vec<Region>, data: &[u8], off: usize) -> R<()> {
    let d: &DyldInfoCommand<LE> = at(data, off, "LC_DYLD_INFO_ONLY")?;
    let none = |size: &object::endian::U32<LE>, what: &str, empty: &str| {
        if size.get(LE) == 0 { format!("{what}: none{empty}") } else { what.to_string() }
    };
    f!(t, off, DyldInfoCommand<LE>, d, rebase_off, none(&d.rebase_size, "pointers dyld must slide", " (the code addresses the message PC-relative)"));
    f!(t, off, DyldInfoCommand<LE>, d, rebase_size, "");
    f!(t, off, DyldInfoCommand<LE>, d, bind_off, none(&d.bind_size, "symbols to bind to a library", ", so nothing in libSystem is ever called"));
    f!(t, off, DyldInfoCommand<LE>, d, bind_size, "");
    f!(t, off, DyldInfoCommand<LE>, d, weak_bind_off, none(&d.weak_bind_size, "weak symbols", ""));
    f!(t, off, DyldInfoCommand<LE>, d, weak_bind_size, "");
    f!(t, off, DyldInfoCommand<LE>, d, lazy_bind_off, none(&d.lazy_bind_size, "symbols bound on first call", ""));
    f!(t, off, DyldInfoCommand<LE>, d, lazy_bind_size, "");
    f!(t, off, DyldInfoCommand<LE>, d, export_off, "the export trie: the symbols this image offers, by name");
    f!(t, off, DyldInfoCommand<LE>, d, export_size, "bytes of trie");
    regions.push(Region {
        offset: d.export_off.get(LE) as usize,
        size: d.export_size.get(LE) as usize,
        name: "export trie".into(),
        what: "(LC_DYLD_INFO_ONLY) a prefix tree of exported names and their offsets from __TEXT".into(),
        kind: Kind::Linkedit,
    });
    Ok(())
}

/// `LC_DYSYMTAB`: how the symbol table splits into local, defined and
/// undefined symbols. dyld needs it (or LC_DYLD_INFO) to accept the image.
fn dysymtab(t: &mut Table, data: &[u8], off: usize) -> R<()> {
    let d: &DysymtabCommand<LE> = at(data, off, "LC_DYSYMTAB")?;
    f!(t, off, DysymtabCommand<LE>, d, ilocalsym, "first local symbol");
    f!(t, off, DysymtabCommand<LE>, d, nlocalsym, "local symbols");
    f!(t, off, DysymtabCommand<LE>, d, iextdefsym, "first defined external symbol");
    f!(t, off, DysymtabCommand<LE>, d, nextdefsym, "defined external symbols");
    f!(t, off, DysymtabCommand<LE>, d, iundefsym, "first undefined symbol");
    f!(t, off, DysymtabCommand<LE>, d, nundefsym, if d.nundefsym.get(LE) == 0 { "undefined symbols: none, nothing is imported" } else { "undefined symbols: imported from libraries" });
    for (field, o, meaning) in [
        ("tocoff", offset_of!(DysymtabCommand<LE>, tocoff), "table of contents: only in old dylibs"),
        ("ntoc", offset_of!(DysymtabCommand<LE>, ntoc), ""),
        ("modtaboff", offset_of!(DysymtabCommand<LE>, modtaboff), "module table: only in old dylibs"),
        ("nmodtab", offset_of!(DysymtabCommand<LE>, nmodtab), ""),
        ("extrefsymoff", offset_of!(DysymtabCommand<LE>, extrefsymoff), "referenced symbols: only in old dylibs"),
        ("nextrefsyms", offset_of!(DysymtabCommand<LE>, nextrefsyms), ""),
        ("indirectsymoff", offset_of!(DysymtabCommand<LE>, indirectsymoff), "indirect symbols (for stubs): none, there are no stubs"),
        ("nindirectsyms", offset_of!(DysymtabCommand<LE>, nindirectsyms), ""),
        ("extreloff", offset_of!(DysymtabCommand<LE>, extreloff), "external relocations: none"),
        ("nextrel", offset_of!(DysymtabCommand<LE>, nextrel), ""),
        ("locreloff", offset_of!(DysymtabCommand<LE>, locreloff), "local relocations: none"),
        ("nlocrel", offset_of!(DysymtabCommand<LE>, nlocrel), ""),
    ] {
        let v = u32_at(data, off + o)?;
        t.field(off + o, 4, field, v, meaning);
    }
    Ok(())
}

fn u32_at(data: &[u8], o: usize) -> R<u32> {
    data.get(o..o.saturating_add(4))
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| format!("a field at {o:#x} runs past the end of the file"))
}

/// The NUL-terminated string a load command carries at `name_off` from its
/// start, then the zeros that pad the command to its cmdsize.
fn lc_string(t: &mut Table, data: &[u8], off: usize, size: usize, name_off: usize, meaning: &str) -> R<()> {
    let start = off.saturating_add(name_off);
    let end = off.saturating_add(size);
    let bytes = data.get(start..end).ok_or_else(|| format!("the string of the command at {off:#x} runs past the end of the file"))?;
    let len = bytes.iter().position(|&b| b == 0).ok_or_else(|| format!("the string of the command at {off:#x} has no NUL"))? + 1;
    t.field(start, len, "name", quoted(&bytes[..len - 1]), meaning);
    gap(t, data, start + len, end, "zeros: pad the command to a multiple of 8 bytes");
    Ok(())
}

/// `LC_LOAD_DYLINKER`: the dynamic linker `load_dylinker` maps next to the
/// image and starts in its place.
fn dylinker(t: &mut Table, data: &[u8], off: usize, size: usize) -> R<()> {
    let d: &DylinkerCommand<LE> = at(data, off, "LC_LOAD_DYLINKER")?;
    let name = d.name.offset.get(LE);
    t.field(off + offset_of!(DylinkerCommand<LE>, name), 4, "name.offset", name, "where the path starts, from the command's first byte");
    lc_string(t, data, off, size, name as usize, "dyld: the kernel runs it first (needs_dynlinker, set by MH_DYLDLINK and by LC_MAIN)")
}

fn uuid(t: &mut Table, data: &[u8], off: usize) -> R<()> {
    let u: &UuidCommand<LE> = at(data, off, "LC_UUID")?;
    let b = u.uuid;
    let text = format!(
        "{}-{}-{}-{}-{}",
        hex(&b[0..4]).replace(' ', ""),
        hex(&b[4..6]).replace(' ', ""),
        hex(&b[6..8]).replace(' ', ""),
        hex(&b[8..10]).replace(' ', ""),
        hex(&b[10..16]).replace(' ', "")
    );
    t.field(off + offset_of!(UuidCommand<LE>, uuid), 16, "uuid", text, "identifies this build: lld writes the fixed bytes \"LLD\\xa1UU1D\" (two swapped) and a 64-bit xxhash of the file (LCUuid::writeUuid, lld/MachO/Writer.cpp); dyld wants one once the SDK is 26 or later (Policy::enforceHasUUID)");
    Ok(())
}

/// A version packed as xxxx.yy.zz in nibbles: 0x000b0000 is 11.0.0.
fn version(v: u32) -> String {
    format!("{}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff)
}

fn build_version(t: &mut Table, data: &[u8], off: usize, size: usize) -> R<()> {
    let b: &BuildVersionCommand<LE> = at(data, off, "LC_BUILD_VERSION")?;
    let platform = b.platform.get(LE);
    f!(t, off, BuildVersionCommand<LE>, b, platform, if platform == PLATFORM_MACOS { "PLATFORM_MACOS" } else { "not macOS" });
    f!(t, off, BuildVersionCommand<LE>, b, minos, format!("{}: the oldest macOS it may run on", version(b.minos.get(LE).0)));
    f!(t, off, BuildVersionCommand<LE>, b, sdk, format!("{}: the SDK it was built against; dyld's stricter checks follow this version", version(b.sdk.get(LE).0)));
    f!(t, off, BuildVersionCommand<LE>, b, ntools, "tool entries that follow");
    let mut o = off + size_of::<BuildVersionCommand<LE>>();
    for _ in 0..b.ntools.get(LE) {
        let tv: &BuildToolVersion<LE> = at(data, o, "a build tool version")?;
        let tool = tv.tool.get(LE);
        f!(t, o, BuildToolVersion<LE>, tv, tool, match tool {
            TOOL_CLANG => "TOOL_CLANG",
            TOOL_SWIFT => "TOOL_SWIFT",
            TOOL_LD => "TOOL_LD: Apple's ld64",
            Tool(4) => "TOOL_LLD: LLVM's linker (rust-lld)",
            _ => "another tool",
        });
        f!(t, o, BuildToolVersion<LE>, tv, version, format!("{}: its version", version(tv.version.get(LE).0)));
        o += size_of::<BuildToolVersion<LE>>();
    }
    gap(t, data, o, off.saturating_add(size), "zeros: pad the command");
    Ok(())
}

/// `LC_MAIN`: the entry point, as an offset. dyld, not the kernel, jumps
/// there, once libSystem is loaded and initialised.
fn entry_point(t: &mut Table, data: &[u8], off: usize) -> R<()> {
    let e: &EntryPointCommand<LE> = at(data, off, "LC_MAIN")?;
    f!(t, off, EntryPointCommand<LE>, e, entryoff, "file offset of the entry, __start (__TEXT maps offset 0): dyld calls it as main(argc, argv, envp, apple)");
    f!(t, off, EntryPointCommand<LE>, e, stacksize, "0: the main thread's usual stack");
    Ok(())
}

/// `LC_LOAD_DYLIB`: a library dyld must load before the program starts.
fn dylib(t: &mut Table, data: &[u8], off: usize, size: usize) -> R<()> {
    let d: &DylibCommand<LE> = at(data, off, "LC_LOAD_DYLIB")?;
    let base = off + offset_of!(DylibCommand<LE>, dylib);
    let name = d.dylib.name.offset.get(LE);
    t.field(base + offset_of!(Dylib<LE>, name), 4, "name.offset", name, "where the path starts, from the command's first byte");
    f!(t, base, Dylib<LE>, d.dylib, timestamp, "unused by dyld");
    f!(t, base, Dylib<LE>, d.dylib, current_version, format!("{}: from the .tbd stub", version(d.dylib.current_version.get(LE).0)));
    f!(t, base, Dylib<LE>, d.dylib, compatibility_version, format!("{}: dyld refuses a library older than this", version(d.dylib.compatibility_version.get(LE).0)));
    lc_string(t, data, off, size, name as usize, "the library's install name; dyld refuses a main executable that names none (validSemanticsLinkedDylibs, SDK 15.4 or later)")
}

/// A command that only points into __LINKEDIT: offset and size of a blob.
fn linkedit_data(t: &mut Table, regions: &mut Vec<Region>, data: &[u8], off: usize, cmd: LoadCommandType) -> R<(usize, usize)> {
    let l: &LinkeditDataCommand<LE> = at(data, off, "a __LINKEDIT data command")?;
    let (dataoff, datasize) = (l.dataoff.get(LE) as usize, l.datasize.get(LE) as usize);
    let (what, name, region) = match cmd {
        LC_FUNCTION_STARTS => (
            "function starts: for debuggers and crash reports, not for running",
            "function starts",
            format!("ULEB128 offsets of each function from the previous one, from __TEXT: {}", function_starts(data, dataoff, datasize)),
        ),
        LC_DATA_IN_CODE => ("data mixed into code: none", "data in code", String::new()),
        _ => (
            "the code signature: last in __LINKEDIT and in the file; the kernel (AMFI) kills unsigned arm64 code",
            "code signature",
            "SuperBlob, CodeDirectory and page hashes: every field below".into(),
        ),
    };
    f!(t, off, LinkeditDataCommand<LE>, l, dataoff, what);
    f!(t, off, LinkeditDataCommand<LE>, l, datasize, "bytes");
    // The signature's bytes are shown field by field (codesign.rs).
    let kind = if cmd == LC_CODE_SIGNATURE { Kind::Signature } else { Kind::Linkedit };
    regions.push(Region { offset: dataoff, size: datasize, name: name.into(), what: region, kind });
    Ok((dataoff, datasize))
}

/// The function-starts blob decoded: ULEB128 deltas, ended by a 0.
fn function_starts(data: &[u8], off: usize, size: usize) -> String {
    let bytes = data.get(off..off.saturating_add(size)).unwrap_or_default();
    let (mut starts, mut addr, mut value, mut shift) = (Vec::new(), 0u64, 0u64, 0u32);
    for &b in bytes {
        value |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
        shift += 7;
        if b & 0x80 == 0 {
            if value == 0 {
                break;
            }
            addr = addr.saturating_add(value);
            starts.push(format!("{addr:#x}"));
            value = 0;
            shift = 0;
        }
    }
    format!("{} ({})", starts.join(", "), hex(bytes))
}
