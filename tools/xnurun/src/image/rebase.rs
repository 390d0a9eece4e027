//! dyld's rebase opcodes (LC_DYLD_INFO, `REBASE_OPCODE_*` in
//! mach-o/loader.h; dyld's `MachOAnalyzer::forEachRebase`): the list of
//! pointers in a position-independent image that hold link-time addresses
//! and must move by the slide before `main` runs.

use super::Segment;

const DONE: u8 = 0x00;
const SET_TYPE_IMM: u8 = 0x10;
const SET_SEGMENT_AND_OFFSET_ULEB: u8 = 0x20;
const ADD_ADDR_ULEB: u8 = 0x30;
const ADD_ADDR_IMM_SCALED: u8 = 0x40;
const DO_REBASE_IMM_TIMES: u8 = 0x50;
const DO_REBASE_ULEB_TIMES: u8 = 0x60;
const DO_REBASE_ADD_ADDR_ULEB: u8 = 0x70;
const DO_REBASE_ULEB_TIMES_SKIPPING_ULEB: u8 = 0x80;
/// REBASE_TYPE_POINTER: the only kind an arm64 image uses.
const TYPE_POINTER: u8 = 1;

fn uleb(b: &[u8], i: &mut usize) -> Result<u64, String> {
    let (mut v, mut shift) = (0u64, 0u32);
    loop {
        let byte = *b.get(*i).ok_or("rebase opcodes end inside a number")?;
        *i += 1;
        if shift >= 64 {
            return Err("rebase opcodes hold a number past 64 bits".into());
        }
        v |= u64::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
}

/// The link-time addresses of the pointers to slide. `segments` are the
/// load commands' segments in order (the opcodes number them), each
/// pointer must lie inside a writable one, as dyld checks.
pub fn addresses(ops: &[u8], segments: &[Segment]) -> Result<Vec<u64>, String> {
    let mut out = Vec::new();
    let (mut seg, mut off, mut ty) = (None::<&Segment>, 0u64, 0u8);
    let mut i = 0;
    let mut push = |seg: Option<&Segment>, off: u64, ty: u8| -> Result<(), String> {
        let s = seg.ok_or("a rebase before any segment was set")?;
        if ty != TYPE_POINTER {
            return Err(format!("rebase type {ty}: only pointers are rebased on arm64"));
        }
        if s.initprot & 2 == 0 || off.checked_add(8).is_none_or(|e| e > s.vmsize) {
            return Err(format!("a rebase at {}+0x{off:x} is not inside a writable segment", s.name));
        }
        if out.len() >= 1 << 20 {
            return Err("more than a million rebases".into());
        }
        out.push(s.vmaddr + off);
        Ok(())
    };
    while i < ops.len() {
        let (op, imm) = (ops[i] & 0xf0, ops[i] & 0x0f);
        i += 1;
        match op {
            DONE => break,
            SET_TYPE_IMM => ty = imm,
            SET_SEGMENT_AND_OFFSET_ULEB => {
                seg = Some(segments.get(imm as usize).ok_or_else(|| format!("rebase in segment {imm}, which does not exist"))?);
                off = uleb(ops, &mut i)?;
            }
            ADD_ADDR_ULEB => off = off.wrapping_add(uleb(ops, &mut i)?),
            ADD_ADDR_IMM_SCALED => off = off.wrapping_add(u64::from(imm) * 8),
            DO_REBASE_IMM_TIMES | DO_REBASE_ULEB_TIMES => {
                let n = if op == DO_REBASE_IMM_TIMES { u64::from(imm) } else { uleb(ops, &mut i)? };
                for _ in 0..n {
                    push(seg, off, ty)?;
                    off = off.wrapping_add(8);
                }
            }
            DO_REBASE_ADD_ADDR_ULEB => {
                push(seg, off, ty)?;
                off = off.wrapping_add(uleb(ops, &mut i)?).wrapping_add(8);
            }
            DO_REBASE_ULEB_TIMES_SKIPPING_ULEB => {
                let (n, skip) = (uleb(ops, &mut i)?, uleb(ops, &mut i)?);
                for _ in 0..n {
                    push(seg, off, ty)?;
                    off = off.wrapping_add(skip).wrapping_add(8);
                }
            }
            other => return Err(format!("unknown rebase opcode 0x{other:02x}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(name: &str, vmaddr: u64, initprot: u32) -> Segment {
        Segment { name: name.into(), vmaddr, vmsize: 0x4000, fileoff: 0, filesize: 0, initprot, maxprot: initprot }
    }

    #[test]
    fn opcodes_walk_as_dyld_walks_them() {
        let segs = [seg("__TEXT", 0x1_0000_0000, 5), seg("__DATA", 0x1_0000_4000, 3)];
        // type pointer; segment 1 offset 0x10; 2 times; skip-form 2 times
        // skipping 8; done.
        let ops = [0x11, 0x21, 0x10, 0x52, 0x80, 0x02, 0x08, 0x00];
        assert_eq!(addresses(&ops, &segs).unwrap(), [0x1_0000_4010, 0x1_0000_4018, 0x1_0000_4020, 0x1_0000_4030]);
        // A pointer in the read-only __TEXT is refused, as is a bad segment.
        assert!(addresses(&[0x11, 0x20, 0x00, 0x51], &segs).is_err());
        assert!(addresses(&[0x11, 0x27, 0x00, 0x51], &segs).is_err());
        assert!(addresses(&[0x11, 0x21, 0xff], &segs).is_err());
    }
}
