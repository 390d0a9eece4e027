//! What XNU maps for a static x86 image, whichever CPU then runs it: each
//! segment's file pages at its address (`map_segment`,
//! bsd/kern/mach_loader.c) and the stack `create_unix_stack`
//! (bsd/kern/kern_exec.c) makes, with the initial stack's bytes in place.

use crate::loader::{Image, DFLSSIZ, MAXSSIZ};
use crate::stack::InitialStack;
use crate::ReadAt;

/// One mapping: `len` bytes at `start` with VM_PROT bits (r 1, w 2, x 4),
/// and `data` to write at `start + at`.
pub struct Mapping {
    pub start: u64,
    pub len: u64,
    pub prot: u32,
    pub data: Vec<u8>,
    pub at: u64,
    pub name: String,
}

/// A range XNU would have mapped for the task: a protection fault there is
/// KERN_PROTECTION_FAILURE, elsewhere KERN_INVALID_ADDRESS.
#[derive(Debug, Clone, Copy)]
pub struct Region {
    pub start: u64,
    pub end: u64,
}

pub struct Layout {
    pub maps: Vec<Mapping>,
    pub regions: Vec<Region>,
}

pub fn plan(image: &Image, read_at: ReadAt, stack: &InitialStack) -> Result<Layout, String> {
    let mut maps = Vec::new();
    let mut regions = Vec::new();
    for seg in &image.segments {
        let (start, end) = seg.vm_range();
        // map_segment maps the file's pages, from trunc_page(fileoff) to
        // round_page(fileoff + filesize), at trunc_page(vmaddr): whole
        // pages, not just filesize bytes. The loader refused file pages
        // past the segment's own.
        let want = crate::loader::round_page(seg.filesize).min(image.file_len.saturating_sub(seg.fileoff)).min(end - start);
        let mut data = vec![0u8; want as usize];
        read_at(seg.fileoff, &mut data)?;
        maps.push(Mapping { start, len: end - start, prot: seg.initprot & 7, data, at: 0, name: seg.name.clone() });
        regions.push(Region { start, end });
    }
    if image.custom_stack {
        // The strings go into the segment that holds the stack pointer.
        let m = maps
            .iter_mut()
            .find(|m| m.prot & 2 != 0 && stack.sp >= m.start && stack.sp.checked_add(stack.bytes.len() as u64).is_some_and(|end| end <= m.start + m.len))
            .ok_or_else(|| "the initial stack does not fit below the custom stack pointer in its segment: exec_copyout_strings would fail".to_string())?;
        let off = (stack.sp - m.start) as usize;
        if m.data.len() < off + stack.bytes.len() {
            m.data.resize(off + stack.bytes.len(), 0);
        }
        m.data[off..off + stack.bytes.len()].copy_from_slice(&stack.bytes);
    } else {
        // MAXSSIZ reserved below the top, only the RLIMIT_STACK part
        // (DFLSSIZ) accessible.
        if stack.bytes.len() as u64 > DFLSSIZ {
            return Err("the initial stack is larger than the stack".into());
        }
        let top = image.user_stack;
        let base = top - MAXSSIZ;
        maps.push(Mapping { start: base, len: MAXSSIZ - DFLSSIZ, prot: 0, data: Vec::new(), at: 0, name: "stack guard".into() });
        maps.push(Mapping { start: top - DFLSSIZ, len: DFLSSIZ, prot: 3, at: stack.sp - (top - DFLSSIZ), data: stack.bytes.clone(), name: "stack".into() });
        regions.push(Region { start: base, end: top });
    }
    Ok(Layout { maps, regions })
}
