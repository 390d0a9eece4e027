//! x86_64 relocation entries (never scattered): see the conventions in
//! the parent module.

use object::macho;

use super::Decoder;
use crate::error::Result;
use crate::model::{Action, Fixup, Via};

impl Decoder<'_, '_, '_> {
    /// One x86_64 entry, or a SUBTRACTOR with the entry after it; returns
    /// how many entries were used.
    pub(super) fn x86_64(&self, r: macho::RelocationInfo, next: Option<macho::RelocationInfo>) -> Result<(Fixup, usize)> {
        let offset = u64::from(r.r_address);
        let size = 1u8 << r.r_length;
        let p = i128::from(self.section.addr) + i128::from(offset);
        let name = macho::NAMES_X86_64_RELOC.name(r.r_type);
        let shape = |ok: bool| -> Option<Fixup> {
            (!ok).then(|| {
                let detail = format!(" with pcrel={} length={} extern={}", u8::from(r.r_pcrel), r.r_length, u8::from(r.r_extern));
                self.unsupported(offset, size, name, r.r_type.0, detail)
            })
        };
        let bias = match r.r_type {
            macho::X86_64_RELOC_SIGNED | macho::X86_64_RELOC_BRANCH => Some(4),
            macho::X86_64_RELOC_SIGNED_1 => Some(5),
            macho::X86_64_RELOC_SIGNED_2 => Some(6),
            macho::X86_64_RELOC_SIGNED_4 => Some(8),
            macho::X86_64_RELOC_UNSIGNED => None,
            macho::X86_64_RELOC_TLV => return Ok((self.thread_local(offset, size, r.r_symbolnum), 1)),
            macho::X86_64_RELOC_GOT | macho::X86_64_RELOC_GOT_LOAD => {
                if let Some(bad) = shape(r.r_extern && r.r_pcrel && r.r_length == 2) {
                    return Ok((bad, 1));
                }
                // `movq` is 0x8b after its REX prefix, two bytes before
                // the displacement; anything else keeps its GOT slot.
                let is_movq = offset >= 2 && self.section.data.get(offset as usize - 2) == Some(&0x8b);
                let via = if r.r_type == macho::X86_64_RELOC_GOT_LOAD && is_movq { Via::GotLoadAsLea } else { Via::Got };
                let target = self.symbol(offset, r.r_symbolnum, i128::from(self.stored(offset, size)?))?;
                return Ok((Fixup { offset, size, action: Action::Apply { target, minus: None, pc_bias: Some(4), via } }, 1));
            }
            macho::X86_64_RELOC_SUBTRACTOR => return self.x86_64_difference(r, next),
            _ => return Ok((self.unsupported(offset, size, name, r.r_type.0, String::new()), 1)),
        };
        let ok = match bias {
            Some(_) => r.r_pcrel && r.r_length == 2,
            None => !r.r_pcrel && (r.r_length == 2 || r.r_length == 3),
        };
        if let Some(bad) = shape(ok) {
            return Ok((bad, 1));
        }
        if !r.r_extern && r.r_symbolnum == 0 {
            return Err(self.error(offset, "non-extern relocation with no section"));
        }
        let stored = i128::from(self.stored(offset, size)?);
        let target = match (r.r_extern, bias) {
            (true, Some(b)) => self.symbol(offset, r.r_symbolnum, stored + i128::from(b) - 4)?,
            (true, None) => self.symbol(offset, r.r_symbolnum, stored)?,
            (false, Some(b)) => self.local(offset, r.r_symbolnum, p + i128::from(b) + stored, 0)?.map_err(|e| self.error(offset, &e))?,
            (false, None) => self.local(offset, r.r_symbolnum, stored, 0)?.map_err(|e| self.error(offset, &e))?,
        };
        Ok((Self::apply(offset, size, target, bias), 1))
    }

    /// `X86_64_RELOC_SUBTRACTOR` + `X86_64_RELOC_UNSIGNED`: `minuend -
    /// subtrahend + addend` (jump tables, `.long a - b`), checked as ld64
    /// checks the pair.
    fn x86_64_difference(&self, r: macho::RelocationInfo, next: Option<macho::RelocationInfo>) -> Result<(Fixup, usize)> {
        let offset = u64::from(r.r_address);
        let size = 1u8 << r.r_length;
        let Some(n) = next.filter(|n| n.r_type == macho::X86_64_RELOC_UNSIGNED && n.r_address == r.r_address) else {
            return Err(self.error(offset, "X86_64_RELOC_SUBTRACTOR not followed by its X86_64_RELOC_UNSIGNED"));
        };
        if r.r_pcrel || n.r_pcrel || !r.r_extern || r.r_length < 2 || n.r_length != r.r_length {
            let detail = format!(" with pcrel={} length={} extern={}", u8::from(r.r_pcrel), r.r_length, u8::from(r.r_extern));
            return Ok((self.unsupported(offset, size, Some("X86_64_RELOC_SUBTRACTOR"), r.r_type.0, detail), 2));
        }
        let stored = i128::from(self.stored(offset, size)?);
        let minus = self.symbol(offset, r.r_symbolnum, 0)?;
        let target = if n.r_extern {
            self.symbol(offset, n.r_symbolnum, stored)?
        } else {
            if n.r_symbolnum == 0 {
                return Err(self.error(offset, "non-extern relocation with no section"));
            }
            self.local(offset, n.r_symbolnum, stored, 0)?.map_err(|e| self.error(offset, &e))?
        };
        Ok((Fixup { offset, size, action: Action::Apply { target, minus: Some(minus), pc_bias: None, via: Via::Direct } }, 2))
    }
}
