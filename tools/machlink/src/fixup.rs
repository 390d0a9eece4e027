//! What each relocation entry asks for, decoded once per object into a
//! [`Fixup`] that names its target independently of the object's layout.
//!
//! The conventions differ per architecture; checked against what LLVM's
//! assembler emits and against how ld64 reads them
//! (`Section<A>::addRelocFixup`, src/ld/parsers/macho_relocatable_file.cpp):
//!
//! - x86_64 never uses scattered entries. An extern entry's field holds the
//!   addend only. A pc-relative field is relative to the end of the 4-byte
//!   field plus `N` bytes of immediate that follow it (`SIGNED_N`), so the
//!   value is `S + A - (P + 4 + N)` with `A = stored + N`. A non-extern
//!   entry's field already holds the displacement in the object's address
//!   space, so its target is `P + 4 + N + stored` there. `SUBTRACTOR` is
//!   always followed by the `UNSIGNED` entry that gives the minuend; the
//!   field holds the addend (extern minuend) or the minuend's object
//!   address (non-extern).
//! - i386 keeps the "as if linked at the object's addresses" convention: a
//!   non-extern field holds the target address (absolute) or the target
//!   minus the end of the field (pc-relative); an extern field holds the
//!   addend, minus the end of the field when pc-relative. A scattered entry
//!   (used for `symbol + offset` and for differences) carries `r_value`,
//!   the address that says which block the target belongs to, but no
//!   section number: see [`Decoder::section_at`].
//!
//! A relocation kind machlink does not implement is kept as
//! [`Action::Unsupported`] and reported only if the code holding it is
//! linked in: unreachable archive code may use anything.

mod i386;
mod x86_64;

use object::{LittleEndian as LE, macho};

use crate::arch::Arch;
use crate::error::{Error, Result};
use crate::model::{Action, Def, Fixup, Section, Symbol, Target, Via};

/// What the decoder needs to know of the object beyond one section.
pub struct ObjectView<'s, 'a> {
    pub file: &'s str,
    pub sections: &'s [Section<'a>],
    pub symbols: &'s [Symbol<'a>],
    /// `MH_SUBSECTIONS_VIA_SYMBOLS`: see [`Decoder::section_at`].
    pub atomized: bool,
    /// `(value, section)` of every symbol defined in a section, sorted:
    /// which sections name an address, found by binary search rather than
    /// by a scan of the symbol table per relocation.
    pub placed: Vec<(u64, usize)>,
    /// `blocks[section]`: `(value, symbol)` of each symbol that starts a
    /// block there, sorted by value then symbol number.
    pub blocks: Vec<Vec<(u64, usize)>>,
}

impl<'s, 'a> ObjectView<'s, 'a> {
    pub fn new(file: &'s str, sections: &'s [Section<'a>], symbols: &'s [Symbol<'a>], atomized: bool) -> Self {
        let mut placed: Vec<(u64, usize)> = symbols
            .iter()
            .filter_map(|s| match s.def {
                Def::Section { section, value } => Some((value, section)),
                _ => None,
            })
            .collect();
        placed.sort_unstable();
        let mut blocks = vec![Vec::new(); sections.len()];
        for (index, s) in symbols.iter().enumerate() {
            if let Def::Section { section, value } = s.def
                && !s.alt_entry
                && !(s.name.is_empty() || s.name.starts_with(b"L") || s.name.starts_with(b".L"))
            {
                blocks[section].push((value, index));
            }
        }
        for list in &mut blocks {
            list.sort_unstable();
        }
        ObjectView { file, sections, symbols, atomized, placed, blocks }
    }

    fn names(&self, section: usize, addr: u64) -> bool {
        self.placed.binary_search(&(addr, section)).is_ok()
    }
}

/// The decoded fixups of `sections[index]`, sorted by offset.
pub fn decode(arch: Arch, object: &ObjectView<'_, '_>, index: usize, relocs: &[macho::Relocation<LE>]) -> Result<Vec<Fixup>> {
    let d = Decoder::new(object, index);
    let mut out = Vec::with_capacity(relocs.len());
    let mut i = 0;
    while i < relocs.len() {
        let r = relocs[i];
        let next = relocs.get(i + 1).copied();
        let (fixup, used) = match arch {
            Arch::X86_64 => d.x86_64(r.info(LE), next.map(|n| n.info(LE)))?,
            Arch::I386 if r.r_scattered(LE, macho::CPU_TYPE_X86) => d.i386_scattered(r.scattered_info(LE), next)?,
            Arch::I386 => (d.i386(r.info(LE))?, 1),
        };
        i += used;
        out.push(fixup);
    }
    out.sort_by_key(|f| f.offset);
    Ok(out)
}

/// The fixups of a non-lazy pointer section (`S_NON_LAZY_SYMBOL_POINTERS`:
/// i386's `__IMPORT,__pointers`, `__DATA,__nl_symbol_ptr`). Such a section
/// has no relocations: slot `i` points at the symbol named by entry
/// `reserved1 + i` of the indirect symbol table, or, for
/// `INDIRECT_SYMBOL_LOCAL`, at the object address it already holds, as ld64
/// reads it (`NonLazyPointerSection`, macho_relocatable_file.cpp). A static
/// image has no dyld to fill the slots, so the linker does.
pub fn pointers(arch: Arch, object: &ObjectView<'_, '_>, index: usize, indirect: &[u32], first: u32) -> Result<Vec<Fixup>> {
    let d = Decoder::new(object, index);
    let width: u8 = if arch.is_64() { 8 } else { 4 };
    if !d.section.size.is_multiple_of(u64::from(width)) {
        return Err(d.error(0, &format!("pointer section size is not a multiple of {width}")));
    }
    let mut out = Vec::new();
    for slot in 0..d.section.size / u64::from(width) {
        let offset = slot * u64::from(width);
        let entry = usize::try_from(u64::from(first) + slot)
            .ok()
            .and_then(|i| indirect.get(i))
            .ok_or_else(|| d.error(offset, "pointer slot past the indirect symbol table"))?;
        let entry = macho::IndirectSymbol(*entry);
        let target = match entry.index() {
            Some(sym) => d.symbol(offset, sym, 0)?,
            None if entry.is_abs() => continue,
            None => {
                let anchor = i128::from(d.stored(offset, width)?);
                match d.local(offset, 0, anchor, 0)? {
                    Ok(target) => target,
                    Err(why) => {
                        out.push(Fixup { offset, size: width, action: Action::Unsupported(why) });
                        continue;
                    }
                }
            }
        };
        out.push(Fixup { offset, size: width, action: Action::Apply { target, minus: None, pc_bias: None, via: Via::Direct } });
    }
    Ok(out)
}

/// Sections ld64 splits into one atom per element rather than at symbols.
fn split_by_content(section: &Section<'_>) -> bool {
    matches!(
        section.flags.typ(),
        macho::S_NON_LAZY_SYMBOL_POINTERS
            | macho::S_LITERAL_POINTERS
            | macho::S_CSTRING_LITERALS
            | macho::S_4BYTE_LITERALS
            | macho::S_8BYTE_LITERALS
            | macho::S_16BYTE_LITERALS
    )
}

struct Decoder<'v, 's, 'a> {
    object: &'v ObjectView<'s, 'a>,
    file: &'s str,
    sections: &'s [Section<'a>],
    section: &'s Section<'a>,
    /// `section`'s index in `sections`.
    index: usize,
    symbols: &'s [Symbol<'a>],
    atomized: bool,
}

/// Where a section-less address lies, as [`Decoder::section_at`] decides.
enum Found {
    Section(usize),
    Ambiguous(String),
    Nowhere,
}

impl<'v, 's, 'a> Decoder<'v, 's, 'a> {
    fn new(object: &'v ObjectView<'s, 'a>, index: usize) -> Self {
        Decoder {
            object,
            file: object.file,
            sections: object.sections,
            section: &object.sections[index],
            index,
            symbols: object.symbols,
            atomized: object.atomized,
        }
    }

    fn error(&self, offset: u64, what: &str) -> Error {
        Error::new(self.file, format!("{}+{offset:#x}: {what}", self.section.full_name()))
    }

    /// The field's stored value, sign-extended; the field must lie in the
    /// section's data.
    fn stored(&self, offset: u64, size: u8) -> Result<i64> {
        let bytes = usize::try_from(offset)
            .ok()
            .and_then(|start| self.section.data.get(start..start.checked_add(usize::from(size))?))
            .ok_or_else(|| self.error(offset, "relocation outside its section's data"))?;
        Ok(match *bytes {
            [a] => i64::from(a as i8),
            [a, b] => i64::from(i16::from_le_bytes([a, b])),
            [a, b, c, d] => i64::from(i32::from_le_bytes([a, b, c, d])),
            [a, b, c, d, e, f, g, h] => i64::from_le_bytes([a, b, c, d, e, f, g, h]),
            _ => return Err(self.error(offset, "bad relocation length")),
        })
    }

    fn symbol_index(&self, offset: u64, index: u32) -> Result<usize> {
        usize::try_from(index)
            .ok()
            .filter(|&i| i < self.symbols.len())
            .ok_or_else(|| self.error(offset, "relocation names a symbol past the symbol table"))
    }

    fn symbol(&self, offset: u64, index: u32, addend: i128) -> Result<Target> {
        let index = self.symbol_index(offset, index)?;
        let addend = i64::try_from(addend).map_err(|_| self.error(offset, "addend out of range"))?;
        Ok(Target::Symbol { index, addend })
    }

    /// The section an address with no section number belongs to. ld64
    /// (`Parser::sectionForAddress`) takes the section that holds it
    /// strictly inside, else a zero-size section at it, else a section it
    /// ends. An address that ends one section and starts the next is
    /// ambiguous, though: the end of a section is a real target (a label
    /// after its last byte), and once the two sections are placed apart
    /// in the image the two readings differ by whatever lies between.
    ///
    /// The object's own symbols settle it when one sits at that address in
    /// one of the two sections. Without one, the start of the next section
    /// is meant when the end of the first means nothing: when either is
    /// split by the linker into elements by content (pointer slots,
    /// literals, C strings: ld64 makes one atom per element, and
    /// assembler-local labels such as `L_x$non_lazy_ptr` or `L_.str`, which
    /// never reach the symbol table, name them), or when the object is
    /// built on `MH_SUBSECTIONS_VIA_SYMBOLS`, the promise that every
    /// address belongs to the block that starts at or before it (LLVM's
    /// constant-pool labels `LCPI` at the start of a `__const` are such
    /// addresses). In an object without that promise, each section moves
    /// as a whole and a label at the end of one is as likely as a label at
    /// the start of the next: refused rather than guessed.
    fn section_at(&self, addr: u64) -> Found {
        let inside = self.sections.iter().position(|s| s.addr <= addr && addr < s.end());
        let ends = self.sections.iter().position(|s| s.size > 0 && s.end() == addr);
        match (inside, ends) {
            (Some(b), Some(a)) if self.sections[b].addr == addr && a != b => {
                match (self.object.names(a, addr), self.object.names(b, addr)) {
                    (true, false) => Found::Section(a),
                    (false, true) => Found::Section(b),
                    (false, false)
                        if self.atomized || split_by_content(&self.sections[a]) || split_by_content(&self.sections[b]) =>
                    {
                        Found::Section(b)
                    }
                    _ => Found::Ambiguous(format!(
                        "relocation target {addr:#x} is both the end of {} and the start of {}, and no symbol there says which \
                         is meant (give the target a symbol)",
                        self.sections[a].full_name(),
                        self.sections[b].full_name()
                    )),
                }
            }
            (Some(b), _) => Found::Section(b),
            (None, _) => {
                let empty = self.sections.iter().position(|s| s.size == 0 && s.addr == addr);
                empty.or(ends).map_or(Found::Nowhere, Found::Section)
            }
        }
    }

    /// A target given by object address; `ordinal` is the section the
    /// entry names, or 0 when only the address says (scattered entries,
    /// local pointer slots). The inner `Err` is an ambiguity, refused only
    /// if the fixup is linked in. A target in a block that a global symbol
    /// starts is bound to that symbol by name, see [`Decoder::named`].
    fn local(&self, offset: u64, ordinal: u32, anchor: i128, addend: i128) -> Result<std::result::Result<Target, String>> {
        Ok(self.locate(offset, ordinal, anchor, addend, None)?.map(|t| self.named(offset, t)))
    }

    /// [`Decoder::local`] for a section-less target whose field's stored
    /// value, `meant`, is the address the code means (i386 scattered
    /// `VANILLA`: `r_value` only names a symbol's address, the field holds
    /// `symbol + offset`). When `meant` lies strictly inside a section that
    /// also holds the anchor, that is the section, whatever else starts at
    /// the anchor: `movl $L_end-4, %edi` with `L_end` ending `__const`
    /// means `__const`, though ld64's `sectionForAddress` reads `L_end` as
    /// the start of the next section and so points past the table once
    /// other objects' `__const` lies between.
    fn local_meant(&self, offset: u64, anchor: i128, addend: i128, meant: i128) -> Result<std::result::Result<Target, String>> {
        Ok(self.locate(offset, 0, anchor, addend, Some(meant))?.map(|t| self.named(offset, t)))
    }

    /// [`Decoder::local`] without binding by name: the subtrahend of a
    /// difference is a place in this very copy of the code (the PIC base a
    /// `call`/`pop` pair made), never another object's.
    fn local_here(&self, offset: u64, anchor: i128) -> Result<std::result::Result<Target, String>> {
        self.locate(offset, 0, anchor, 0, None)
    }

    fn locate(
        &self,
        offset: u64,
        ordinal: u32,
        anchor: i128,
        addend: i128,
        meant: Option<i128>,
    ) -> Result<std::result::Result<Target, String>> {
        let no_section = |a: i128| self.error(offset, &format!("relocation target {a:#x} is in no section"));
        let (section, anchor, addend) = if ordinal == 0 {
            let a = u64::try_from(anchor).map_err(|_| self.error(offset, "relocation target below address 0"))?;
            let inside = |s: &Section<'_>, m: i128| i128::from(s.addr) <= m && m < i128::from(s.end());
            let meant_section = meant.and_then(|m| self.sections.iter().position(|s| inside(s, m) && a >= s.addr && a <= s.end()));
            let section = match meant_section {
                Some(s) => s,
                None => match self.section_at(a) {
                    Found::Section(s) => s,
                    Found::Ambiguous(why) => return Ok(Err(why)),
                    Found::Nowhere => return Err(no_section(anchor)),
                },
            };
            (section, a, addend)
        } else {
            // The entry names the section, so the target moves with it
            // even when the address lies outside it (`leaq Ltab+32(%rip)`
            // past the section's end, `Ltab-8` before its start): anchored
            // at the nearest address in the section, the rest an addend.
            let index = usize::try_from(ordinal - 1).ok().filter(|&i| i < self.sections.len()).ok_or_else(|| no_section(anchor))?;
            let s = &self.sections[index];
            let a = anchor.clamp(i128::from(s.addr), i128::from(s.end()));
            (index, a as u64, addend + (anchor - a))
        };
        let addend = i64::try_from(addend).map_err(|_| self.error(offset, "addend out of range"))?;
        Ok(Ok(Target::Local { section, anchor, addend }))
    }

    /// A target by address inside a block that a global symbol starts
    /// becomes a reference to that symbol by name, as ld64 turns every
    /// address-based reference to a global atom into a by-name one
    /// (`Parser<A>::addFixups`, src/ld/parsers/macho_relocatable_file.cpp).
    /// It matters for a weak definition another object overrides: i386 PIC
    /// code reaches its own weak `_shared` through a `SECTDIFF` that names
    /// only an address, and must reach the copy that won, as direct
    /// references do. A block is the span from a symbol to the next in an
    /// object built on `MH_SUBSECTIONS_VIA_SYMBOLS`; without that promise
    /// only a symbol at the very address names the target. A reference
    /// from inside the block to itself stays on this copy.
    fn named(&self, offset: u64, target: Target) -> Target {
        let Target::Local { section, anchor, addend } = target else { return target };
        let starts = &self.object.blocks[section];
        let at = starts.partition_point(|&(v, _)| v <= anchor);
        let Some(&(value, _)) = at.checked_sub(1).map(|i| &starts[i]) else { return target };
        if value != anchor && !self.atomized {
            return target;
        }
        if section == self.index {
            let field = self.section.addr + offset;
            let next = starts.get(at).map_or(u64::MAX, |&(v, _)| v);
            if field >= value && field < next {
                return target;
            }
        }
        // Of several symbols at one address, the first global one.
        let first = starts.partition_point(|&(v, _)| v < value);
        let global = starts[first..at].iter().map(|&(_, sym)| sym).find(|&sym| self.symbols[sym].external);
        let addend = i64::try_from(anchor - value).ok().and_then(|d| addend.checked_add(d));
        match (global, addend) {
            (Some(index), Some(addend)) => Target::Symbol { index, addend },
            _ => target,
        }
    }

    fn unsupported(&self, offset: u64, size: u8, name: Option<&str>, r_type: u8, detail: String) -> Fixup {
        let name = name.map_or_else(|| format!("type {r_type}"), str::to_string);
        Fixup { offset, size, action: Action::Unsupported(format!("unsupported relocation {name}{detail}")) }
    }

    fn refused(offset: u64, size: u8, why: String) -> Fixup {
        Fixup { offset, size, action: Action::Unsupported(why) }
    }

    /// A reference to a thread-local variable: its storage is made per
    /// thread by dyld (`tlv_get_addr`, reached through the variable's
    /// descriptor), which a static image does not have.
    fn thread_local(&self, offset: u64, size: u8, symbol: u32) -> Fixup {
        let name = usize::try_from(symbol)
            .ok()
            .and_then(|i| self.symbols.get(i))
            .map_or_else(|| format!("#{symbol}"), Symbol::display);
        Self::refused(offset, size, format!("thread-local variable {name} needs dyld, which a static image does not have"))
    }

    fn apply(offset: u64, size: u8, target: Target, pc_bias: Option<u64>) -> Fixup {
        Fixup { offset, size, action: Action::Apply { target, minus: None, pc_bias, via: Via::Direct } }
    }
}
