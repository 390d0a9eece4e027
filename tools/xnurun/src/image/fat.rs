//! Universal (fat) files as `exec_fat_imgact` (bsd/kern/kern_exec.c) takes
//! them: `fatfile_validate_fatarches` (bsd/kern/mach_fat.c) checks the
//! table, then the best slice for the machine is run as if it were the
//! whole file. xnurun plays the machine that runs every kind it can: an
//! Intel Mac's choice (x86_64 first, then i386: `grade_binary`), and arm64
//! only where the file has no x86 slice, as an Apple Silicon Mac would run
//! it.

use object::macho;

/// The slice to run: where it lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    pub offset: u64,
    pub size: u64,
}

const WHERE: &str = "exec_fat_imgact, bsd/kern/kern_exec.c; fatfile_validate_fatarches, bsd/kern/mach_fat.c";

fn be32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// Whether `first` (the file's first bytes) opens a universal file.
pub fn is_fat(first: &[u8]) -> bool {
    matches!(be32(first, 0), Some(macho::FAT_MAGIC | macho::FAT_MAGIC_64))
}

/// Picks the slice from `head` (the file's first page) of a `file_len`-byte
/// file, or says why XNU would refuse the file.
pub fn pick(head: &[u8], file_len: u64) -> Result<Slice, String> {
    let refuse = |why: String| Err(format!("universal file: {why} (XNU: {WHERE})"));
    match be32(head, 0) {
        Some(macho::FAT_MAGIC) => {}
        Some(macho::FAT_MAGIC_64) => return refuse("FAT_MAGIC_64, which the kernel does not take (only FAT_MAGIC)".into()),
        _ => return refuse("no fat header".into()),
    }
    let n = be32(head, 4).unwrap_or(0) as usize;
    // The table must fit in the first page the kernel read.
    let table_end = 8 + n * 20;
    if table_end > head.len().min(4096) {
        return refuse(format!("{n} slices do not fit in the first page"));
    }
    let mut arches = Vec::with_capacity(n);
    for i in 0..n {
        let at = 8 + i * 20;
        let field = |k: usize| be32(head, at + 4 * k).unwrap_or(0);
        let (cputype, subtype, offset, size) = (field(0), field(1), field(2), field(3));
        let end = u64::from(offset) + u64::from(size);
        if (offset as usize) < table_end || offset.checked_add(size).is_none() || end > file_len {
            return refuse(format!("slice {i} at 0x{offset:x}+0x{size:x} lies outside the file or over the header"));
        }
        for &(c, s, o, z) in &arches {
            if (c, s) == (cputype, subtype) {
                return refuse(format!("two slices for CPU type 0x{cputype:x}"));
            }
            let (b, e) = (u64::from(o), u64::from(o) + u64::from(z));
            if u64::from(offset) < e && b < end {
                return refuse(format!("slice {i} overlaps another"));
            }
        }
        arches.push((cputype, subtype, offset, size));
    }
    for want in [macho::CPU_TYPE_X86_64, macho::CPU_TYPE_X86, macho::CPU_TYPE_ARM64] {
        if let Some(&(_, _, offset, size)) = arches.iter().find(|a| a.0 == want.0) {
            return Ok(Slice { offset: u64::from(offset), size: u64::from(size) });
        }
    }
    refuse(format!("none of its {n} slices is x86_64, i386 or arm64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fat(arches: &[(u32, u32, u32)], len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        b[..4].copy_from_slice(&macho::FAT_MAGIC.to_be_bytes());
        b[4..8].copy_from_slice(&(arches.len() as u32).to_be_bytes());
        for (i, &(cpu, off, size)) in arches.iter().enumerate() {
            let at = 8 + 20 * i;
            for (k, v) in [cpu, 3, off, size, 12].into_iter().enumerate() {
                b[at + 4 * k..at + 4 * k + 4].copy_from_slice(&v.to_be_bytes());
            }
        }
        b
    }

    #[test]
    fn picks_as_the_issue_says_and_refuses_bad_tables() {
        let (x64, x86, arm, ppc) = (macho::CPU_TYPE_X86_64.0, macho::CPU_TYPE_X86.0, macho::CPU_TYPE_ARM64.0, macho::CPU_TYPE_POWERPC.0);
        let f = fat(&[(x86, 0x1000, 0x1000), (x64, 0x2000, 0x1000)], 0x3000);
        assert_eq!(pick(&f, 0x3000), Ok(Slice { offset: 0x2000, size: 0x1000 }));
        let f = fat(&[(arm, 0x1000, 0x1000), (x86, 0x2000, 0x1000)], 0x3000);
        assert_eq!(pick(&f, 0x3000), Ok(Slice { offset: 0x2000, size: 0x1000 }));
        let f = fat(&[(ppc, 0x1000, 0x1000), (arm, 0x2000, 0x1000)], 0x3000);
        assert_eq!(pick(&f, 0x3000), Ok(Slice { offset: 0x2000, size: 0x1000 }));
        assert!(pick(&fat(&[(ppc, 0x1000, 0x1000)], 0x2000), 0x2000).unwrap_err().contains("none of its 1 slices"));
        assert!(pick(&fat(&[(x64, 0x1000, 0x2000)], 0x2000), 0x2000).unwrap_err().contains("outside the file"));
        assert!(pick(&fat(&[(x64, 0x4, 0x10)], 0x2000), 0x2000).unwrap_err().contains("over the header"));
        assert!(pick(&fat(&[(x64, 0x1000, 0x800), (x86, 0x1400, 0x800)], 0x2000), 0x2000).unwrap_err().contains("overlaps"));
        assert!(pick(&fat(&[(x64, 0x1000, 0x800), (x64, 0x1800, 0x800)], 0x2000), 0x2000).unwrap_err().contains("two slices"));
        let mut many = fat(&[], 0x2000);
        many[4..8].copy_from_slice(&1000u32.to_be_bytes());
        assert!(pick(&many, 0x2000).unwrap_err().contains("first page"));
    }
}
