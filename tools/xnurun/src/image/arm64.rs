//! Judges an arm64 executable the way XNU's exec path, AMFI and dyld would
//! before its `main` runs. XNU runs no static arm64 executable: the image is
//! dyld's to load, so the rules are the kernel's for a dynamic, position-
//! independent image (`parse_machfile`, `load_machfile`, `load_segment`,
//! bsd/kern/mach_loader.c), the signature's (`codesign.rs`), and the few of
//! dyld's that decide whether `main` is reached (dyld's `MachOFile.cpp`
//! and `Loader.cpp`).

use super::{codesign, refuse, segments, u32_at, u64_at, Image, ReadAt, Refusal, Start, EXEC_MACH, PARSE, RULE_DYLD};
use crate::xnu::Arch;
use object::macho;

const DYLD: &str = "dyld's MachOFile.cpp / Loader.cpp (apple-oss-distributions/dyld)";
const AMFI: &str = "AMFI (closed source): arm64 code must be at least ad-hoc signed; checks as ubc_cs_blob_add, bsd/kern/ubc_subr.c";

/// Whether the header is a 64-bit arm64 one.
pub fn is_arm64(head: &[u8]) -> bool {
    u32_at(head, 0) == Some(macho::MH_MAGIC_64) && u32_at(head, 4) == Some(macho::CPU_TYPE_ARM64.0)
}

/// Checks the image whose first bytes are `head` (at least the header and
/// the load commands), reading the rest through `read_at`.
pub fn load(head: &[u8], file_len: u64, read_at: ReadAt) -> Result<Image, Refusal> {
    let (Some(subtype), Some(filetype), Some(ncmds), Some(sizeofcmds), Some(flags)) =
        (u32_at(head, 8), u32_at(head, 12), u32_at(head, 16), u32_at(head, 20), u32_at(head, 24))
    else {
        return refuse("truncated header", EXEC_MACH, format!("{file_len} bytes, header needs 32"));
    };
    // grade_binary (kern_exec.c) takes arm64 (ALL/V8) everywhere; arm64e
    // needs pointer authentication, which the emulated CPU does not do.
    let sub = subtype & !macho::CPU_SUBTYPE_MASK;
    if sub != macho::CPU_SUBTYPE_ARM64_ALL.0 && sub != macho::CPU_SUBTYPE_ARM64_V8.0 {
        return refuse("CPU subtype", EXEC_MACH, format!("arm64 subtype {sub}: xnurun runs plain arm64 (0 or 1), not arm64e"));
    }
    if filetype != macho::MH_EXECUTE.0 {
        return refuse("not MH_EXECUTE", EXEC_MACH, format!("filetype {filetype}; exec runs only MH_EXECUTE"));
    }
    if flags & macho::MH_DYLDLINK.0 == 0 {
        return refuse("static arm64 executable", PARSE, "no MH_DYLDLINK: XNU runs static executables only for x86_64");
    }
    if flags & macho::MH_PIE.0 == 0 {
        return refuse("not position-independent", PARSE, "no MH_PIE: arm64 executables must be PIE (pie_required)");
    }
    let cmds_end = 32 + u64::from(sizeofcmds);
    if cmds_end > file_len || (head.len() as u64) < cmds_end {
        return refuse("load commands past end of file", PARSE, format!("header + sizeofcmds = {cmds_end} bytes, file has {file_len}"));
    }

    let mut segs = Vec::new();
    let mut main = None;
    let (mut dylinker, mut dylibs, mut uuid, mut dysymtab, mut dyld_info) = (None, 0, false, false, false);
    let mut sdk = 0u32;
    let mut signature = None;
    let mut dyld_work = None;
    let mut rebase_ops = (0u64, 0u64);
    let mut off = 32usize;
    for index in 0..ncmds {
        let (Some(cmd), Some(size)) = (u32_at(head, off), u32_at(head, off + 4)) else {
            return refuse("load command past sizeofcmds", PARSE, format!("command {index} starts at {off}"));
        };
        let next = off + size as usize;
        if size < 8 || next as u64 > cmds_end {
            return refuse("bad load command size", PARSE, format!("command {index} (0x{cmd:x}) has cmdsize {size}"));
        }
        let lc = &head[off..next];
        let field = |o: usize| u32_at(lc, o).unwrap_or(0);
        match macho::LoadCommandType(cmd) {
            macho::LC_SEGMENT_64 => segs.push(segments::parse(lc, true, index)?),
            macho::LC_SEGMENT => return refuse("segment command for the wrong ABI", PARSE, format!("command {index} is LC_SEGMENT in a 64-bit image")),
            macho::LC_UNIXTHREAD => {
                return refuse("LC_UNIXTHREAD", DYLD, "dyld starts a pre-LC_MAIN (LC_UNIXTHREAD) main executable only on x86_64");
            }
            macho::LC_MAIN => main = Some(u64_at(lc, 8).unwrap_or(u64::MAX)),
            macho::LC_LOAD_DYLINKER => {
                let at = field(8) as usize;
                let name = lc.get(at..).map(|s| s.split(|&c| c == 0).next().unwrap_or(&[])).unwrap_or(&[]);
                dylinker = Some(String::from_utf8_lossy(name).into_owned());
            }
            macho::LC_LOAD_DYLIB | macho::LC_LOAD_WEAK_DYLIB | macho::LC_REEXPORT_DYLIB | macho::LC_LOAD_UPWARD_DYLIB => dylibs += 1,
            macho::LC_UUID => uuid = true,
            macho::LC_DYSYMTAB => dysymtab = true,
            macho::LC_DYLD_INFO | macho::LC_DYLD_INFO_ONLY => {
                dyld_info = true;
                rebase_ops = (u64::from(field(8)), u64::from(field(12)));
                // bind, weak bind, lazy bind: offset/size pairs. Rebases
                // xnurun applies itself.
                let work: Vec<&str> = [(20, "bind"), (28, "weak bind"), (36, "lazy bind")]
                    .iter()
                    .filter(|(o, _)| field(*o) != 0)
                    .map(|(_, n)| *n)
                    .collect();
                if !work.is_empty() {
                    dyld_work = Some(format!("dyld's {} opcodes", work.join(", ")));
                }
            }
            macho::LC_DYLD_CHAINED_FIXUPS => {
                dyld_info = true;
                if field(12) != 0 {
                    dyld_work = Some("dyld's chained fixups".into());
                }
            }
            macho::LC_BUILD_VERSION => sdk = field(16),
            macho::LC_CODE_SIGNATURE => signature = Some((u64::from(field(8)), u64::from(field(12)))),
            _ => {}
        }
        off = next;
    }

    let Some(entryoff) = main else {
        return refuse("no LC_MAIN", DYLD, "a dyld-loaded arm64 executable starts at LC_MAIN's entry");
    };
    match dylinker.as_deref() {
        Some("/usr/lib/dyld") => {}
        Some(other) => return refuse(RULE_DYLD, PARSE, format!("LC_LOAD_DYLINKER names {other:?}, not /usr/lib/dyld")),
        None => return refuse("no LC_LOAD_DYLINKER", PARSE, "LC_MAIN needs the dynamic linker (needs_dynlinker), and none is named"),
    }
    if !dysymtab && !dyld_info {
        return refuse("no symbol tables for dyld", DYLD, "dyld needs LC_DYSYMTAB or LC_DYLD_INFO");
    }
    // SDK versions are xxxx.yy.zz nibbles: 15.4 is 0x000f0400.
    if sdk >= 0x000f_0400 && dylibs == 0 {
        return refuse("links no dylib", DYLD, "built with SDK 15.4 or later and links no dylib: dyld 1323+ refuses the main executable");
    }
    if sdk >= 0x001a_0000 && !uuid {
        return refuse("no LC_UUID", DYLD, "built with SDK 26 or later without LC_UUID");
    }

    // The opcodes number segments in load-command order, page zero included.
    let all_segments = segs.clone();
    let (segments, pagezero_end) = segments::place(segs, Arch::Arm64, file_len)?;
    let user_stack = segments::stack_top(Arch::Arm64, &segments, pagezero_end)?;
    // LC_MAIN's entryoff is a file offset in the segment that maps offset 0.
    let text = segments.iter().find(|s| s.fileoff == 0).expect("checked above");
    let entry = text.vmaddr.saturating_add(entryoff);
    if !segments::entry_in_rx(&segments, entry) {
        return refuse("entry outside executable segment", PARSE, format!("LC_MAIN entryoff 0x{entryoff:x} is not inside an r-x segment"));
    }

    let Some((sig_off, sig_size)) = signature else {
        return refuse("unsigned", AMFI, "no LC_CODE_SIGNATURE: arm64 code must be at least ad-hoc signed");
    };
    if sig_off.checked_add(sig_size).is_none_or(|e| e > file_len) || sig_size > 16 << 20 {
        return refuse("code signature outside the file", AMFI, format!("LC_CODE_SIGNATURE 0x{sig_off:x}+0x{sig_size:x}, file has {file_len} bytes"));
    }
    let mut blob = vec![0u8; sig_size as usize];
    read_at(sig_off, &mut blob).map_err(|e| Refusal { rule: "unreadable", detail: e, xnu: AMFI })?;
    let sig = codesign::verify(&blob, sig_off, read_at).map_err(|detail| Refusal { rule: "code signature", detail, xnu: AMFI })?;
    if let Some((base, limit, exec_flags)) = sig.exec_seg
        && (base != text.fileoff || limit != text.filesize || exec_flags & codesign::CS_EXECSEG_MAIN_BINARY == 0)
    {
        return refuse("code signature", AMFI, format!("execSeg 0x{base:x}+0x{limit:x} flags 0x{exec_flags:x} does not describe __TEXT of a main binary"));
    }

    let rebases = if rebase_ops.1 == 0 {
        Vec::new()
    } else {
        let (off, size) = rebase_ops;
        if off.checked_add(size).is_none_or(|e| e > file_len) || size > 16 << 20 {
            return refuse("rebase opcodes outside the file", DYLD, format!("LC_DYLD_INFO rebase 0x{off:x}+0x{size:x}"));
        }
        let mut ops = vec![0u8; size as usize];
        read_at(off, &mut ops).map_err(|e| Refusal { rule: "unreadable", detail: e, xnu: DYLD })?;
        super::rebase::addresses(&ops, &all_segments).map_err(|detail| Refusal { rule: "bad rebase opcodes", detail, xnu: DYLD })?
    };

    Ok(Image {
        arch: Arch::Arm64,
        rebases,
        segments,
        pagezero_end,
        entry,
        start: Start::DyldMain,
        // CONFIG_ENFORCE_SIGNED_CODE: arm64 ignores MH_ALLOW_STACK_EXECUTION.
        nx_off: false,
        user_stack,
        custom_stack: false,
        file_len,
        dyld_work,
    })
}
