//! Where a 64-bit task might run `lock int n`, which the CPU refuses (#UD:
//! LOCK stands only before an instruction that writes memory) and XNU
//! turns into SIGILL (`user_trap`, osfmk/i386/trap.c: T_INVALID_OPCODE is
//! EXC_BAD_INSTRUCTION). QEMU runs it as `int n`, and unicorn hands the
//! interrupt hook `rip` already past it: whether a LOCK stood before the
//! `cd n` cannot be told from there, since the byte before may end another
//! instruction (`mov al, 0xf0; int 0x80`). An i386 task's block hook gives
//! the block to decode from; a 64-bit task has none (it would slow every
//! block), so code hooks watch the 14 bytes before each `cd` byte that has
//! an 0xf0 among them, and judge the instruction that starts there.
//!
//! The image's bytes are all the code a task can have: xnurun maps nothing
//! after the load (no `mmap`), and a mapping both writable and executable,
//! whose bytes may change, is watched whole.

use crate::image::address_space::Layout;
use crate::image::file::ImageFile;

/// At most this many hooks: unicorn looks through its code hooks for every
/// instruction it translates. Past it, the closest ranges are joined.
const MAX_HOOKS: usize = 64;

/// The longest an x86 instruction may be: a refused gate starts at most
/// 14 bytes before its `cd`.
const REACH: u64 = 14;

/// The ranges `[first, last]` to watch, by address.
pub fn watched(layout: &Layout, file: &ImageFile) -> Result<Vec<(u64, u64)>, String> {
    let mut ranges = Vec::new();
    let mut scanned: Vec<((u64, u64), Vec<u64>)> = Vec::new();
    for m in layout.maps.iter().filter(|m| m.prot & 4 != 0) {
        if m.prot & 2 != 0 {
            ranges.push((m.start, m.start + m.len - 1));
            continue;
        }
        if let Some((offset, len)) = m.file {
            // Many segments may map the same file bytes: scan them once.
            let at = match scanned.iter().find(|(key, _)| *key == (offset, len)) {
                Some((_, at)) => at.clone(),
                None => {
                    let at = scan_file(file, offset, len.min(file.len.saturating_sub(offset)))?;
                    scanned.push(((offset, len), at.clone()));
                    at
                }
            };
            ranges.extend(
                at.iter()
                    .map(|&cd| (m.start + cd.saturating_sub(REACH), m.start + cd)),
            );
        }
        for (addr, bytes) in &m.overlay {
            ranges.extend(
                candidates(bytes)
                    .into_iter()
                    .map(|cd| (addr + cd.saturating_sub(REACH), addr + cd)),
            );
        }
    }
    Ok(joined(ranges, MAX_HOOKS))
}

/// The offsets (from `offset`) of the candidate `cd` bytes in `len` bytes of
/// the image, read in pieces that overlap by the reach.
fn scan_file(file: &ImageFile, offset: u64, len: u64) -> Result<Vec<u64>, String> {
    const PIECE: u64 = 1 << 20;
    let mut found = Vec::new();
    let mut start = 0;
    while start < len {
        let from = start.saturating_sub(REACH);
        let mut buf = vec![0; (len.min(start + PIECE) - from) as usize];
        file.read_at(offset + from, &mut buf)?;
        found.extend(
            candidates(&buf)
                .into_iter()
                .map(|i| from + i)
                .filter(|&i| i >= start),
        );
        start += PIECE;
    }
    Ok(found)
}

/// The offsets of the `cd` bytes in `bytes` with an 0xf0 in the reach
/// before them.
fn candidates(bytes: &[u8]) -> Vec<u64> {
    (0..bytes.len())
        .filter(|&i| bytes[i] == 0xcd && bytes[i.saturating_sub(REACH as usize)..i].contains(&0xf0))
        .map(|i| i as u64)
        .collect()
}

/// `ranges` sorted, overlapping ones merged, then the closest joined until
/// at most `max` are left.
fn joined(mut ranges: Vec<(u64, u64)>, max: usize) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (a, b) in ranges {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    while out.len() > max {
        let i = (1..out.len())
            .min_by_key(|&i| out[i].0 - out[i - 1].1)
            .unwrap_or(1);
        out[i - 1].1 = out[i].1;
        out.remove(i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cd_is_watched_only_with_a_lock_byte_within_reach() {
        assert_eq!(candidates(&[0xf0, 0xcd, 0x80]), vec![1]);
        assert_eq!(
            candidates(&[0xb0, 0xf0, 0xcd, 0x80]),
            vec![2],
            "ambiguous: watched"
        );
        assert_eq!(
            candidates(&[0xcd, 0x80, 0xf0]),
            Vec::<u64>::new(),
            "the lock byte after"
        );
        let mut far = vec![0xf0];
        far.extend([0x90; 14]);
        far.push(0xcd);
        assert_eq!(
            candidates(&far),
            Vec::<u64>::new(),
            "15 bytes before: out of reach"
        );
        far.remove(1);
        assert_eq!(candidates(&far), vec![14]);
    }

    #[test]
    fn ranges_merge_then_the_closest_join() {
        assert_eq!(
            joined(vec![(20, 30), (0, 10), (5, 12)], 8),
            vec![(0, 12), (20, 30)]
        );
        assert_eq!(
            joined(vec![(0, 10), (11, 12)], 8),
            vec![(0, 12)],
            "adjacent"
        );
        assert_eq!(
            joined(vec![(0, 1), (100, 101), (10, 11)], 2),
            vec![(0, 11), (100, 101)]
        );
        assert_eq!(joined(Vec::new(), 2), Vec::new());
    }
}
