#!/usr/bin/env python3
"""Checks the ad-hoc code signature of a thin 64-bit Mach-O executable.

    tests/verify_signature.py FILE

Recomputes every page hash with hashlib and compares it with the
CodeDirectory, and checks the signature's framing against the load
commands. Prints one `ok:` line and exits 0 when everything holds; prints
one `FILE: problem` line per problem on stderr and exits 1 otherwise.

Written from the structures' definitions, not from any signer's code:
SuperBlob and CodeDirectory as osfmk/kern/cs_blobs.h declares them
(big-endian, unlike the rest of the file), and what the kernel insists on
in bsd/kern/ubc_subr.c (`cs_validate_csblob`, `cs_validate_codedirectory`):
the hash slots cover the file from offset 0 in pages of 2**pageSize bytes
up to codeLimit, the last page short.
"""

import hashlib
import struct
import sys

MH_MAGIC_64 = 0xFEEDFACF
LC_SEGMENT_64 = 0x19
LC_CODE_SIGNATURE = 0x1D

CSMAGIC_EMBEDDED_SIGNATURE = 0xFADE0CC0
CSMAGIC_CODEDIRECTORY = 0xFADE0C02
CSSLOT_CODEDIRECTORY = 0
CS_HASHTYPE_SHA256 = 2
CS_ADHOC = 0x2
CS_LINKER_SIGNED = 0x20000
CS_EXECSEG_MAIN_BINARY = 0x1
CS_SUPPORTSEXECSEG = 0x20400


def check(data):
    """Returns (problems, summary)."""
    problems = []
    if len(data) < 32 or struct.unpack_from("<I", data, 0)[0] != MH_MAGIC_64:
        return ["not a little-endian 64-bit Mach-O"], None
    ncmds, sizeofcmds = struct.unpack_from("<II", data, 16)
    segments, sig = {}, None
    off = 32
    for _ in range(ncmds):
        if off + 8 > 32 + sizeofcmds:
            return ["load commands run past sizeofcmds"], None
        cmd, cmdsize = struct.unpack_from("<II", data, off)
        if cmd == LC_SEGMENT_64:
            name = data[off + 8:off + 24].rstrip(b"\0").decode("ascii", "replace")
            fileoff, filesize = struct.unpack_from("<QQ", data, off + 40)
            segments[name] = (fileoff, filesize)
        elif cmd == LC_CODE_SIGNATURE:
            sig = struct.unpack_from("<II", data, off + 8)
        if cmdsize < 8:
            return [f"load command at {off:#x} has cmdsize {cmdsize}"], None
        off += cmdsize
    if sig is None:
        return ["no LC_CODE_SIGNATURE"], None
    dataoff, datasize = sig
    if dataoff + datasize != len(data):
        problems.append(f"the signature ({dataoff:#x}+{datasize:#x}) does not end the file ({len(data):#x})")
    if "__LINKEDIT" not in segments:
        problems.append("no __LINKEDIT segment")
    else:
        lo, ln = segments["__LINKEDIT"]
        if not (lo <= dataoff and dataoff + datasize <= lo + ln):
            problems.append("the signature is not inside __LINKEDIT")
    if dataoff % 16:
        problems.append(f"the signature at {dataoff:#x} is not 16-byte aligned")

    blob = data[dataoff:dataoff + datasize]
    if len(blob) < 12:
        return problems + ["the signature is shorter than a SuperBlob header"], None
    magic, length, count = struct.unpack_from(">III", blob, 0)
    if magic != CSMAGIC_EMBEDDED_SIGNATURE:
        problems.append(f"SuperBlob magic {magic:#x}, expected {CSMAGIC_EMBEDDED_SIGNATURE:#x}")
    if length > datasize:
        problems.append(f"SuperBlob length {length:#x} exceeds LC_CODE_SIGNATURE datasize {datasize:#x}")
    if count != 1:
        problems.append(f"SuperBlob holds {count} blobs, expected exactly one CodeDirectory")
    if len(blob) < 20:
        return problems + ["no blob index"], None
    slot, cdoff = struct.unpack_from(">II", blob, 12)
    if slot != CSSLOT_CODEDIRECTORY:
        problems.append(f"first blob is slot {slot}, expected the CodeDirectory (0)")
    if cdoff + 88 > len(blob):
        return problems + [f"the CodeDirectory at {cdoff:#x} runs past the signature"], None
    (cmagic, clength, version, flags, hash_off, ident_off, n_special, n_code, code_limit,
     hash_size, hash_type, _platform, page_shift, _spare2, scatter_off, team_off, _spare3,
     code_limit64, exec_base, exec_limit, exec_flags) = struct.unpack_from(">9I4BIIIIQQQQ", blob, cdoff)
    cd = blob[cdoff:cdoff + clength]
    if cmagic != CSMAGIC_CODEDIRECTORY:
        problems.append(f"CodeDirectory magic {cmagic:#x}, expected {CSMAGIC_CODEDIRECTORY:#x}")
    if cdoff + clength > length:
        problems.append("the CodeDirectory runs past its SuperBlob")
    if version < CS_SUPPORTSEXECSEG:
        problems.append(f"CodeDirectory version {version:#x} predates execSeg fields (0x20400)")
    if flags != CS_ADHOC | CS_LINKER_SIGNED:
        problems.append(f"flags {flags:#x}, expected adhoc|linker-signed {CS_ADHOC | CS_LINKER_SIGNED:#x}")
    if hash_type != CS_HASHTYPE_SHA256 or hash_size != 32:
        problems.append(f"hash type {hash_type} size {hash_size}, expected SHA-256 (2, 32)")
    if page_shift != 12:
        problems.append(f"page size 2**{page_shift}, expected 4096")
    if n_special != 0:
        problems.append(f"{n_special} special slots, expected none (no Info.plist, requirements or entitlements)")
    if scatter_off or team_off or code_limit64:
        problems.append("scatter, team or 64-bit code limit set")
    if code_limit != dataoff:
        problems.append(f"codeLimit {code_limit:#x} is not where the signature starts ({dataoff:#x})")
    page = 1 << page_shift if page_shift < 32 else 0
    if page and n_code != (code_limit + page - 1) // page:
        problems.append(f"{n_code} code slots for {code_limit:#x} bytes in pages of {page}")
    text = segments.get("__TEXT")
    if text is None or (exec_base, exec_limit) != text:
        problems.append(f"execSeg {exec_base:#x}+{exec_limit:#x} is not __TEXT {text}")
    if exec_flags != CS_EXECSEG_MAIN_BINARY:
        problems.append(f"execSegFlags {exec_flags:#x}, expected main-binary (0x1)")
    ident_end = cd.find(b"\0", ident_off)
    if ident_off >= len(cd) or ident_end < 0:
        problems.append("the identifier is not a NUL-terminated string inside the CodeDirectory")
        ident = ""
    else:
        ident = cd[ident_off:ident_end].decode("ascii", "replace")
    if hash_off + n_code * hash_size > len(cd):
        return problems + ["the hash slots run past the CodeDirectory"], None
    if page and hash_size == 32:
        for i in range(n_code):
            start = i * page
            want = hashlib.sha256(data[start:min(start + page, code_limit)]).hexdigest()
            got = cd[hash_off + i * 32:hash_off + (i + 1) * 32].hex()
            if want != got:
                problems.append(f"page {i} ({start:#x}): stored hash {got} != recomputed {want}")
    summary = (f"{n_code} page hashes (SHA-256, 4096-byte pages up to {code_limit:#x}) match; "
               f"CodeDirectory version {version:#x}, flags {flags:#x}, execSeg {exec_base:#x}+{exec_limit:#x} "
               f"main-binary, identifier {ident}")
    return problems, summary


def main():
    if len(sys.argv) != 2:
        print("usage: verify_signature.py FILE", file=sys.stderr)
        return 2
    path = sys.argv[1]
    with open(path, "rb") as f:
        data = f.read()
    try:
        problems, summary = check(data)
    except struct.error as e:
        problems, summary = [f"truncated structure: {e}"], None
    for p in problems:
        print(f"{path}: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"ok: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
