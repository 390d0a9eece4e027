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

use crate::arch::{Arch, PAGE_SIZE};
use crate::error::{Context, Error, Result};
use crate::fixup;
use crate::model::{Def, Object, Section, Symbol};

/// A file named on the command line, read whole.
pub struct InputFile {
    pub name: String,
    pub data: Vec<u8>,
}

/// An archive with its Mach-O members located but not yet parsed.
pub struct Archive<'a> {
    pub members: Vec<Member<'a>>,
}

pub struct Member<'a> {
    pub name: String,
    pub data: &'a [u8],
}

pub struct Inputs<'a> {
    pub arch: Arch,
    pub objects: Vec<Object<'a>>,
    pub archives: Vec<Archive<'a>>,
}

enum Kind<'a> {
    Object(&'a InputFile),
    Archive(Vec<Member<'a>>),
}

/// Sorts the inputs into objects and archives, settles the architecture
/// (`-arch`, else the first Mach-O input's) and parses the objects.
pub fn read(files: &[InputFile], arch: Option<Arch>) -> Result<Inputs<'_>> {
    let mut kinds = Vec::new();
    for file in files {
        kinds.push(match FileKind::parse(&*file.data) {
            Ok(FileKind::Archive) => Kind::Archive(archive_members(file)?),
            Ok(FileKind::MachO32 | FileKind::MachO64) => Kind::Object(file),
            Ok(FileKind::Elf32 | FileKind::Elf64) => {
                return Err(Error::new(&file.name, "is an ELF file, not a Mach-O object"));
            }
            Ok(FileKind::MachOFat32 | FileKind::MachOFat64) => {
                return Err(Error::new(&file.name, "universal (fat) files are not supported: pass a thin object"));
            }
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
            Kind::Object(file) => objects.push(parse_object(&file.name, &file.data, arch)?),
            Kind::Archive(members) => {
                for m in &members {
                    check_header(&m.name, m.data, arch)?;
                }
                archives.push(Archive { members });
            }
        }
    }
    Ok(Inputs { arch, objects, archives })
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
/// keeps the Mach-O ones. rlibs also hold `lib.rmeta`, rustc's metadata,
/// which no linker reads.
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
        if member_name.ends_with(".rmeta") {
            continue;
        }
        match FileKind::parse(data) {
            Ok(FileKind::MachO32 | FileKind::MachO64) => members.push(Member { name, data }),
            _ => return Err(Error::new(name, "archive member is not a Mach-O object")),
        }
    }
    Ok(members)
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
        // ld64 caps section alignment at 2^15; an image laid out in pages
        // cannot honour more than a page anyway.
        if u64::checked_shl(1, align).is_none_or(|a| a > PAGE_SIZE) {
            return Err(what(&format!("alignment 2^{align} is more than a page")));
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
