//! xnurun's allocator: a bump arena in .bss in front of the C library's
//! malloc.
//!
//! A run of one image is short and allocates little (the command line,
//! the load commands, a few buffers), but musl's malloc maps and unmaps
//! fresh pages for almost every size class it meets, and on the VMs this
//! project runs on each such page costs a fault and a TLB flush: about a
//! third of a hello's spawn-to-exit time went there (bench/results.md).
//! Here memory comes from a static arena whose pages fault in once;
//! blocks freed in last-in first-out order are reused; a block that
//! grows while it is the newest grows in place; and once the arena is
//! used up (a long run), the C library's malloc serves the rest.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

const SIZE: usize = 1 << 20;

#[repr(C, align(16))]
struct Space(UnsafeCell<[u8; SIZE]>);

/// `top` first, on the page the first blocks take: after the space it
/// would be a page of its own, one more fault per run.
#[repr(C)]
pub struct Arena {
    /// Offset of the first free byte.
    top: AtomicUsize,
    space: Space,
}

// SAFETY: the arena hands out disjoint ranges, claimed by compare-exchange.
unsafe impl Sync for Arena {}

impl Arena {
    pub const fn new() -> Self {
        Arena { top: AtomicUsize::new(0), space: Space(UnsafeCell::new([0; SIZE])) }
    }

    fn base(&self) -> usize {
        self.space.0.get() as usize
    }

    fn owns(&self, p: *mut u8) -> bool {
        (self.base()..self.base() + SIZE).contains(&(p as usize))
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every block is either a fresh, aligned, in-bounds range of the
// arena that no other block overlaps, or System's.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut top = self.top.load(Ordering::Relaxed);
        loop {
            let start = (self.base() + top).next_multiple_of(layout.align()) - self.base();
            let Some(end) = start.checked_add(layout.size()).filter(|&e| e <= SIZE) else {
                // SAFETY: same contract as ours.
                return unsafe { System.alloc(layout) };
            };
            match self.top.compare_exchange_weak(top, end, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return (self.base() + start) as *mut u8,
                Err(now) => top = now,
            }
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if !self.owns(p) {
            // SAFETY: p came from System.alloc with this layout.
            return unsafe { System.dealloc(p, layout) };
        }
        // The newest block goes back to the arena; older ones stay used.
        let (start, end) = (p as usize - self.base(), p as usize - self.base() + layout.size());
        let _ = self.top.compare_exchange(end, start, Ordering::Relaxed, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if self.owns(p) {
            let (start, end) = (p as usize - self.base(), p as usize - self.base() + layout.size());
            if let Some(new_end) = start.checked_add(new_size).filter(|&e| e <= SIZE)
                && self.top.compare_exchange(end, new_end, Ordering::Relaxed, Ordering::Relaxed).is_ok()
            {
                return p;
            }
        } else {
            // SAFETY: p came from System.alloc with this layout.
            return unsafe { System.realloc(p, layout, new_size) };
        }
        // SAFETY: the layout is valid with the new size (GlobalAlloc's contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as for alloc.
        let q = unsafe { self.alloc(new_layout) };
        if !q.is_null() {
            // SAFETY: both blocks are valid for the smaller size and disjoint.
            unsafe {
                std::ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                self.dealloc(p, layout);
            }
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static A: Arena = Arena::new();

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    // One test, since all of them share the one static arena.
    #[test]
    fn blocks_are_aligned_disjoint_reused_last_in_first_out_and_spill_to_malloc() {
        // SAFETY: every block is used within its layout and freed once.
        unsafe {
            let a = A.alloc(layout(3, 1));
            let b = A.alloc(layout(64, 64));
            assert!(A.owns(a) && A.owns(b));
            assert_eq!(b as usize % 64, 0);
            assert!(b as usize >= a as usize + 3);
            b.write_bytes(0xab, 64);
            assert_eq!(*a.add(0), 0, "b's bytes stayed out of a");

            // The newest block grows in place, keeps its bytes, and goes
            // back on free; an older one is copied out when it grows.
            let b2 = A.realloc(b, layout(64, 64), 4096);
            assert_eq!(b2, b);
            assert_eq!(*b2.add(63), 0xab);
            A.dealloc(b2, layout(4096, 64));
            let c = A.alloc(layout(16, 8));
            assert_eq!(c, b, "the freed newest block is reused");
            a.write(7);
            let a2 = A.realloc(a, layout(3, 1), 100);
            assert_ne!(a2, a);
            assert_eq!(*a2, 7);

            // Past the arena's end, the C library's malloc serves.
            let big = A.alloc(layout(SIZE, 8));
            assert!(!big.is_null() && !A.owns(big));
            big.add(SIZE - 1).write(1);
            let big2 = A.realloc(big, layout(SIZE, 8), SIZE + 4096);
            assert!(!A.owns(big2));
            assert_eq!(*big2.add(SIZE - 1), 1);
            A.dealloc(big2, layout(SIZE + 4096, 8));
            A.dealloc(a2, layout(100, 1));
            A.dealloc(c, layout(16, 8));
        }
    }
}
