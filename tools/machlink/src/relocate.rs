//! Copies each live atom to its place in the image and patches its
//! relocated fields with final addresses.

use crate::atoms::{self, Atoms};
use crate::error::{Error, Result};
use crate::fixup::Action;
use crate::layout::Layout;
use crate::resolve::Resolution;

pub fn apply(res: &Resolution<'_>, atoms: &Atoms, layout: &Layout, image: &mut [u8]) -> Result<()> {
    for (&id, &(offset, _)) in &layout.atoms {
        let object = &res.objects[id.obj];
        let section = &object.sections[id.section];
        let (start, end) = atoms.range(&res.objects, id);
        let (lo, hi) = (start - section.addr, end - section.addr);
        let bytes = usize::try_from(lo)
            .ok()
            .zip(usize::try_from(hi).ok())
            .and_then(|(lo, hi)| section.data.get(lo..hi))
            .ok_or_else(|| Error::new(&object.name, format!("section {} has no data to copy", section.full_name())))?;
        let dest = usize::try_from(offset).map_err(|_| Error::new(&object.name, "image too large"))?;
        image[dest..dest + bytes.len()].copy_from_slice(bytes);

        for fixup in atoms::fixups_in(section, start, end) {
            let at = |what: String| Error::new(&object.name, format!("{}+{:#x}: {what}", section.full_name(), fixup.offset));
            let Action::Apply { target, minus, pc_bias } = &fixup.action else {
                return Err(at("unsupported relocation".into()));
            };
            let address = |t| -> Result<i128> {
                let (place, addend) = atoms::place(res, atoms, id.obj, t)?;
                layout.address(res, atoms, place, addend).ok_or_else(|| at("relocation target was dead-stripped".into()))
            };
            let mut value = address(target)?;
            if let Some(minus) = minus {
                value -= address(minus)?;
            }
            let field = offset + (fixup.offset - lo);
            if let Some(bias) = pc_bias {
                value -= i128::from(layout.base) + i128::from(field) + i128::from(*bias);
            }
            let bits = u32::from(fixup.size) * 8;
            // A pc-relative displacement is signed; an absolute value may be
            // either signed or unsigned, as long as its bits are all there.
            let (min, max) = if pc_bias.is_some() {
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            } else {
                (-(1i128 << (bits - 1)), (1i128 << bits) - 1)
            };
            if value < min || value > max {
                return Err(at(format!("relocated value {value:#x} does not fit in {} bytes", fixup.size)));
            }
            let size = usize::from(fixup.size);
            let field = usize::try_from(field).map_err(|_| at("image too large".into()))?;
            image[field..field + size].copy_from_slice(&value.to_le_bytes()[..size]);
        }
    }
    Ok(())
}
