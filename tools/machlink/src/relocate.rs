//! The bytes the segments map: each live atom copied to its place and its
//! relocated fields patched with final addresses, and the GOT filled.
//! Absolute addresses are final: the image is not PIE and is never slid,
//! so nothing needs rebasing.

use crate::atoms::{self, Atoms};
use crate::error::{Error, Result};
use crate::layout::{self, Layout};
use crate::model::{Action, Target, Via};
use crate::resolve::Resolution;

/// `layout.file_end` bytes: offset `n` is virtual address `base + n`. The
/// header area is left zero for the writer.
pub fn contents(res: &Resolution<'_>, atoms: &Atoms, layout: &Layout) -> Result<Vec<u8>> {
    let size = usize::try_from(layout.file_end).map_err(|_| Error::usage("image too large"))?;
    let mut image = vec![0u8; size];
    fill_got(res, atoms, layout, &mut image)?;
    for &id in layout.members.iter().flatten() {
        let (offset, out) = layout.atoms[&id];
        let object = &res.objects[id.obj];
        let section = &object.sections[id.section];
        let (start, end) = atoms.range(&res.objects, id);
        let (lo, hi) = (start - section.addr, end - section.addr);
        if !layout.sections[out].placement.is_zerofill() {
            let bytes = usize::try_from(lo)
                .ok()
                .zip(usize::try_from(hi).ok())
                .and_then(|(lo, hi)| section.data.get(lo..hi))
                .ok_or_else(|| Error::new(&object.name, format!("section {} has no data to copy", section.full_name())))?;
            let dest = usize::try_from(offset).map_err(|_| Error::new(&object.name, "image too large"))?;
            image[dest..dest + bytes.len()].copy_from_slice(bytes);
        }

        for fixup in atoms::fixups_in(section, start, end) {
            let at = |what: String| Error::new(&object.name, format!("{}+{:#x}: {what}", section.full_name(), fixup.offset));
            let Action::Apply { target, minus, pc_bias, via } = &fixup.action else {
                return Err(at("unsupported relocation".into()));
            };
            if layout.sections[out].placement.is_zerofill() {
                return Err(at("relocation in a zero-fill section".into()));
            }
            let address = |t: &Target| -> Result<i128> {
                let (place, addend) = atoms::place(res, atoms, id.obj, t)?;
                layout.address(res, atoms, place, addend).ok_or_else(|| at("relocation target was dead-stripped".into()))
            };
            let field = offset + (fixup.offset - lo);
            let via = layout::effective_via(res, id.obj, target, *via);
            let mut value = match (via, target) {
                (Via::Got, Target::Symbol { index, addend }) => {
                    let slot = res
                        .definition(id.obj, *index)
                        .and_then(|def| layout.got.slot(def))
                        .and_then(|slot| layout.got_slot_address(slot))
                        .ok_or_else(|| at("GOT reference without a slot".into()))?;
                    i128::from(slot) + i128::from(*addend)
                }
                (Via::Got, Target::Local { .. }) => return Err(at("GOT reference to a section address".into())),
                (Via::GotLoadAsLea, _) => {
                    // The opcode must be this atom's own byte, not the end
                    // of whatever atom the image puts before it.
                    if fixup.offset < lo + 2 {
                        return Err(at("GOT load split from its instruction by a symbol".into()));
                    }
                    let opcode = usize::try_from(field - 2).map_err(|_| at("image too large".into()))?;
                    image[opcode] = 0x8d;
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
            store(&mut image, field, fixup.size, value, pc_bias.is_some()).map_err(at)?;
        }
    }
    Ok(image)
}

fn fill_got(res: &Resolution<'_>, atoms: &Atoms, layout: &Layout, image: &mut [u8]) -> Result<()> {
    for (slot, def) in layout.got.slots.iter().enumerate() {
        let object = &res.objects[def.obj];
        let target = Target::Symbol { index: def.sym, addend: 0 };
        let (place, _) = atoms::place(res, atoms, def.obj, &target)?;
        let what = || Error::new(&object.name, format!("GOT slot for {}: target not in the image", object.symbols[def.sym].display()));
        let value = layout.address(res, atoms, place, 0).ok_or_else(what)?;
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
