//! What XNU maps for an image, whichever CPU then runs it and whatever its
//! page size: each segment's file pages at its address (`map_segment`,
//! bsd/kern/mach_loader.c), moved by the slide with the pointers dyld
//! rebases, and the stack `create_unix_stack` (bsd/kern/kern_exec.c)
//! makes, with the initial stack's bytes in place.

use super::stack::InitialStack;
use super::{Image, ReadAt};
use crate::xnu::vm::{self, DFLSSIZ, MAXSSIZ};

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
    /// `[user_stack - MAXSSIZ, user_stack)`: where `handle_ux_exception`
    /// turns a protection failure into SIGSEGV (a stack overflow).
    pub stack_zone: (u64, u64),
}

impl Layout {
    /// Whether XNU would have mapped `addr` for the task.
    pub fn mapped(&self, addr: u64) -> bool {
        self.regions.iter().any(|r| addr >= r.start && addr < r.end)
    }
    pub fn in_stack_zone(&self, addr: u64) -> bool {
        addr >= self.stack_zone.0 && addr < self.stack_zone.1
    }
    /// `[start, end)` of the mappings with all of the VM_PROT bits `prot`.
    pub fn ranges(&self, prot: u32) -> Vec<(u64, u64)> {
        self.maps.iter().filter(|m| m.prot & prot == prot).map(|m| (m.start, m.start + m.len)).collect()
    }
}

/// Plans the address space of `image`, its segments moved by `slide`
/// (0 for a static image; dyld's choice for a position-independent one).
pub fn plan(image: &Image, read_at: ReadAt, stack: &InitialStack, slide: u64) -> Result<Layout, String> {
    let page = image.page();
    let mut maps = Vec::new();
    let mut regions = Vec::new();
    for seg in &image.segments {
        let (start, end) = seg.vm_range(page);
        let (start, end) = (start + slide, end + slide);
        // map_segment maps the file's pages, from trunc_page(fileoff) to
        // round_page(fileoff + filesize), at trunc_page(vmaddr): whole
        // pages, not just filesize bytes. The loader refused file pages
        // past the segment's own.
        let want = vm::round(seg.filesize, page).min(image.file_len.saturating_sub(seg.fileoff)).min(end - start);
        let mut data = vec![0u8; want as usize];
        read_at(seg.fileoff, &mut data)?;
        maps.push(Mapping { start, len: end - start, prot: image.effective_prot(seg.initprot & 7, false), data, at: 0, name: seg.name.clone() });
        regions.push(Region { start, end });
    }
    rebase(&mut maps, &image.rebases, slide)?;
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
        maps.push(Mapping { start: top - DFLSSIZ, len: DFLSSIZ, prot: image.effective_prot(3, true), at: stack.sp - (top - DFLSSIZ), data: stack.bytes.clone(), name: "stack".into() });
        regions.push(Region { start: base, end: top });
    }
    Ok(Layout { maps, regions, stack_zone: (image.user_stack.saturating_sub(MAXSSIZ), image.user_stack) })
}

/// dyld's rebasing: each listed pointer (a link-time address) moves by
/// the slide.
fn rebase(maps: &mut [Mapping], rebases: &[u64], slide: u64) -> Result<(), String> {
    for &at in rebases {
        let addr = at.wrapping_add(slide);
        let m = maps
            .iter_mut()
            .find(|m| addr >= m.start && addr.checked_add(8).is_some_and(|e| e <= m.start + m.len))
            .ok_or_else(|| format!("rebasing: the pointer at 0x{at:x} lies in no segment"))?;
        let off = (addr - m.start) as usize;
        if m.data.len() < off + 8 {
            m.data.resize(off + 8, 0);
        }
        let w = u64::from_le_bytes(m.data[off..off + 8].try_into().expect("8 bytes"));
        m.data[off..off + 8].copy_from_slice(&w.wrapping_add(slide).to_le_bytes());
    }
    Ok(())
}
