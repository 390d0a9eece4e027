//! i386 relocation entries, plain and scattered: see the conventions in
//! the parent module.

use object::{LittleEndian as LE, macho};

use super::Decoder;
use crate::error::Result;
use crate::model::{Action, Fixup, Via};

impl Decoder<'_, '_, '_> {
    pub(super) fn i386(&self, r: macho::RelocationInfo) -> Result<Fixup> {
        let offset = u64::from(r.r_address);
        let size = 1u8 << r.r_length;
        let name = macho::NAMES_GENERIC_RELOC.name(r.r_type);
        if r.r_type == macho::GENERIC_RELOC_TLV && r.r_extern {
            return Ok(self.thread_local(offset, size, r.r_symbolnum));
        }
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
            (false, true) => self.local(offset, r.r_symbolnum, stored + end_of_field, 0)?.map_err(|e| self.error(offset, &e))?,
            (false, false) => self.local(offset, r.r_symbolnum, stored, 0)?.map_err(|e| self.error(offset, &e))?,
        };
        Ok(Self::apply(offset, size, target, pc_bias))
    }

    pub(super) fn i386_scattered(&self, s: macho::ScatteredRelocationInfo, next: Option<macho::Relocation<LE>>) -> Result<(Fixup, usize)> {
        let offset = u64::from(s.r_address);
        let size = 1u8 << s.r_length;
        let name = macho::NAMES_GENERIC_RELOC.name(s.r_type);
        let value = i128::from(s.r_value);
        match s.r_type {
            macho::GENERIC_RELOC_VANILLA if s.r_length != 3 => {
                let stored = i128::from(self.stored(offset, size)?);
                let end_of_field = i128::from(self.section.addr) + i128::from(offset) + i128::from(size);
                let target_address = if s.r_pcrel { stored + end_of_field } else { stored };
                let pc_bias = s.r_pcrel.then_some(u64::from(size));
                Ok(match self.local_meant(offset, value, target_address - value, target_address)? {
                    Ok(target) => (Self::apply(offset, size, target, pc_bias), 1),
                    Err(why) => (Self::refused(offset, size, why), 1),
                })
            }
            macho::GENERIC_RELOC_SECTDIFF | macho::GENERIC_RELOC_LOCAL_SECTDIFF => {
                // The PAIR may be scattered or not; only a scattered one
                // carries the subtrahend's address.
                let pair = next
                    .filter(|p| p.r_scattered(LE, macho::CPU_TYPE_X86))
                    .map(|p| p.scattered_info(LE))
                    .filter(|p| p.r_type == macho::GENERIC_RELOC_PAIR);
                let Some(pair) = pair else {
                    return Err(self.error(offset, "SECTDIFF relocation without its PAIR"));
                };
                if s.r_pcrel || !(s.r_length == 1 || s.r_length == 2) {
                    let detail = format!(" with pcrel={} length={}", u8::from(s.r_pcrel), s.r_length);
                    return Ok((self.unsupported(offset, size, name, s.r_type.0, detail), 2));
                }
                let stored = i128::from(self.stored(offset, size)?);
                let from = i128::from(pair.r_value);
                // stored = (value + k) - from, so the minuend is value + k.
                let target = self.local(offset, 0, value, stored + from - value)?;
                let minus = self.local_here(offset, from)?;
                Ok(match (target, minus) {
                    (Ok(target), Ok(minus)) => (
                        Fixup { offset, size, action: Action::Apply { target, minus: Some(minus), pc_bias: None, via: Via::Direct } },
                        2,
                    ),
                    (Err(why), _) | (_, Err(why)) => (Self::refused(offset, size, why), 2),
                })
            }
            _ => Ok((self.unsupported(offset, size, name, s.r_type.0, " (scattered)".into()), 1)),
        }
    }
}
