//! Objects the linker makes itself, so that every later stage sees only
//! objects: the symbols ld64 defines for every executable, and the
//! zero-filled storage of common symbols.

use std::collections::HashMap;

use object::macho;

use crate::arch::Arch;
use crate::model::{Def, Object, Section, Symbol};

/// The Mach-O header's own address. ld64 defines it for every main
/// executable (`DSOHandleAtom::_s_atomExecutable`, src/ld/InputFiles.cpp)
/// and, in a non-PIE image, as an absolute symbol (LinkEditClassic.hpp);
/// static programs use it to find their own load commands. The image is
/// not slid, so the header is at `__TEXT`'s fixed address, which is where
/// `__PAGEZERO` ends.
pub const MH_EXECUTE_HEADER: &[u8] = b"__mh_execute_header";

/// The same address under the name C++ runtimes pass to `__cxa_atexit`
/// (`DSOHandleAtom::_s_atomAll`, same file).
pub const DSO_HANDLE: &[u8] = b"___dso_handle";

pub fn linker_symbols(arch: Arch, defined: impl Fn(&[u8]) -> bool) -> Option<Object<'static>> {
    let symbols: Vec<Symbol<'static>> = [MH_EXECUTE_HEADER, DSO_HANDLE]
        .into_iter()
        .filter(|name| !defined(name))
        .map(|name| Symbol {
            name,
            def: Def::Absolute(arch.page_zero_size()),
            external: true,
            private_extern: false,
            weak: false,
            no_dead_strip: false,
            alt_entry: false,
        })
        .collect();
    if symbols.is_empty() {
        return None;
    }
    Some(Object { name: "<linker-defined symbols>".into(), sections: Vec::new(), symbols, subsections_via_symbols: true })
}

/// One zero-fill `__DATA,__common` section holding every common symbol no
/// input defines for real, each as large and as aligned as its largest
/// tentative definition, in the order the inputs first name them; a real
/// definition anywhere wins over them (ld64: `SymbolTable::addByName`,
/// src/ld/SymbolTable.cpp). Each symbol starts its own atom, so an
/// unused common is dead-stripped like any other.
pub fn commons<'a>(objects: &[Object<'a>], defined: impl Fn(&[u8]) -> bool) -> Option<Object<'a>> {
    let mut order: Vec<&'a [u8]> = Vec::new();
    let mut wanted: HashMap<&'a [u8], (u64, u32)> = HashMap::new();
    for object in objects {
        for symbol in &object.symbols {
            let Def::Common { size, align } = symbol.def else { continue };
            if !symbol.external || defined(symbol.name) {
                continue;
            }
            let entry = wanted.entry(symbol.name).or_insert_with(|| {
                order.push(symbol.name);
                (0, 0)
            });
            entry.0 = entry.0.max(size);
            entry.1 = entry.1.max(align);
        }
    }
    if order.is_empty() {
        return None;
    }
    let mut symbols = Vec::new();
    let mut cursor = 0u64;
    let mut max_align = 0;
    for name in order {
        let (size, align) = wanted[name];
        // The sections' limit, 2^15, which is also all that
        // `GET_COMM_ALIGN`'s 4 bits can say.
        let align = align.min(crate::input::MAX_ALIGN);
        max_align = max_align.max(align);
        // Saturating: a hostile size makes the section too large for the
        // layout to accept, never an overflow here.
        cursor = cursor.checked_next_multiple_of(1 << align).unwrap_or(u64::MAX);
        symbols.push(Symbol {
            name,
            def: Def::Section { section: 0, value: cursor },
            external: true,
            private_extern: false,
            weak: false,
            no_dead_strip: false,
            alt_entry: false,
        });
        cursor = cursor.saturating_add(size);
    }
    Some(Object {
        name: "<common symbols>".into(),
        sections: vec![Section {
            segname: "__DATA".into(),
            sectname: "__common".into(),
            addr: 0,
            size: cursor,
            align: max_align,
            flags: macho::SectionFlags(0).with_type(macho::S_ZEROFILL),
            data: &[],
            fixups: Vec::new(),
            dropped: false,
        }],
        symbols,
        subsections_via_symbols: true,
    })
}
