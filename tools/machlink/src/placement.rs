//! Where an input section's contents go in a static image: the r-x
//! `__TEXT` segment, the rw- `__DATA` segment, or nowhere, with the reason.
//!
//! A static image has no dyld and no C runtime, so what only they would
//! act on cannot work: lazy pointers and stubs (bound by dyld),
//! initialiser and terminator lists (run by dyld or crt1), and
//! thread-local variables (allocated per thread by dyld's `tlv_get_addr`).
//! Non-lazy pointers can: the linker fills them, as ld64 does for a
//! target in the image.

use object::macho;

use crate::model::Section;

/// In image order: `__TEXT`, `__DATA`, then segments the inputs name
/// themselves (`__FOO,__bar`), each its own rw- segment, in the order the
/// inputs first mention them, as ld64 lays them out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Segment {
    Text,
    Data,
    Custom,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub segment: Segment,
    pub segname: String,
    pub sectname: String,
    /// The output section's type.
    pub typ: macho::SectionType,
    /// Order inside the segment, as ld64 sorts `__DATA`: pointers first,
    /// then initialised data, then zero-fill, which must come last because
    /// the file holds none of it.
    pub rank: u8,
}

impl Placement {
    pub fn is_zerofill(&self) -> bool {
        crate::model::is_zerofill(self.typ)
    }
}

/// The GOT machlink makes for x86_64 `GOT` references (ld64's name).
pub fn got() -> Placement {
    Placement { segment: Segment::Data, segname: "__DATA".into(), sectname: "__got".into(), typ: macho::S_REGULAR, rank: 0 }
}

fn is_plain(typ: macho::SectionType) -> bool {
    matches!(
        typ,
        macho::S_REGULAR
            | macho::S_CSTRING_LITERALS
            | macho::S_4BYTE_LITERALS
            | macho::S_8BYTE_LITERALS
            | macho::S_16BYTE_LITERALS
            | macho::S_LITERAL_POINTERS
    )
}

/// The placement of `section`, or why it cannot be in a static image.
pub fn of(section: &Section<'_>) -> Result<Placement, String> {
    let typ = section.flags.typ();
    let named = |segment, rank, typ| Placement {
        segment,
        segname: section.segname.clone(),
        sectname: section.sectname.clone(),
        typ,
        rank,
    };
    let data_segment = matches!(section.segname.as_str(), "__DATA" | "__DATA_CONST");
    // Segments an executable has for other purposes, or that only dyld
    // gives meaning to, cannot take an input's sections.
    let custom = !data_segment && !matches!(section.segname.as_str(), "__TEXT" | "__PAGEZERO" | "__LINKEDIT" | "__IMPORT" | "");
    match typ {
        macho::S_THREAD_LOCAL_REGULAR
        | macho::S_THREAD_LOCAL_ZEROFILL
        | macho::S_THREAD_LOCAL_VARIABLES
        | macho::S_THREAD_LOCAL_VARIABLE_POINTERS
        | macho::S_THREAD_LOCAL_INIT_FUNCTION_POINTERS => {
            Err("holds thread-local variables, which need dyld, and a static image has none".into())
        }
        macho::S_MOD_INIT_FUNC_POINTERS | macho::S_MOD_TERM_FUNC_POINTERS => {
            Err("lists initialisers or terminators, which only dyld or a C runtime would run".into())
        }
        macho::S_LAZY_SYMBOL_POINTERS | macho::S_LAZY_DYLIB_SYMBOL_POINTERS | macho::S_SYMBOL_STUBS => {
            Err("is for lazy binding, which needs dyld".into())
        }
        // Filled at link time; the image has no indirect symbol table
        // (LC_DYSYMTAB) for the section type to refer to, hence S_REGULAR.
        macho::S_NON_LAZY_SYMBOL_POINTERS => Ok(Placement {
            segment: Segment::Data,
            segname: "__DATA".into(),
            sectname: "__nl_symbol_ptr".into(),
            typ: macho::S_REGULAR,
            rank: 0,
        }),
        macho::S_ZEROFILL | macho::S_GB_ZEROFILL if data_segment => Ok(named(Segment::Data, 2, macho::S_ZEROFILL)),
        macho::S_ZEROFILL | macho::S_GB_ZEROFILL if custom => Ok(named(Segment::Custom, 2, macho::S_ZEROFILL)),
        t if is_plain(t) && section.segname == "__TEXT" && t != macho::S_LITERAL_POINTERS => Ok(named(Segment::Text, 0, t)),
        t if is_plain(t) && data_segment => Ok(named(Segment::Data, 1, t)),
        t if is_plain(t) && custom => Ok(named(Segment::Custom, 1, t)),
        _ => Err(format!("(type {:#x}) cannot go in a static image", typ.0)),
    }
}
