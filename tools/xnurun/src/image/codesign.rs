//! Checks an ad-hoc code signature the way the kernel and AMFI would before
//! arm64 code runs: the `LC_CODE_SIGNATURE` blob must be a SuperBlob
//! holding a CodeDirectory whose page hashes match the file
//! (osfmk/kern/cs_blobs.h for the layout; `ubc_cs_blob_add` and
//! `cs_validate_page`, bsd/kern/ubc_subr.c, for the checks). AMFI itself is
//! closed source; what it adds (unsigned arm64 code is killed, "must be at
//! least ad-hoc signed") is taken from Apple's documentation.
//!
//! Unlike the kernel, which checks a page's hash when the page is first
//! used, this checks every page before the guest starts: a tampered byte
//! anywhere is a refusal, not a later SIGKILL.

use sha2::{Digest, Sha256};

/// Blob magics and slot types (osfmk/kern/cs_blobs.h).
const CSMAGIC_EMBEDDED_SIGNATURE: u32 = 0xfade_0cc0;
const CSMAGIC_CODEDIRECTORY: u32 = 0xfade_0c02;
const CSSLOT_CODEDIRECTORY: u32 = 0;
const CSSLOT_ALTERNATE_CODEDIRECTORIES: u32 = 0x1000;
const CSSLOT_SIGNATURESLOT: u32 = 0x10000;
const CS_HASHTYPE_SHA256: u8 = 2;
const CS_ADHOC: u32 = 0x2;
/// The first CodeDirectory version with execSeg fields.
const CS_SUPPORTSEXECSEG: u32 = 0x20400;
pub const CS_EXECSEG_MAIN_BINARY: u64 = 0x1;

/// What a valid signature says, for the anatomy and the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub identifier: String,
    pub flags: u32,
    pub code_limit: u64,
    pub page_size: u64,
    pub n_code_slots: u32,
    pub exec_seg: Option<(u64, u64, u64)>,
}

fn be32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(off..off.checked_add(4)?)?.try_into().ok()?))
}

fn be64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(off..off.checked_add(8)?)?.try_into().ok()?))
}

/// Checks the blob `sig`, found at file offset `sig_off`, against the file
/// (`read_at` reads its bytes). Returns what it found, or why it fails.
pub fn verify(sig: &[u8], sig_off: u64, read_at: super::ReadAt) -> Result<Signature, String> {
    let bad = |what: &str| Err(format!("malformed code signature: {what}"));
    if be32(sig, 0) != Some(CSMAGIC_EMBEDDED_SIGNATURE) {
        return bad("no SuperBlob (magic 0xfade0cc0)");
    }
    let Some(len) = be32(sig, 4) else { return bad("truncated SuperBlob") };
    if len as usize > sig.len() || len < 12 {
        return bad("SuperBlob length past LC_CODE_SIGNATURE's datasize");
    }
    let sig = &sig[..len as usize];
    let count = be32(sig, 8).unwrap_or(0);
    let mut cd = None;
    let mut signed = false;
    for i in 0..count {
        let at = 12 + 8 * i as usize;
        let (Some(ty), Some(off)) = (be32(sig, at), be32(sig, at + 4)) else { return bad("index past the SuperBlob") };
        if off as usize >= sig.len() {
            return bad("a blob offset past the SuperBlob");
        }
        match ty {
            CSSLOT_CODEDIRECTORY => cd = Some(off as usize),
            // A CMS signature: checking it needs Apple's certificates.
            CSSLOT_SIGNATURESLOT => signed = true,
            t if (CSSLOT_ALTERNATE_CODEDIRECTORIES..CSSLOT_ALTERNATE_CODEDIRECTORIES + 5).contains(&t) => {
                return Err("the signature has alternate CodeDirectories; xnurun checks one SHA-256 CodeDirectory".into());
            }
            _ => {}
        }
    }
    let Some(cd_off) = cd else { return bad("no CodeDirectory") };
    let cd = &sig[cd_off..];
    if be32(cd, 0) != Some(CSMAGIC_CODEDIRECTORY) {
        return bad("CodeDirectory magic is not 0xfade0c02");
    }
    let cd_len = be32(cd, 4).unwrap_or(0) as usize;
    if cd_len > cd.len() || cd_len < 44 {
        return bad("CodeDirectory length");
    }
    let cd = &cd[..cd_len];
    let version = be32(cd, 8).unwrap_or(0);
    let flags = be32(cd, 12).unwrap_or(0);
    let hash_off = be32(cd, 16).unwrap_or(0) as usize;
    let ident_off = be32(cd, 20).unwrap_or(0) as usize;
    let n_special = be32(cd, 24).unwrap_or(0) as usize;
    let n_code = be32(cd, 28).unwrap_or(0);
    let code_limit32 = be32(cd, 32).unwrap_or(0);
    let (hash_size, hash_type, page_shift) = (cd[36], cd[37], cd[39]);
    if hash_type != CS_HASHTYPE_SHA256 || hash_size != 32 {
        return Err(format!("code signature hash type {hash_type} size {hash_size}: xnurun checks SHA-256 (type 2, 32 bytes)"));
    }
    if !(12..=16).contains(&page_shift) {
        return bad("page size is not 4 KiB to 64 KiB");
    }
    let code_limit = if version >= 0x20300 { be64(cd, 56).filter(|&v| v != 0).unwrap_or(u64::from(code_limit32)) } else { u64::from(code_limit32) };
    let exec_seg = if version >= CS_SUPPORTSEXECSEG {
        match (be64(cd, 64), be64(cd, 72), be64(cd, 80)) {
            (Some(b), Some(l), Some(f)) => Some((b, l, f)),
            _ => return bad("CodeDirectory too short for its version's execSeg fields"),
        }
    } else {
        None
    };
    if signed || flags & CS_ADHOC == 0 {
        return Err("not an ad-hoc signature: xnurun cannot check Apple's certificate chain".into());
    }
    if code_limit > sig_off {
        return Err(format!("code signature covers {code_limit} bytes, past its own start at {sig_off}"));
    }
    let page = 1u64 << page_shift;
    let want_slots = code_limit.div_ceil(page);
    if u64::from(n_code) != want_slots {
        return Err(format!("code signature has {n_code} page hashes, the {code_limit} signed bytes need {want_slots}"));
    }
    let hashes_end = hash_off.checked_add(n_code as usize * 32);
    if hash_off < n_special * 32 || hashes_end.is_none_or(|e| e > cd.len()) {
        return bad("page hashes past the CodeDirectory");
    }
    // Special slots (negative indices) hash other blobs of the SuperBlob;
    // an ad-hoc linker signature carries none it could check here.
    for s in 1..=n_special {
        let h = &cd[hash_off - s * 32..hash_off - (s - 1) * 32];
        if h.iter().any(|&b| b != 0) {
            return Err(format!("code signature special slot -{s} is set: xnurun checks only page hashes"));
        }
    }
    let mut buf = vec![0u8; page as usize];
    for i in 0..u64::from(n_code) {
        let start = i * page;
        let n = page.min(code_limit - start) as usize;
        read_at(start, &mut buf[..n])?;
        let got = Sha256::digest(&buf[..n]);
        let want = &cd[hash_off + i as usize * 32..hash_off + (i as usize + 1) * 32];
        if got.as_slice() != want {
            return Err(format!("code signature does not match page {i} (file bytes 0x{start:x}-0x{:x}): the file was changed after signing", start + n as u64));
        }
    }
    let identifier = cd.get(ident_off..).and_then(|s| s.split(|&c| c == 0).next()).map(|s| String::from_utf8_lossy(s).into_owned()).unwrap_or_default();
    Ok(Signature { identifier, flags, code_limit, page_size: page, n_code_slots: n_code, exec_seg })
}
