//! Opens FILE as XNU's exec path would before reading it: only a regular
//! file, and only the bytes loading needs.

use super::u32_at;
use crate::xnu::vm;
use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};

/// An open image: its size, the bytes `parse_machfile` reads first, and a
/// way to read the rest on demand.
pub struct ImageFile {
    file: File,
    /// Where the Mach-O image starts in the file: 0, or a universal
    /// file's chosen slice.
    base: u64,
    /// The image's size (the slice's, in a universal file).
    pub len: u64,
    pub head: Vec<u8>,
}

/// Why FILE could not be used.
pub enum OpenError {
    /// It cannot be opened or read: xnurun's status 127.
    Unreadable(String),
    /// XNU's exec would refuse it: status 126.
    Refused(String),
}

/// xnurun's own limit on the load commands it reads. XNU reads
/// `round_page(header + sizeofcmds)` into one kernel allocation
/// (`parse_machfile`), which fails for absurd sizes; 64 MiB is far past any
/// real image.
pub const HEAD_MAX: u64 = 64 << 20;

/// How many bytes from the start of the file the loaders need, given the
/// first [`HEADER_MAX`] of them: what `parse_machfile` reads,
/// `round_page(header + sizeofcmds)`, and never more than the file. Only
/// this much is read, however large the file is.
pub fn head_len(first: &[u8], file_len: u64) -> u64 {
    let sizeofcmds = u32_at(first, 20).unwrap_or(0);
    vm::round(32 + u64::from(sizeofcmds), vm::PAGE_X86).min(file_len)
}

/// Enough bytes for either header.
pub const HEADER_MAX: usize = 32;

pub fn open(path: &std::ffi::OsStr) -> Result<ImageFile, OpenError> {
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| OpenError::Unreadable(format!("cannot read: {e}")))?;
    let meta = file.metadata().map_err(|e| OpenError::Unreadable(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        // exec_check_permissions (bsd/kern/kern_exec.c): anything but a
        // regular file (VREG) is EACCES.
        return Err(OpenError::Refused("not a regular file: execve refuses it with EACCES (exec_check_permissions, bsd/kern/kern_exec.c)".into()));
    }
    let unreadable = |e: std::io::Error| OpenError::Unreadable(format!("cannot read: {e}"));
    let (mut base, mut len) = (0, meta.len());
    let mut first = vec![0u8; (HEADER_MAX as u64).min(len) as usize];
    file.read_exact_at(&mut first, 0).map_err(unreadable)?;
    if super::fat::is_fat(&first) {
        let mut page = vec![0u8; 4096.min(len) as usize];
        file.read_exact_at(&mut page, 0).map_err(unreadable)?;
        let slice = super::fat::pick(&page, len).map_err(OpenError::Refused)?;
        (base, len) = (slice.offset, slice.size);
        first.truncate((HEADER_MAX as u64).min(len) as usize);
        file.read_exact_at(&mut first, base).map_err(unreadable)?;
    }
    let need = head_len(&first, len);
    if need > HEAD_MAX {
        return Err(OpenError::Refused(format!("load commands of {need} bytes: more than xnurun reads ({HEAD_MAX})")));
    }
    let mut head = vec![0u8; need as usize];
    file.read_exact_at(&mut head, base).map_err(unreadable)?;
    Ok(ImageFile { file, base, len, head })
}

impl ImageFile {
    /// The descriptor xnurun holds the image by: not the guest's.
    pub fn fd(&self) -> i32 {
        std::os::fd::AsRawFd::as_raw_fd(&self.file)
    }

    /// The descriptor and file offset to map the image's bytes at `off`
    /// from, where that offset is page-aligned in the file (a universal
    /// file's slice need not be); `None` where it is not.
    pub fn mappable(&self, off: u64) -> Option<(i32, u64)> {
        let at = self.base.checked_add(off)?;
        at.is_multiple_of(4096).then(|| (self.fd(), at))
    }

    /// Reads `buf.len()` bytes at `off` in the image; the loader has
    /// checked they lie inside it.
    pub fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), String> {
        self.file.read_exact_at(buf, self.base + off).map_err(|e| format!("reading the image at offset {off}: {e}"))
    }
}
