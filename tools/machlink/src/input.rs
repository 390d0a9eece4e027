//! Reading the inputs: Mach-O relocatable objects, and ar archives (rlibs)
//! whose Mach-O members are parsed only when they are needed.
//!
//! Everything is checked against the file's own bounds here, so later stages
//! index into these structures without fear: a section's data is exactly
//! `size` bytes, a symbol's section exists and holds its value, a fixup lies
//! inside its section.

use object::read::archive::ArchiveFile;
use object::macho::{MachHeader32, MachHeader64};
use object::read::macho::{MachHeader, Nlist, Section as _, Segment as _};
use object::{FileKind, LittleEndian as LE, macho};

use rayon::prelude::*;

use crate::arch::Arch;
use crate::error::{Context, Error, Result};
use crate::fixup;
use crate::model::{Def, Object, Section, Symbol};

/// A file named on the command line: its bytes, mapped or owned.
pub struct InputFile {
    pub name: String,
    pub data: Contents,
}

/// An input's bytes. Mapping saves copying a large input (81 MB of objects
/// for 500,000 functions) before reading a byte of it, as ld64 and lld map
/// theirs.
pub enum Contents {
    Owned(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for Contents {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Contents::Owned(v) => v,
            Contents::Mapped(m) => m,
        }
    }
}

impl From<Vec<u8>> for Contents {
    fn from(v: Vec<u8>) -> Contents {
        Contents::Owned(v)
    }
}

impl InputFile {
    /// Maps `path` (reads it when it cannot be mapped, e.g. a pipe or an
    /// empty file).
    pub fn open(path: &std::path::Path) -> Result<InputFile> {
        let name = path.display().to_string();
        let cannot = |e: std::io::Error| Error::new(&name, format!("cannot read: {e}"));
        let file = std::fs::File::open(path).map_err(cannot)?;
        let meta = file.metadata().map_err(cannot)?;
        if meta.is_file() && meta.len() > 0 {
            // SAFETY: the map is only read. A file changed by another
            // process during the link can give wrong bytes, never memory
            // unsafety beyond that (the linker's own output goes to a new
            // file renamed into place, never into an input's inode).
            if let Ok(map) = unsafe { memmap2::Mmap::map(&file) } {
                return Ok(InputFile { name, data: Contents::Mapped(map) });
            }
        }
        let data = std::fs::read(path).map_err(cannot)?;
        Ok(InputFile { name, data: data.into() })
    }
}

/// An archive with its Mach-O members located but not yet parsed.
pub struct Archive<'a> {
    pub members: Vec<Member<'a>>,
}

pub struct Member<'a> {
    pub name: String,
    pub data: &'a [u8],
    /// Why the member cannot be linked (another architecture, not a
    /// relocatable object). ld64 ignores such a member; it is refused only
    /// when it defines a symbol the link needs and no usable member does.
    pub unusable: Option<Error>,
}

/// The largest section alignment (log2) accepted, ld64's.
pub const MAX_ALIGN: u32 = 15;

pub struct Inputs<'a> {
    pub arch: Arch,
    pub objects: Vec<Object<'a>>,
    pub archives: Vec<Archive<'a>>,
}

enum Kind<'a> {
    Object(&'a InputFile),
    Archive(Vec<Member<'a>>),
}

/// The magic numbers of LLVM bitcode, bare and in its wrapper
/// (llvm/Bitcode/BitcodeReader.cpp, `isBitcode`): what `-C
/// linker-plugin-lto` and `-flto` leave for the linker's LTO plugin.
fn is_bitcode(data: &[u8]) -> bool {
    data.starts_with(b"BC\xC0\xDE") || data.starts_with(&[0xde, 0xc0, 0x17, 0x0b])
}

pub fn bitcode_error(name: &str) -> Error {
    Error::new(name, "is LLVM bitcode (from -C linker-plugin-lto or -flto): machlink does not do LTO; rustc's own -C lto works")
}

/// Sorts the inputs into objects and archives, settles the architecture
/// (`-arch`, else the first Mach-O input's) and parses the objects, in
/// parallel: each is independent of the others.
pub fn read(files: &[InputFile], arch: Option<Arch>) -> Result<Inputs<'_>> {
    let mut kinds = Vec::new();
    for file in files {
        // An empty archive is its 8-byte magic alone, too short for
        // `FileKind::parse`; ld64 accepts it as an archive of nothing.
        let kind = if file.data.starts_with(b"!<arch>\n") { Ok(FileKind::Archive) } else { FileKind::parse(&*file.data) };
        kinds.push(match kind {
            Ok(FileKind::Archive) => Kind::Archive(archive_members(file)?),
            Ok(FileKind::MachO32 | FileKind::MachO64) => Kind::Object(file),
            Ok(FileKind::Elf32 | FileKind::Elf64) => {
                return Err(Error::new(&file.name, "is an ELF file, not a Mach-O object"));
            }
            Ok(FileKind::MachOFat32 | FileKind::MachOFat64) => {
                return Err(Error::new(&file.name, "universal (fat) files are not supported: pass a thin object"));
            }
            _ if is_bitcode(&file.data) => return Err(bitcode_error(&file.name)),
            _ => return Err(Error::new(&file.name, "not a Mach-O object or an ar archive")),
        });
    }
    let arch = match arch {
        Some(arch) => arch,
        None => infer_arch(&kinds)?,
    };
    let mut objects = Vec::new();
    let mut archives = Vec::new();
    for kind in kinds {
        match kind {
            Kind::Object(file) => objects.push(file),
            Kind::Archive(mut members) => {
                for m in &mut members {
                    m.unusable = check_header(&m.name, m.data, arch).err();
                }
                archives.push(Archive { members });
            }
        }
    }
    let objects = first_error(objects.par_iter().map(|file| parse_object(&file.name, &file.data, arch)).collect())?;
    Ok(Inputs { arch, objects, archives })
}

/// All the results, or the first error in input order: the same error on
/// every run, however the threads were scheduled.
pub fn first_error<T>(results: Vec<Result<T>>) -> Result<Vec<T>> {
    results.into_iter().collect()
}

fn infer_arch(kinds: &[Kind<'_>]) -> Result<Arch> {
    let first = kinds.iter().find_map(|k| match k {
        Kind::Object(f) => Some((f.name.clone(), &f.data[..])),
        Kind::Archive(members) => members.first().map(|m| (m.name.clone(), m.data)),
    });
    let Some((name, data)) = first else {
        return Err(Error::usage("no -arch given and no Mach-O input to take it from"));
    };
    let (cputype, _) = header_type(&name, data)?;
    Arch::from_cputype(cputype)
        .ok_or_else(|| Error::new(name, format!("unsupported CPU type {:#x}", cputype.0)))
}

/// Walks every member header (which validates the archive's structure) and
/// keeps the Mach-O ones. What else an archive holds defines nothing a
/// Mach-O linker can use and is skipped, as ld64 skips it: rustc's
/// `lib.rmeta`, empty members, text. LLVM bitcode is the exception, refused
/// so that `-C linker-plugin-lto` is named as the cause rather than left
/// to show as undefined symbols.
fn archive_members(file: &InputFile) -> Result<Vec<Member<'_>>> {
    let archive = ArchiveFile::parse(&*file.data).in_file(&file.name, "malformed archive")?;
    if archive.is_thin() {
        return Err(Error::new(&file.name, "thin archives are not supported"));
    }
    let mut members = Vec::new();
    for member in archive.members() {
        let member = member.in_file(&file.name, "malformed archive")?;
        let member_name = String::from_utf8_lossy(member.name()).into_owned();
        let name = format!("{}({})", file.name, member_name);
        let data = member.data(&*file.data).in_file(&name, "malformed archive member")?;
        match FileKind::parse(data) {
            Ok(FileKind::MachO32 | FileKind::MachO64) => members.push(Member { name, data, unusable: None }),
            _ if is_bitcode(data) => return Err(bitcode_error(&name)),
            _ => {}
        }
    }
    Ok(members)
}

/// The external names a member that cannot be linked defines, read with
/// its own word size: enough to say that it was needed.
pub fn defined_names(data: &[u8]) -> Vec<&[u8]> {
    use object::{Object as _, ObjectSymbol as _};
    let Ok(file) = object::File::parse(data) else { return Vec::new() };
    file.symbols().filter(|s| s.is_global() && s.is_definition()).filter_map(|s| s.name_bytes().ok()).collect()
}

fn header_type(name: &str, data: &[u8]) -> Result<(macho::CpuType, macho::FileType)> {
    match FileKind::parse(data) {
        Ok(FileKind::MachO64) => {
            let h = MachHeader64::<LE>::parse(data, 0).in_file(name, "malformed Mach-O header")?;
            let e = h.endian().in_file(name, "big-endian Mach-O")?;
            Ok((h.cputype(e), h.filetype(e)))
        }
        Ok(FileKind::MachO32) => {
            let h = MachHeader32::<LE>::parse(data, 0).in_file(name, "malformed Mach-O header")?;
            let e = h.endian().in_file(name, "big-endian Mach-O")?;
            Ok((h.cputype(e), h.filetype(e)))
        }
        _ => Err(Error::new(name, "not a Mach-O object")),
    }
}

/// The architecture and file type, checked for every member of every
/// archive even when the member is never loaded: a wrong-architecture
/// archive is a mistake on the command line, whether or not it is needed.
fn check_header(name: &str, data: &[u8], arch: Arch) -> Result<()> {
    let (cputype, filetype) = header_type(name, data)?;
    if cputype != arch.cputype() {
        let theirs = Arch::from_cputype(cputype).map_or_else(|| format!("CPU type {:#x}", cputype.0), |a| a.name().to_string());
        return Err(Error::new(name, format!("built for {theirs}, but this link is for {}", arch.name())));
    }
    if filetype != macho::MH_OBJECT {
        return Err(Error::new(name, format!("not a relocatable object (file type {})", filetype.0)));
    }
    Ok(())
}

pub fn parse_object<'a>(name: &str, data: &'a [u8], arch: Arch) -> Result<Object<'a>> {
    check_header(name, data, arch)?;
    match arch {
        Arch::X86_64 => parse_macho::<MachHeader64<LE>>(name, data, arch),
        Arch::I386 => parse_macho::<MachHeader32<LE>>(name, data, arch),
    }
}

fn parse_macho<'a, Mach: MachHeader<Endian = LE>>(name: &str, data: &'a [u8], arch: Arch) -> Result<Object<'a>> {
    let malformed = "malformed Mach-O object";
    let header = Mach::parse(data, 0).in_file(name, malformed)?;
    let endian = header.endian().in_file(name, "big-endian Mach-O")?;
    let mut commands = header.load_commands(endian, data, 0).in_file(name, malformed)?;
    let mut raw_sections: Vec<&'a Mach::Section> = Vec::new();
    let mut symtab = None;
    let mut indirect: &[object::U32<LE, macho::IndirectSymbol>] = &[];
    while let Some(command) = commands.next().in_file(name, malformed)? {
        if let Some((segment, section_data)) = Mach::Segment::from_command(command).in_file(name, malformed)? {
            raw_sections.extend(segment.sections(endian, section_data).in_file(name, malformed)?);
        } else if let Some(cmd) = command.symtab().in_file(name, malformed)? {
            if symtab.is_some() {
                return Err(Error::new(name, "more than one LC_SYMTAB"));
            }
            symtab = Some(cmd.symbols::<Mach, _>(endian, data).in_file(name, malformed)?);
        } else if let Some(cmd) = command.dysymtab().in_file(name, malformed)? {
            indirect = cmd.indirect_symbols(endian, data).in_file(name, malformed)?;
        }
    }
    if raw_sections.len() > usize::from(macho::MAX_SECT) {
        return Err(Error::new(name, "more than 255 sections"));
    }

    let mut sections = Vec::with_capacity(raw_sections.len());
    for s in &raw_sections {
        let segname = String::from_utf8_lossy(s.segment_name()).into_owned();
        let sectname = String::from_utf8_lossy(s.name()).into_owned();
        let addr: u64 = s.addr(endian).into();
        let size: u64 = s.size(endian).into();
        let what = |w: &str| Error::new(name, format!("section {segname},{sectname}: {w}"));
        let limit = if arch.is_64() { u64::MAX } else { u64::from(u32::MAX) };
        if addr.checked_add(size).is_none_or(|end| end > limit) {
            return Err(what("address range overflows"));
        }
        let align = s.align(endian);
        // ld64 links alignments up to 2^15, more than a page; the layout
        // aligns by absolute address, so it honours them too.
        if align > MAX_ALIGN {
            return Err(what(&format!("alignment 2^{align} is more than 2^{MAX_ALIGN}")));
        }
        let flags = s.flags(endian);
        // A zero-fill section has no bytes in the file, whatever its
        // offset says.
        let sdata = if crate::model::is_zerofill(flags.typ()) {
            &[][..]
        } else {
            s.data(endian, data, s.offset(endian).into()).in_file(name, malformed)?
        };
        sections.push(Section {
            dropped: is_dropped(&segname, &sectname, flags),
            segname,
            sectname,
            addr,
            size,
            align,
            flags,
            data: sdata,
            fixups: Vec::new(),
        });
    }

    let mut symbols = Vec::new();
    if let Some(table) = &symtab {
        for nlist in table.iter() {
            let sym_name = nlist.name(endian, table.strings()).in_file(name, malformed)?;
            let n_type = nlist.n_type();
            let value: u64 = nlist.n_value(endian).into();
            let desc = nlist.n_desc(endian);
            let display = String::from_utf8_lossy(sym_name);
            let def = if n_type.is_stab() {
                Def::Other
            } else {
                match n_type.typ() {
                    // The alignment is in bits 8-11 of n_desc
                    // (`GET_COMM_ALIGN`, mach-o/nlist.h).
                    macho::N_UNDF if n_type.is_ext() && value != 0 => {
                        if value > arch.max_image() {
                            return Err(Error::new(name, format!("common symbol {display}: size {value:#x} does not fit in an image")));
                        }
                        Def::Common { size: value, align: u32::from((desc.0 >> 8) & 0xf) }
                    }
                    macho::N_UNDF => Def::Undefined,
                    macho::N_ABS => Def::Absolute(value),
                    macho::N_SECT => {
                        let ordinal = usize::from(nlist.n_sect());
                        let section = ordinal
                            .checked_sub(1)
                            .filter(|&i| i < sections.len())
                            .ok_or_else(|| Error::new(name, format!("symbol {display}: no section {ordinal}")))?;
                        let s = &sections[section];
                        if value < s.addr || value > s.end() {
                            return Err(Error::new(name, format!("symbol {display}: value {value:#x} outside {}", s.full_name())));
                        }
                        Def::Section { section, value }
                    }
                    _ => Def::Other,
                }
            };
            symbols.push(Symbol {
                name: sym_name,
                def,
                external: !n_type.is_stab() && n_type.is_ext(),
                private_extern: !n_type.is_stab() && n_type.is_pext(),
                weak: desc.contains(macho::N_WEAK_DEF),
                no_dead_strip: desc.contains(macho::N_NO_DEAD_STRIP),
                alt_entry: desc.contains(macho::N_ALT_ENTRY),
            });
        }
    }

    let subsections_via_symbols = header.flags(endian).contains(macho::MH_SUBSECTIONS_VIA_SYMBOLS);
    let indirect: Vec<u32> = indirect.iter().map(|e| e.get(endian).0).collect();
    let mut all_fixups = Vec::with_capacity(raw_sections.len());
    let view = fixup::ObjectView::new(name, &sections, &symbols, subsections_via_symbols);
    for (index, s) in raw_sections.iter().enumerate() {
        if sections[index].dropped {
            continue;
        }
        let fixups = if sections[index].flags.typ() == macho::S_NON_LAZY_SYMBOL_POINTERS {
            fixup::pointers(arch, &view, index, &indirect, s.reserved1(endian))?
        } else {
            let relocs = s.relocations(endian, data).in_file(name, malformed)?;
            fixup::decode(arch, &view, index, relocs)?
        };
        all_fixups.push((index, fixups));
    }
    drop(view);
    for (index, fixups) in all_fixups {
        sections[index].fixups = fixups;
    }

    Ok(Object { name: name.to_string(), sections, symbols, subsections_via_symbols })
}

/// Sections a static image without unwinding or debug info has no use for.
/// Debug sections are for dsymutil; `__compact_unwind` and `__eh_frame` feed
/// ld64's `__unwind_info`, which only an unwinder reads, and hello is built
/// with `panic = "abort"`. `__LLVM` holds embedded bitcode and the command
/// line that made it (`-Zbuild-std` objects carry them), for ld64's bitcode
/// bundle only. Their relocations are not even decoded.
fn is_dropped(segname: &str, sectname: &str, flags: macho::SectionFlags) -> bool {
    flags.contains(macho::S_ATTR_DEBUG)
        || segname == "__DWARF"
        || segname == "__LLVM"
        || (segname == "__LD" && sectname == "__compact_unwind")
        || (segname == "__TEXT" && sectname == "__eh_frame")
}
