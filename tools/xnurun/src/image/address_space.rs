//! What XNU maps for an image, whichever CPU then runs it and whatever its
//! page size: each segment's file pages at its address (`map_segment`,
//! bsd/kern/mach_loader.c), moved by the slide with the pointers dyld
//! rebases, and the stack `create_unix_stack` (bsd/kern/kern_exec.c)
//! makes, with the initial stack's bytes in place.

use super::stack::InitialStack;
use super::{Image, ReadAt};
use crate::xnu::vm::{self, DFLSSIZ, MAXSSIZ};

/// The host's page: the unit in which file pages and overlay pages are
/// mapped on both CPUs (an arm64 16 KiB page is four of them).
pub const HOST_PAGE: u64 = 4096;

/// One mapping: `len` bytes at `start` with VM_PROT bits (r 1, w 2, x 4).
/// Its bytes are the image file's where `file` says (mapped copy-on-write,
/// so only the pages the guest touches cost memory), zeros elsewhere, and
/// then the `overlay` pages over both.
pub struct Mapping {
    pub start: u64,
    pub len: u64,
    pub prot: u32,
    pub name: String,
    /// `(offset, len)`: the image's bytes from `offset` (page-aligned) at
    /// `start`, `len` a whole number of host pages inside the mapping.
    pub file: Option<(u64, u64)>,
    /// Whole host pages whose bytes differ from the file's or from zero
    /// (the initial stack, a custom stack's strings, rebased pointers):
    /// `(address, HOST_PAGE bytes)`, in address order.
    pub overlay: Vec<(u64, Vec<u8>)>,
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
/// Reads from the file only the pages an overlay covers.
pub fn plan(image: &Image, read_at: ReadAt, stack: &InitialStack, slide: u64) -> Result<Layout, String> {
    let page = image.page();
    let mut maps = Vec::new();
    let mut regions = Vec::new();
    let mut patches: Vec<(u64, Vec<u8>)> = Vec::new();
    for seg in &image.segments {
        let (start, end) = seg.vm_range(page);
        let (start, end) = (start + slide, end + slide);
        // map_segment maps the file's pages, from trunc_page(fileoff) to
        // round_page(fileoff + filesize), at trunc_page(vmaddr): whole
        // pages, not just filesize bytes, the last one as far as the file
        // goes. The loader refused file pages past the segment's own.
        let want = vm::round(seg.filesize, page).min(image.file_len.saturating_sub(seg.fileoff)).min(end - start);
        let file = (want > 0).then(|| (seg.fileoff, vm::round(want, HOST_PAGE).min(end - start)));
        maps.push(Mapping { start, len: end - start, prot: image.effective_prot(seg.initprot & 7, false), name: seg.name.clone(), file, overlay: Vec::new() });
        regions.push(Region { start, end });
    }
    // dyld's rebasing: each listed pointer (a link-time address) moves by
    // the slide.
    for &at in &image.rebases {
        let addr = at.wrapping_add(slide);
        let m = maps
            .iter()
            .find(|m| addr >= m.start && addr.checked_add(8).is_some_and(|e| e <= m.start + m.len))
            .ok_or_else(|| format!("rebasing: the pointer at 0x{at:x} lies in no segment"))?;
        let mut w = [0u8; 8];
        file_bytes(m, addr, &mut w, read_at)?;
        patches.push((addr, u64::from_le_bytes(w).wrapping_add(slide).to_le_bytes().to_vec()));
    }
    if image.custom_stack {
        // The strings go into the segment that holds the stack pointer.
        if !maps.iter().any(|m| m.prot & 2 != 0 && stack.sp >= m.start && stack.sp.checked_add(stack.bytes.len() as u64).is_some_and(|end| end <= m.start + m.len)) {
            return Err("the initial stack does not fit below the custom stack pointer in its segment: exec_copyout_strings would fail".into());
        }
    } else {
        // MAXSSIZ reserved below the top, only the RLIMIT_STACK part
        // (DFLSSIZ) accessible.
        if stack.bytes.len() as u64 > DFLSSIZ {
            return Err("the initial stack is larger than the stack".into());
        }
        let top = image.user_stack;
        let base = top - MAXSSIZ;
        maps.push(Mapping { start: base, len: MAXSSIZ - DFLSSIZ, prot: 0, name: "stack guard".into(), file: None, overlay: Vec::new() });
        maps.push(Mapping { start: top - DFLSSIZ, len: DFLSSIZ, prot: image.effective_prot(3, true), name: "stack".into(), file: None, overlay: Vec::new() });
        regions.push(Region { start: base, end: top });
    }
    patches.push((stack.sp, stack.bytes.clone()));
    for (addr, bytes) in patches {
        overlay(&mut maps, addr, &bytes, read_at)?;
    }
    Ok(Layout { maps, regions, stack_zone: (image.user_stack.saturating_sub(MAXSSIZ), image.user_stack) })
}

/// What the mapping holds at `addr` before any overlay: the file's bytes
/// or zeros.
fn file_bytes(m: &Mapping, addr: u64, out: &mut [u8], read_at: ReadAt) -> Result<(), String> {
    out.fill(0);
    if let Some((offset, len)) = m.file {
        let at = addr - m.start;
        if at < len {
            let n = (len - at).min(out.len() as u64) as usize;
            read_at(offset + at, &mut out[..n]).or_else(|_| {
                // The last file page may pass the end of the file: what
                // lies past it reads as zeros, as the mapped page shows it.
                let mut ok = 0;
                for (i, b) in out[..n].iter_mut().enumerate() {
                    if read_at(offset + at + i as u64, std::slice::from_mut(b)).is_err() {
                        break;
                    }
                    ok = i + 1;
                }
                out[ok..n].fill(0);
                Ok::<(), String>(())
            })?;
        }
    }
    Ok(())
}

/// Writes `bytes` at `addr` into the overlay pages of the mapping that
/// holds them, each page starting as the mapping's own bytes.
fn overlay(maps: &mut [Mapping], addr: u64, bytes: &[u8], read_at: ReadAt) -> Result<(), String> {
    let end = addr.checked_add(bytes.len() as u64).ok_or("an overlay past the end of memory")?;
    let m = maps
        .iter_mut()
        .find(|m| addr >= m.start && end <= m.start + m.len)
        .ok_or_else(|| format!("bytes at 0x{addr:x} lie in no mapping"))?;
    let mut page = addr & !(HOST_PAGE - 1);
    while page < end {
        let idx = match m.overlay.binary_search_by_key(&page, |(a, _)| *a) {
            Ok(i) => i,
            Err(i) => {
                let mut b = vec![0u8; HOST_PAGE as usize];
                file_bytes(m, page, &mut b, read_at)?;
                m.overlay.insert(i, (page, b));
                i
            }
        };
        let from = addr.max(page);
        let to = end.min(page + HOST_PAGE);
        m.overlay[idx].1[(from - page) as usize..(to - page) as usize].copy_from_slice(&bytes[(from - addr) as usize..(to - addr) as usize]);
        page += HOST_PAGE;
    }
    Ok(())
}
