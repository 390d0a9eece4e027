//! The image's own symbols, from `LC_SYMTAB` (mach-o/nlist.h): what a
//! debugger names addresses with. Only symbols defined in a section
//! (`N_SECT`), no debugging entries (`N_STAB`); nothing here decides
//! whether the image runs.

use super::ReadAt;

const LC_SYMTAB: u32 = 2;
const N_STAB: u8 = 0xe0;
const N_TYPE: u8 = 0x0e;
const N_SECT: u8 = 0x0e;

/// `(name, address)` of each defined symbol, in file order, with the C
/// compiler's leading underscore taken off (`__start` is the C name
/// `_start`). Empty where the image has no symbol table, or where it
/// cannot be read.
pub fn read(head: &[u8], read_at: ReadAt) -> Vec<(String, u64)> {
    let word = |b: &[u8], at: usize| b.get(at..at + 4).map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes")));
    let is64 = match word(head, 0) {
        Some(0xfeed_facf) => true,
        Some(0xfeed_face) => false,
        _ => return Vec::new(),
    };
    let (Some(ncmds), Some(sizeofcmds)) = (word(head, 16), word(head, 20)) else { return Vec::new() };
    let mut at = if is64 { 32 } else { 28 };
    let end = at + sizeofcmds as usize;
    let mut symtab = None;
    for _ in 0..ncmds {
        let (Some(cmd), Some(size)) = (word(head, at), word(head, at + 4)) else { break };
        if cmd == LC_SYMTAB {
            symtab = (|| Some((word(head, at + 8)?, word(head, at + 12)?, word(head, at + 16)?, word(head, at + 20)?)))();
        }
        if size < 8 || at + size as usize > end {
            break;
        }
        at += size as usize;
    }
    let Some((symoff, nsyms, stroff, strsize)) = symtab else { return Vec::new() };
    let entry = if is64 { 16 } else { 12 };
    // A debugging aid, not a loader: a table past any sane size is skipped.
    if nsyms > 1 << 20 || strsize > 1 << 26 {
        return Vec::new();
    }
    let mut table = vec![0u8; nsyms as usize * entry];
    let mut strings = vec![0u8; strsize as usize];
    if read_at(u64::from(symoff), &mut table).is_err() || read_at(u64::from(stroff), &mut strings).is_err() {
        return Vec::new();
    }
    table
        .chunks_exact(entry)
        .filter(|n| n[4] & N_STAB == 0 && n[4] & N_TYPE == N_SECT)
        .filter_map(|n| {
            let strx = u32::from_le_bytes(n[..4].try_into().expect("4 bytes")) as usize;
            let value = if is64 { u64::from_le_bytes(n[8..16].try_into().expect("8 bytes")) } else { u64::from(u32::from_le_bytes(n[8..12].try_into().expect("4 bytes"))) };
            let name = strings.get(strx..)?.split(|&b| b == 0).next()?;
            let name = name.strip_prefix(b"_").unwrap_or(name);
            (!name.is_empty()).then(|| (String::from_utf8_lossy(name).into_owned(), value))
        })
        .collect()
}
