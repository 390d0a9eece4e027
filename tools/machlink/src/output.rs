//! Writing the image so that no run ever leaves a partial or stale file at
//! the output path: write a temporary file beside it, then rename.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.machlink-{}.tmp", std::process::id()))
}

pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let shown = path.display().to_string();
    if path.file_name().is_none() {
        return Err(Error::new(shown, "output path names no file"));
    }
    let temp = temp_path(path);
    let result = (|| {
        let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o755).open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&temp);
        Error::new(shown, format!("cannot write output: {e}"))
    })
}

/// After a failed link, the output of an earlier run would pass for this
/// one's: remove it, as ld64 does. Only a regular file is ever removed.
pub fn remove_stale(path: &Path) {
    if fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
        let _ = fs::remove_file(path);
    }
}
