//! What each relocation entry asks for, decoded once per object into a
//! [`Fixup`] that names its target independently of the object's layout.
//!
//! The conventions differ per architecture; checked against what LLVM's
//! assembler emits (`llvm-mc -triple {x86_64,i386}-apple-macosx`):
//!
//! - x86_64 never uses scattered entries. An extern entry's field holds the
//!   addend only. A pc-relative field is relative to the end of the 4-byte
//!   field plus `N` bytes of immediate that follow it (`SIGNED_N`), so the
//!   value is `S + A - (P + 4 + N)` with `A = stored + N`. A non-extern
//!   entry's field already holds the displacement in the object's address
//!   space, so its target is `P + 4 + N + stored` there.
//! - i386 keeps the "as if linked at the object's addresses" convention: a
//!   non-extern field holds the target address (absolute) or the target
//!   minus the end of the field (pc-relative); an extern field holds the
//!   addend, minus the end of the field when pc-relative. A scattered entry
//!   (used for `symbol + offset` and for differences) also carries
//!   `r_value`, the address that says which block the target belongs to.
//!
//! A relocation kind machlink does not implement is kept as
//! [`Action::Unsupported`] and reported only if the code holding it is
//! linked in: unreachable archive code may use anything.

use object::{LittleEndian as LE, macho};

use crate::arch::Arch;
use crate::error::{Error, Result};
use crate::input::{Section, Symbol};

#[derive(Clone, Debug)]
pub struct Fixup {
    /// Offset of the field in its section.
    pub offset: u64,
    /// Width of the field in bytes: 1, 2, 4 or 8.
    pub size: u8,
    pub action: Action,
}

#[derive(Clone, Debug)]
pub enum Action {
    /// Store `target - minus`, less `P + bias` when pc-relative (`P` being
    /// the field's final address).
    Apply { target: Target, minus: Option<Target>, pc_bias: Option<u64> },
    Unsupported(String),
}

#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// `symbols[index] + addend`, the symbol resolved across objects.
    Symbol { index: usize, addend: i64 },
    /// The final address of object address `anchor` in `sections[section]`,
    /// plus `addend`. `anchor` picks the block the target moves with.
    Local { section: usize, anchor: u64, addend: i64 },
}

pub fn decode(
    arch: Arch,
    file: &str,
    sections: &[Section<'_>],
    index: usize,
    symbols: &[Symbol<'_>],
    relocs: &[macho::Relocation<LE>],
) -> Result<Vec<Fixup>> {
    let d = Decoder { file, sections, section: &sections[index], symbols };
    let mut out = Vec::with_capacity(relocs.len());
    let mut i = 0;
    while i < relocs.len() {
        let r = relocs[i];
        i += 1;
        let fixup = match arch {
            Arch::X86_64 => d.x86_64(r.info(LE))?,
            Arch::I386 if r.r_scattered(LE, macho::CPU_TYPE_X86) => {
                let s = r.scattered_info(LE);
                let pair = matches!(s.r_type, macho::GENERIC_RELOC_SECTDIFF | macho::GENERIC_RELOC_LOCAL_SECTDIFF);
                let next = if pair { relocs.get(i).copied() } else { None };
                if pair {
                    i += 1;
                }
                d.i386_scattered(s, next)?
            }
            Arch::I386 => d.i386(r.info(LE))?,
        };
        out.push(fixup);
    }
    Ok(out)
}

struct Decoder<'s, 'a> {
    file: &'s str,
    sections: &'s [Section<'a>],
    section: &'s Section<'a>,
    symbols: &'s [Symbol<'a>],
}

impl Decoder<'_, '_> {
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

    fn symbol(&self, offset: u64, index: u32, addend: i128) -> Result<Target> {
        let index = usize::try_from(index).ok().filter(|&i| i < self.symbols.len());
        let index = index.ok_or_else(|| self.error(offset, "relocation names a symbol past the symbol table"))?;
        let addend = i64::try_from(addend).map_err(|_| self.error(offset, "addend out of range"))?;
        Ok(Target::Symbol { index, addend })
    }

    /// A target given by object address; `ordinal` is the section the
    /// entry names, or 0 to find the section holding `anchor`.
    fn local(&self, offset: u64, ordinal: u32, anchor: i128, addend: i128) -> Result<Target> {
        let anchor = u64::try_from(anchor).map_err(|_| self.error(offset, "relocation target below address 0"))?;
        let holds = |s: &Section<'_>| anchor >= s.addr && anchor <= s.end();
        let section = if ordinal == 0 {
            self.sections.iter().position(|s| anchor >= s.addr && anchor < s.end()).or_else(|| self.sections.iter().position(holds))
        } else {
            usize::try_from(ordinal - 1).ok().filter(|&i| self.sections.get(i).is_some_and(holds))
        };
        let section = section.ok_or_else(|| self.error(offset, &format!("relocation target {anchor:#x} is in no section")))?;
        let addend = i64::try_from(addend).map_err(|_| self.error(offset, "addend out of range"))?;
        Ok(Target::Local { section, anchor, addend })
    }

    fn unsupported(&self, offset: u64, size: u8, name: Option<&str>, r_type: u8, detail: String) -> Fixup {
        let name = name.map_or_else(|| format!("type {r_type}"), str::to_string);
        Fixup { offset, size, action: Action::Unsupported(format!("unsupported relocation {name}{detail}")) }
    }

    fn x86_64(&self, r: macho::RelocationInfo) -> Result<Fixup> {
        let offset = u64::from(r.r_address);
        let size = 1u8 << r.r_length;
        let p = i128::from(self.section.addr) + i128::from(offset);
        let name = macho::NAMES_X86_64_RELOC.name(r.r_type);
        let bias = match r.r_type {
            macho::X86_64_RELOC_SIGNED | macho::X86_64_RELOC_BRANCH => Some(4),
            macho::X86_64_RELOC_SIGNED_1 => Some(5),
            macho::X86_64_RELOC_SIGNED_2 => Some(6),
            macho::X86_64_RELOC_SIGNED_4 => Some(8),
            macho::X86_64_RELOC_UNSIGNED => None,
            _ => return Ok(self.unsupported(offset, size, name, r.r_type.0, String::new())),
        };
        let shape_ok = match bias {
            Some(_) => r.r_pcrel && r.r_length == 2,
            None => !r.r_pcrel && (r.r_length == 2 || r.r_length == 3),
        };
        if !shape_ok {
            let detail = format!(" with pcrel={} length={}", u8::from(r.r_pcrel), r.r_length);
            return Ok(self.unsupported(offset, size, name, r.r_type.0, detail));
        }
        if !r.r_extern && r.r_symbolnum == 0 {
            return Err(self.error(offset, "non-extern relocation with no section"));
        }
        let stored = i128::from(self.stored(offset, size)?);
        let target = match (r.r_extern, bias) {
            (true, Some(b)) => self.symbol(offset, r.r_symbolnum, stored + i128::from(b) - 4)?,
            (true, None) => self.symbol(offset, r.r_symbolnum, stored)?,
            (false, Some(b)) => self.local(offset, r.r_symbolnum, p + i128::from(b) + stored, 0)?,
            (false, None) => self.local(offset, r.r_symbolnum, stored, 0)?,
        };
        Ok(Fixup { offset, size, action: Action::Apply { target, minus: None, pc_bias: bias } })
    }

    fn i386(&self, r: macho::RelocationInfo) -> Result<Fixup> {
        let offset = u64::from(r.r_address);
        let size = 1u8 << r.r_length;
        let name = macho::NAMES_GENERIC_RELOC.name(r.r_type);
        if r.r_type != macho::GENERIC_RELOC_VANILLA || r.r_length == 3 {
            return Ok(self.unsupported(offset, size, name, r.r_type.0, String::new()));
        }
        let stored = i128::from(self.stored(offset, size)?);
        let end_of_field = i128::from(self.section.addr) + i128::from(offset) + i128::from(size);
        let pc_bias = r.r_pcrel.then_some(u64::from(size));
        let target = match (r.r_extern, r.r_pcrel) {
            (true, true) => self.symbol(offset, r.r_symbolnum, stored + end_of_field)?,
            (true, false) => self.symbol(offset, r.r_symbolnum, stored)?,
            (false, _) if r.r_symbolnum == macho::R_ABS => {
                return Ok(self.unsupported(offset, size, name, r.r_type.0, " against an absolute value".into()));
            }
            (false, true) => self.local(offset, r.r_symbolnum, stored + end_of_field, 0)?,
            (false, false) => self.local(offset, r.r_symbolnum, stored, 0)?,
        };
        Ok(Fixup { offset, size, action: Action::Apply { target, minus: None, pc_bias } })
    }

    fn i386_scattered(&self, s: macho::ScatteredRelocationInfo, next: Option<macho::Relocation<LE>>) -> Result<Fixup> {
        let offset = u64::from(s.r_address);
        let size = 1u8 << s.r_length;
        let name = macho::NAMES_GENERIC_RELOC.name(s.r_type);
        let value = i128::from(s.r_value);
        match s.r_type {
            macho::GENERIC_RELOC_VANILLA if s.r_length != 3 => {
                let stored = i128::from(self.stored(offset, size)?);
                let end_of_field = i128::from(self.section.addr) + i128::from(offset) + i128::from(size);
                let target_address = if s.r_pcrel { stored + end_of_field } else { stored };
                let target = self.local(offset, 0, value, target_address - value)?;
                let pc_bias = s.r_pcrel.then_some(u64::from(size));
                Ok(Fixup { offset, size, action: Action::Apply { target, minus: None, pc_bias } })
            }
            macho::GENERIC_RELOC_SECTDIFF | macho::GENERIC_RELOC_LOCAL_SECTDIFF => {
                let pair = next
                    .filter(|p| p.r_scattered(LE, macho::CPU_TYPE_X86))
                    .map(|p| p.scattered_info(LE))
                    .filter(|p| p.r_type == macho::GENERIC_RELOC_PAIR);
                let Some(pair) = pair else {
                    return Err(self.error(offset, "SECTDIFF relocation without its PAIR"));
                };
                if s.r_pcrel || !(s.r_length == 1 || s.r_length == 2) {
                    let detail = format!(" with pcrel={} length={}", u8::from(s.r_pcrel), s.r_length);
                    return Ok(self.unsupported(offset, size, name, s.r_type.0, detail));
                }
                let stored = i128::from(self.stored(offset, size)?);
                let from = i128::from(pair.r_value);
                // stored = (value + k) - from, so the minuend is value + k.
                let target = self.local(offset, 0, value, stored + from - value)?;
                let minus = self.local(offset, 0, from, 0)?;
                Ok(Fixup { offset, size, action: Action::Apply { target, minus: Some(minus), pc_bias: None } })
            }
            _ => Ok(self.unsupported(offset, size, name, s.r_type.0, " (scattered)".into())),
        }
    }
}
