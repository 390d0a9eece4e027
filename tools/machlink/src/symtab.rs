//! The image's symbol table: the named symbols of the atoms that made it
//! in, so a disassembler shows `_start` and friends. Nothing at run time
//! reads it; XNU's loader ignores `LC_SYMTAB` for a static image.

use crate::atoms::{Atoms, Place};
use crate::layout::Layout;
use crate::model::Def;
use crate::resolve::{Resolution, SymRef};

pub struct OutSymbol {
    pub strx: u32,
    pub external: bool,
    /// 1-based output section ordinal.
    pub sect: u8,
    pub value: u64,
}

#[derive(Default)]
pub struct Symtab {
    /// Locals first, then externals, each in image order.
    pub symbols: Vec<OutSymbol>,
    pub strings: Vec<u8>,
}

/// Assembler temporaries (`L`, `.L`) and linker-private labels (`l`) are
/// not meant to survive the link, as ld64 drops them.
fn kept_name(name: &[u8]) -> bool {
    !(name.is_empty() || name.starts_with(b"L") || name.starts_with(b"l") || name.starts_with(b".L"))
}

/// One pass over every object's symbols (a pass per atom made links
/// quadratic), each kept if its atom is in the image.
pub fn collect(res: &Resolution<'_>, atoms: &Atoms, layout: &Layout) -> Symtab {
    let mut locals = Vec::new();
    let mut externals = Vec::new();
    for (obj, object) in res.objects.iter().enumerate() {
        for (sym, symbol) in object.symbols.iter().enumerate() {
            let Def::Section { section, value } = symbol.def else { continue };
            if !kept_name(symbol.name) {
                continue;
            }
            let Some(id) = atoms.find(obj, section, value) else { continue };
            let Some((_, out)) = layout.atoms[id] else { continue };
            if symbol.external && res.definition(obj, sym) != Some(SymRef { obj, sym }) {
                continue;
            }
            let Some(address) = layout.address(atoms, Place::Atom(id, value), 0) else {
                continue;
            };
            let entry = (id, symbol.name, out, u64::try_from(address).unwrap_or(0));
            if symbol.external && !symbol.private_extern {
                externals.push(entry);
            } else {
                locals.push(entry);
            }
        }
    }
    // By atom, then by position in the input's symbol table (the sort is
    // stable): the same order on every run.
    locals.sort_by_key(|e| e.0);
    externals.sort_by_key(|e| e.0);
    let mut table = Symtab { symbols: Vec::new(), strings: vec![0] };
    for (list, external) in [(locals, false), (externals, true)] {
        for (_, name, out, value) in list {
            let strx = u32::try_from(table.strings.len()).unwrap_or(0);
            table.strings.extend_from_slice(name);
            table.strings.push(0);
            table.symbols.push(OutSymbol { strx, external, sect: u8::try_from(out + 1).unwrap_or(0), value });
        }
    }
    table
}
