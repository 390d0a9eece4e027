//! The bytes the segments map: each live atom copied to its place and its
//! relocated fields patched with final addresses, and the GOT filled.
//! Absolute addresses are final: the image is not PIE and is never slid,
//! so nothing needs rebasing.

use rayon::prelude::*;

use crate::atoms::{self, AtomId, Atoms};
use crate::error::{Error, Result};
use crate::input::first_error;
use crate::layout::{self, Layout};
use crate::model::{Action, Target, Via};
use crate::resolve::Resolution;

/// `layout.file_end` bytes: offset `n` is virtual address `base + n`. The
/// header area is left zero for the writer.
///
/// Every atom owns its own slice of the image, so the atoms are copied and
/// relocated in parallel; the first error in image order is the one
/// reported, whatever the threads did.
pub fn contents(res: &Resolution<'_>, atoms: &Atoms, layout: &Layout) -> Result<Vec<u8>> {
    let size = usize::try_from(layout.file_end).map_err(|_| Error::usage("image too large"))?;
    let mut image = vec![0u8; size];
    fill_got(res, atoms, layout, &mut image)?;
    let mut jobs: Vec<(AtomId, u64, bool, &mut [u8])> = Vec::with_capacity(layout.members.iter().map(Vec::len).sum());
    let mut rest: &mut [u8] = &mut image;
    let mut consumed = 0u64;
    for (out, ids) in layout.members.iter().enumerate() {
        let zerofill = layout.sections[out].placement.is_zerofill();
        for &id in ids {
            let Some((offset, _)) = layout.atoms[id] else { continue };
            if zerofill {
                jobs.push((id, offset, true, &mut []));
                continue;
            }
            let (start, end) = atoms.range(id);
            let slice = offset
                .checked_sub(consumed)
                .and_then(|skip| usize::try_from(skip).ok())
                .zip(usize::try_from(end - start).ok())
                .filter(|&(skip, len)| skip.checked_add(len).is_some_and(|n| n <= rest.len()));
            let Some((skip, len)) = slice else {
                return Err(Error::new(&res.objects[atoms.info[id].obj].name, "atom outside the image"));
            };
            let (mine, tail) = std::mem::take(&mut rest)[skip..].split_at_mut(len);
            rest = tail;
            consumed = offset + (end - start);
            jobs.push((id, offset, false, mine));
        }
    }
    let results = jobs.into_par_iter().map(|(id, offset, zerofill, bytes)| atom(res, atoms, layout, id, offset, zerofill, bytes)).collect();
    first_error(results)?;
    Ok(image)
}

/// One atom: its bytes copied into `bytes` (its place in the image, at
/// `offset` from `base`) and its fields relocated.
fn atom(res: &Resolution<'_>, atoms: &Atoms, layout: &Layout, id: AtomId, offset: u64, zerofill: bool, bytes: &mut [u8]) -> Result<()> {
    let a = &atoms.info[id];
    let object = &res.objects[a.obj];
    let section = &object.sections[a.section];
    let (lo, hi) = (a.start - section.addr, a.end - section.addr);
    if !zerofill {
        let data = usize::try_from(lo)
            .ok()
            .zip(usize::try_from(hi).ok())
            .and_then(|(lo, hi)| section.data.get(lo..hi))
            .filter(|d| d.len() == bytes.len())
            .ok_or_else(|| Error::new(&object.name, format!("section {} has no data to copy", section.full_name())))?;
        bytes.copy_from_slice(data);
    }
    for fixup in atoms.fixups(&res.objects, id) {
        let at = |what: String| Error::new(&object.name, format!("{}+{:#x}: {what}", section.full_name(), fixup.offset));
        let Action::Apply { target, minus, pc_bias, via } = &fixup.action else {
            return Err(at("unsupported relocation".into()));
        };
        if zerofill {
            return Err(at("relocation in a zero-fill section".into()));
        }
        let address = |t: &Target| -> Result<i128> {
            let (place, addend) = atoms::place(res, atoms, a.obj, t)?;
            layout.address(atoms, place, addend).ok_or_else(|| at("relocation target was dead-stripped".into()))
        };
        // The field's offset in the atom, and from `base`.
        let rel = fixup.offset - lo;
        let field = offset + rel;
        let via = layout::effective_via(atoms, a.obj, target, *via);
        let mut value = match (via, target) {
            (Via::Got, Target::Symbol { index, addend }) => {
                let slot = res
                    .definition(a.obj, *index)
                    .and_then(|def| layout.got.slot(def))
                    .and_then(|slot| layout.got_slot_address(slot))
                    .ok_or_else(|| at("GOT reference without a slot".into()))?;
                i128::from(slot) + i128::from(*addend)
            }
            (Via::Got, Target::Local { .. }) => return Err(at("GOT reference to a section address".into())),
            (Via::GotLoadAsLea, _) => {
                // The opcode must be this atom's own byte, not the end
                // of whatever atom the image puts before it.
                if rel < 2 {
                    return Err(at("GOT load split from its instruction by a symbol".into()));
                }
                bytes[rel as usize - 2] = 0x8d;
                address(target)?
            }
            (Via::Direct, _) => address(target)?,
        };
        if let Some(minus) = minus {
            value -= address(minus)?;
        }
        if let Some(bias) = pc_bias {
            value -= i128::from(layout.base) + i128::from(field) + i128::from(*bias);
        }
        store(bytes, rel, fixup.size, value, pc_bias.is_some()).map_err(at)?;
    }
    Ok(())
}

fn fill_got(res: &Resolution<'_>, atoms: &Atoms, layout: &Layout, image: &mut [u8]) -> Result<()> {
    for (slot, def) in layout.got.slots.iter().enumerate() {
        let object = &res.objects[def.obj];
        let target = Target::Symbol { index: def.sym, addend: 0 };
        let (place, _) = atoms::place(res, atoms, def.obj, &target)?;
        let what = || Error::new(&object.name, format!("GOT slot for {}: target not in the image", object.symbols[def.sym].display()));
        let value = layout.address(atoms, place, 0).ok_or_else(what)?;
        let at = layout.got_slot_address(slot).ok_or_else(what)? - layout.base;
        store(image, at, 8, value, false).map_err(|e| Error::new(&object.name, e))?;
    }
    Ok(())
}

fn store(image: &mut [u8], field: u64, size: u8, value: i128, signed: bool) -> std::result::Result<(), String> {
    let bits = u32::from(size) * 8;
    // A pc-relative displacement is signed; an absolute value may be
    // either signed or unsigned, as long as its bits are all there.
    let (min, max) = if signed {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (-(1i128 << (bits - 1)), (1i128 << bits) - 1)
    };
    if value < min || value > max {
        return Err(format!("relocated value {value:#x} does not fit in {size} bytes"));
    }
    let size = usize::from(size);
    let field = usize::try_from(field).map_err(|_| "image too large".to_string())?;
    let slot = image.get_mut(field..field + size).ok_or_else(|| "field outside the image".to_string())?;
    slot.copy_from_slice(&value.to_le_bytes()[..size]);
    Ok(())
}
