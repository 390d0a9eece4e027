//! The embedded code signature an arm64 image carries at the end of
//! `__LINKEDIT`, byte by byte: the SuperBlob, its index, the CodeDirectory,
//! the identifier and the page hashes.
//!
//! The structures are those of osfmk/kern/cs_blobs.h, declared here with
//! their C field names because `object` has no types for them; unlike the
//! rest of a Mach-O file they are big-endian. What the kernel checks is in
//! bsd/kern/ubc_subr.c (`cs_validate_csblob`, `cs_validate_codedirectory`).
//! Hashes are shown as stored, not recomputed: recomputing them is the
//! tests' job (tests/verify_signature.py).

use crate::table::{Kind, R, Table, at, quoted};
use object::BigEndian as BE;
use object::endian::{U32, U64};
use std::mem::{offset_of, size_of, size_of_val};

#[derive(Clone, Copy)]
#[repr(C)]
struct SuperBlob {
    magic: U32<BE>,
    length: U32<BE>,
    count: U32<BE>,
}

#[derive(Clone, Copy)]
#[repr(C)]
struct BlobIndex {
    r#type: U32<BE>,
    offset: U32<BE>,
}

/// `CS_CodeDirectory` up to version 0x20400 (the execSeg fields).
#[allow(non_snake_case)]
#[derive(Clone, Copy)]
#[repr(C)]
struct CodeDirectory {
    magic: U32<BE>,
    length: U32<BE>,
    version: U32<BE>,
    flags: U32<BE>,
    hashOffset: U32<BE>,
    identOffset: U32<BE>,
    nSpecialSlots: U32<BE>,
    nCodeSlots: U32<BE>,
    codeLimit: U32<BE>,
    hashSize: u8,
    hashType: u8,
    platform: u8,
    pageSize: u8,
    spare2: U32<BE>,
    scatterOffset: U32<BE>,
    teamOffset: U32<BE>,
    spare3: U32<BE>,
    codeLimit64: U64<BE>,
    execSegBase: U64<BE>,
    execSegLimit: U64<BE>,
    execSegFlags: U64<BE>,
}

// SAFETY: plain byte arrays and bytes in repr(C), so no padding and
// alignment 1: every bit pattern is a valid value.
unsafe impl object::Pod for SuperBlob {}
unsafe impl object::Pod for BlobIndex {}
unsafe impl object::Pod for CodeDirectory {}

/// A field's value whatever its width.
trait Val {
    fn val(&self) -> u64;
}
impl Val for U32<BE> {
    fn val(&self) -> u64 {
        self.get(BE).into()
    }
}
impl Val for U64<BE> {
    fn val(&self) -> u64 {
        self.get(BE)
    }
}
impl Val for u8 {
    fn val(&self) -> u64 {
        (*self).into()
    }
}

macro_rules! cs {
    ($t:expr, $base:expr, $S:ty, $s:expr, $field:ident, $meaning:expr) => {
        $t.field(
            $base + offset_of!($S, $field),
            size_of_val(&$s.$field),
            stringify!($field),
            $s.$field.val(),
            &$meaning,
        )
    };
}

const CSMAGIC_EMBEDDED_SIGNATURE: u64 = 0xfade0cc0;
const CSMAGIC_CODEDIRECTORY: u64 = 0xfade0c02;
const CS_ADHOC: u64 = 0x2;
const CS_LINKER_SIGNED: u64 = 0x20000;
const CS_HASHTYPE_SHA256: u64 = 2;
const CS_EXECSEG_MAIN_BINARY: u64 = 0x1;

fn flags(f: u64) -> String {
    let mut names = Vec::new();
    if f & CS_ADHOC != 0 {
        names.push("CS_ADHOC: no certificate, only hashes");
    }
    if f & CS_LINKER_SIGNED != 0 {
        names.push("CS_LINKER_SIGNED: made by the linker, not codesign");
    }
    if names.is_empty() { "no flags".into() } else { names.join("; ") }
}

/// Explains the signature at `off` (LC_CODE_SIGNATURE's dataoff), `size`
/// bytes long: one heading per structure, every byte in exactly one row.
pub fn explain(t: &mut Table, data: &[u8], off: usize, size: usize) -> R<()> {
    let end = off.saturating_add(size);
    let sb: &SuperBlob = at(data, off, "the code signature's SuperBlob")?;
    t.heading(Kind::Signature, &format!("code signature: SuperBlob ({} bytes at {off:#x}, big-endian like all of the signature)", size_of::<SuperBlob>()));
    let magic = sb.magic.val();
    cs!(t, off, SuperBlob, sb, magic, if magic == CSMAGIC_EMBEDDED_SIGNATURE {
        "CSMAGIC_EMBEDDED_SIGNATURE: a signature embedded in the file it signs"
    } else {
        "not CSMAGIC_EMBEDDED_SIGNATURE"
    });
    cs!(t, off, SuperBlob, sb, length, "bytes in the SuperBlob and every blob it holds");
    cs!(t, off, SuperBlob, sb, count, "blobs that follow, one index entry each");
    let mut next = off + size_of::<SuperBlob>();
    let mut blobs = Vec::new();
    for i in 0..sb.count.val() as usize {
        let o = off + size_of::<SuperBlob>() + i * size_of::<BlobIndex>();
        let ix: &BlobIndex = at(data, o, "a blob index entry")?;
        let slot = ix.r#type.val();
        t.heading(Kind::Signature, &format!("code signature: blob index {i} ({} bytes at {o:#x})", size_of::<BlobIndex>()));
        t.field(o + offset_of!(BlobIndex, r#type), 4, "type", slot, match slot {
            0 => "CSSLOT_CODEDIRECTORY: the one blob an ad-hoc signature needs",
            _ => "another slot (requirements, entitlements, a CMS signature...)",
        });
        cs!(t, o, BlobIndex, ix, offset, "where the blob starts, from the SuperBlob's first byte");
        blobs.push((slot, off.saturating_add(ix.offset.val() as usize)));
        next = o + size_of::<BlobIndex>();
    }
    for (slot, o) in blobs {
        if o > next {
            pad(t, data, next, o, "before the blob: it starts 8-byte aligned");
        }
        if slot != 0 {
            return Err(format!("blob at {o:#x}: only a CodeDirectory is explained"));
        }
        next = code_directory(t, data, o)?;
    }
    if end > next {
        pad(t, data, next, end, "after the SuperBlob, up to LC_CODE_SIGNATURE's datasize");
    }
    Ok(())
}

/// The CodeDirectory at `o`, its identifier and its hash slots; returns
/// where it ends.
fn code_directory(t: &mut Table, data: &[u8], o: usize) -> R<usize> {
    let cd: &CodeDirectory = at(data, o, "the CodeDirectory")?;
    t.heading(Kind::Signature, &format!("code signature: CodeDirectory ({} bytes of fields at {o:#x})", size_of::<CodeDirectory>()));
    let magic = cd.magic.val();
    cs!(t, o, CodeDirectory, cd, magic, if magic == CSMAGIC_CODEDIRECTORY { "CSMAGIC_CODEDIRECTORY" } else { "not a CodeDirectory" });
    cs!(t, o, CodeDirectory, cd, length, "bytes in the CodeDirectory: fields, identifier, hashes");
    cs!(t, o, CodeDirectory, cd, version, "0x20400: has the execSeg fields (CS_SUPPORTSEXECSEG)");
    cs!(t, o, CodeDirectory, cd, flags, flags(cd.flags.val()));
    cs!(t, o, CodeDirectory, cd, hashOffset, "where hash slot 0 is, from the CodeDirectory's first byte");
    cs!(t, o, CodeDirectory, cd, identOffset, "where the identifier string is");
    cs!(t, o, CodeDirectory, cd, nSpecialSlots, "hashes of other blobs (Info.plist, requirements, entitlements), stored before slot 0: none");
    cs!(t, o, CodeDirectory, cd, nCodeSlots, "page hashes: one per page up to codeLimit");
    cs!(t, o, CodeDirectory, cd, codeLimit, "bytes covered, from offset 0: everything before the signature");
    cs!(t, o, CodeDirectory, cd, hashSize, "bytes per hash");
    let ht = cd.hashType.val();
    cs!(t, o, CodeDirectory, cd, hashType, if ht == CS_HASHTYPE_SHA256 { "CS_HASHTYPE_SHA256" } else { "another hash type" });
    cs!(t, o, CodeDirectory, cd, platform, "0: not a platform (Apple) binary");
    let shift = cd.pageSize.val();
    cs!(t, o, CodeDirectory, cd, pageSize, format!("log2 of the page hashed: {} bytes", 1u64.checked_shl(shift as u32).unwrap_or(0)));
    cs!(t, o, CodeDirectory, cd, spare2, "unused");
    cs!(t, o, CodeDirectory, cd, scatterOffset, "0: no scatter list, the pages are contiguous");
    cs!(t, o, CodeDirectory, cd, teamOffset, "0: no team identifier (ad-hoc)");
    cs!(t, o, CodeDirectory, cd, spare3, "unused");
    cs!(t, o, CodeDirectory, cd, codeLimit64, "0: codeLimit fits in 32 bits");
    cs!(t, o, CodeDirectory, cd, execSegBase, "file offset of the executable segment, __TEXT");
    cs!(t, o, CodeDirectory, cd, execSegLimit, "its size");
    let ef = cd.execSegFlags.val();
    cs!(t, o, CodeDirectory, cd, execSegFlags, if ef & CS_EXECSEG_MAIN_BINARY != 0 {
        "CS_EXECSEG_MAIN_BINARY: this is a main executable"
    } else {
        "not marked as a main executable"
    });

    let end = o.saturating_add(cd.length.val() as usize);
    let mut next = o + size_of::<CodeDirectory>();
    let ident = o.saturating_add(cd.identOffset.val() as usize);
    let hashes = o.saturating_add(cd.hashOffset.val() as usize);
    let bytes = data.get(ident..end.min(data.len())).unwrap_or_default();
    let len = bytes.iter().position(|&b| b == 0).ok_or("the identifier has no terminating NUL")? + 1;
    t.heading(Kind::Signature, &format!("code signature: identifier and hash slots ({} bytes at {next:#x})", end.saturating_sub(next)));
    if ident > next {
        pad(t, data, next, ident, "before the identifier");
    }
    t.field(ident, len, "identifier", quoted(&bytes[..len - 1]), "NUL-terminated; the linker's output file name (cargo's deps/hello-HASH)");
    next = ident + len;
    if hashes > next {
        pad(t, data, next, hashes, "aligns the hash slots");
    }
    let size = cd.hashSize.val() as usize;
    let page = 1usize.checked_shl(shift as u32).unwrap_or(0);
    let limit = cd.codeLimit.val() as usize;
    for i in 0..cd.nCodeSlots.val() as usize {
        let h = hashes + i * size;
        let stored = data.get(h..h + size).ok_or("a hash slot runs past the end of the file")?;
        let from = i * page;
        let to = (from + page).min(limit);
        let zeros = data.get(from..to).is_some_and(|p| p.iter().all(|&b| b == 0));
        let what = format!(
            "SHA-256 of file bytes {from:#x}..{to:#x}{}{}",
            if to - from < page { " (the short last page, up to codeLimit)" } else { "" },
            if zeros { " (all zeros)" } else { "" },
        );
        t.field(h, size, &format!("hash slot {i}"), crate::table::hex(stored).replace(' ', ""), &what);
        next = h + size;
    }
    if end > next {
        pad(t, data, next, end, "after the hash slots, inside the CodeDirectory");
    }
    Ok(end.max(next))
}

fn pad(t: &mut Table, data: &[u8], from: usize, to: usize, why: &str) {
    let bytes = data.get(from..to).unwrap_or_default();
    let (kind, what) = if bytes.iter().all(|&b| b == 0) {
        (Kind::Padding, format!("zeros: {why}"))
    } else {
        (Kind::Unknown, format!("not described by any field: {}", crate::table::hex(&bytes[..bytes.len().min(32)])))
    };
    t.region(kind, from, to - from, "padding", &what);
}
