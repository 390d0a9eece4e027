//! Judges a file the way XNU's exec path does before it runs a static
//! image, and describes what to map and where to start.
//!
//! Each refusal is a [`Refusal`] naming the rule and the XNU function that
//! enforces it (bsd/kern/kern_exec.c, bsd/kern/mach_loader.c). The loader
//! reads every field itself, with checked arithmetic, because the input is
//! arbitrary bytes: it must never panic and never accept what XNU refuses.

use crate::x86_state::X86State;
use object::macho;
use std::fmt;

/// XNU's page size on x86 (`PAGE_SIZE`, osfmk/mach/i386/vm_param.h).
pub const PAGE: u64 = 4096;

/// `x86_THREAD_STATE32` and its count (osfmk/mach/i386/thread_status.h).
pub const X86_THREAD_STATE32: u32 = 1;
pub const X86_THREAD_STATE32_COUNT: u32 = 16;
/// `x86_THREAD_STATE64` and its count (same header).
pub const X86_THREAD_STATE64: u32 = 4;
pub const X86_THREAD_STATE64_COUNT: u32 = 42;

/// `VM_USRSTACK64` (osfmk/mach/i386/vm_param.h): where XNU puts the top of
/// a 64-bit process's stack. A static image is not `MH_PIE`, so
/// `load_unixthread` slides it by 0.
pub const USRSTACK64: u64 = 0x0000_7FF7_C000_0000 - 1024 * 1024;
/// `VM_USRSTACK32`, the same for 32-bit processes.
pub const USRSTACK32: u64 = 0xC000_0000;
/// `MAXSSIZ` (bsd/i386/vmparam.h): `load_unixthread` asks for a stack of this
/// size, and `create_unix_stack` (kern_exec.c) reserves all of it.
pub const MAXSSIZ: u64 = 64 * 1024 * 1024;
/// `DFLSSIZ`, the default `RLIMIT_STACK`: `create_unix_stack` leaves only
/// this much of the reservation accessible.
pub const DFLSSIZ: u64 = 8 * 1024 * 1024;
/// Highest user address + 1 for 64-bit maps (`VM_MAX_PAGE_ADDRESS`).
pub const VM_MAX_PAGE_ADDRESS64: u64 = 0x0000_7FFF_FFE0_0000;
/// Highest user address + 1 for 32-bit maps (`VM_MAX_ADDRESS`).
pub const VM_MAX_ADDRESS32: u64 = 0xFFE0_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    I386,
    Arm64,
}

impl Arch {
    pub fn ptr_size(self) -> u64 {
        match self {
            Arch::X86_64 | Arch::Arm64 => 8,
            Arch::I386 => 4,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::I386 => "i386",
            Arch::Arm64 => "arm64",
        }
    }
}

/// One segment to map, already checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub name: String,
    pub vmaddr: u64,
    pub vmsize: u64,
    pub fileoff: u64,
    pub filesize: u64,
    pub initprot: u32,
    pub maxprot: u32,
}

impl Segment {
    /// Page-rounded range `[start, end)` as `load_segment` maps it.
    pub fn vm_range(&self) -> (u64, u64) {
        let start = self.vmaddr & !(PAGE - 1);
        // Cannot overflow: checked in `check_segment`.
        let end = round_page(self.vmaddr + self.vmsize);
        (start, end)
    }
}

/// What `load_machfile` hands to the exec path for a static image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub arch: Arch,
    /// Segments with `vmsize > 0`, page zero excluded.
    pub segments: Vec<Segment>,
    /// Page zero: `[0, end)`, never accessible.
    pub pagezero_end: u64,
    pub entry: u64,
    /// The general registers of `LC_UNIXTHREAD`, widened to 64 bits.
    pub thread: X86State,
    /// Top of the stack: `USRSTACK*` or, for a custom stack (non-zero stack
    /// pointer in the thread state), that pointer truncated to a page.
    pub user_stack: u64,
    /// True when the thread state named the stack (`thread_userstack`):
    /// then XNU allocates none and the strings go below that pointer.
    pub custom_stack: bool,
    /// The file's size: segments map bytes from inside it.
    pub file_len: u64,
    /// Work dyld would do before `main` that xnurun does not (rebasing,
    /// binding): what it is. Always `None` for static images.
    pub dyld_work: Option<String>,
    /// Link-time addresses of the pointers dyld would slide before `main`.
    pub rebases: Vec<u64>,
}

/// A reason XNU would not run the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Short name of the rule, stable for tests.
    pub rule: &'static str,
    /// What in this file broke it.
    pub detail: String,
    /// Where XNU enforces it.
    pub xnu: &'static str,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (XNU: {})", self.rule, self.detail, self.xnu)
    }
}

pub(crate) fn refuse<T>(rule: &'static str, xnu: &'static str, detail: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal { rule, detail: detail.into(), xnu })
}

pub(crate) const EXEC_MACH: &str = "exec_mach_imgact, bsd/kern/kern_exec.c";
pub(crate) const PARSE: &str = "parse_machfile, bsd/kern/mach_loader.c";
pub(crate) const LOAD_SEGMENT: &str = "load_segment, bsd/kern/mach_loader.c";
pub(crate) const LOAD_MACHFILE: &str = "load_machfile, bsd/kern/mach_loader.c";
const UNIXTHREAD: &str = "load_unixthread / thread_userstack, bsd/kern/mach_loader.c + osfmk/i386/bsd_i386.c";

pub const RULE_DYLD: &str = "needs dyld: not a static executable";

pub fn round_page(x: u64) -> u64 {
    x.checked_add(PAGE - 1).map_or(!(PAGE - 1), |v| v & !(PAGE - 1))
}

pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

pub(crate) fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

fn name16(b: &[u8], off: usize) -> String {
    let raw = b.get(off..off + 16).unwrap_or(&[]);
    let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// Whether the header is a 64-bit arm64 one (checked by `loader_arm64`).
pub fn is_arm64(head: &[u8]) -> bool {
    u32_at(head, 0) == Some(macho::MH_MAGIC_64) && u32_at(head, 4) == Some(macho::CPU_TYPE_ARM64.0)
}

/// Checks a whole file held in memory (tests, fuzzing).
pub fn load(file: &[u8]) -> Result<Image, Refusal> {
    load_from(file, file.len() as u64)
}

/// How many bytes from the start of the file `load_from` needs, given the
/// first [`HEADER_MAX`] of them: what `parse_machfile` reads,
/// `round_page(header + sizeofcmds)`, and never more than the file. Only
/// this much is read, however large the file is.
pub fn head_len(first: &[u8], file_len: u64) -> u64 {
    let sizeofcmds = u32_at(first, 20).unwrap_or(0);
    round_page(32 + u64::from(sizeofcmds)).min(file_len)
}

/// Enough bytes for either header.
pub const HEADER_MAX: usize = 32;

/// Checks a file of `file_len` bytes whose first `head_len` bytes are
/// `file`, and returns the image to run, or the first rule it breaks.
pub fn load_from(file: &[u8], file_len: u64) -> Result<Image, Refusal> {
    let magic = match u32_at(file, 0) {
        Some(m) => m,
        None => return refuse("not a Mach-O file", EXEC_MACH, format!("{file_len} bytes, too short for a header")),
    };
    let arch = match magic {
        macho::MH_MAGIC_64 => Arch::X86_64,
        macho::MH_MAGIC => Arch::I386,
        macho::FAT_MAGIC | macho::FAT_MAGIC_64 => {
            return refuse(
                "universal (fat) file",
                "exec_fat_imgact, bsd/kern/kern_exec.c",
                "xnurun runs thin images only; extract one architecture first",
            );
        }
        macho::MH_CIGAM | macho::MH_CIGAM_64 => {
            return refuse("big-endian Mach-O", EXEC_MACH, "x86 images are little-endian");
        }
        other => return refuse("not a Mach-O file", EXEC_MACH, format!("magic 0x{other:08x}")),
    };
    if is_arm64(file) {
        return refuse("arm64 image", EXEC_MACH, "an arm64 image is checked with its signature: use loader_arm64::load");
    }
    let header_size: usize = if arch == Arch::X86_64 { 32 } else { 28 };
    let (Some(cputype), Some(filetype), Some(ncmds), Some(sizeofcmds), Some(flags)) = (
        u32_at(file, 4),
        u32_at(file, 12),
        u32_at(file, 16),
        u32_at(file, 20),
        u32_at(file, 24),
    ) else {
        return refuse("truncated header", EXEC_MACH, format!("{file_len} bytes, header needs {header_size}"));
    };
    if file.len() < header_size {
        return refuse("truncated header", EXEC_MACH, format!("{file_len} bytes, header needs {header_size}"));
    }

    // parse_machfile compares the CPU type with the host's; exec_mach_imgact
    // derives 64-bitness from CPU_ARCH_ABI64, which must match the magic.
    let want = if arch == Arch::X86_64 { macho::CPU_TYPE_X86_64.0 } else { macho::CPU_TYPE_X86.0 };
    if cputype != want {
        let shown = match macho::CpuType(cputype) {
            macho::CPU_TYPE_X86_64 => "CPU_TYPE_X86_64".to_string(),
            macho::CPU_TYPE_X86 => "CPU_TYPE_I386".to_string(),
            macho::CPU_TYPE_ARM64 => "CPU_TYPE_ARM64".to_string(),
            macho::CPU_TYPE_ARM => "CPU_TYPE_ARM".to_string(),
            macho::CPU_TYPE_POWERPC => "CPU_TYPE_POWERPC".to_string(),
            other => format!("0x{other:x}"),
        };
        return refuse(
            "wrong CPU type",
            PARSE,
            format!("{shown} in a {}-bit header; only CPU_TYPE_X86_64 (64-bit) or CPU_TYPE_I386 (32-bit) run on x86", arch.ptr_size() * 8),
        );
    }
    if filetype != macho::MH_EXECUTE.0 {
        return refuse("not MH_EXECUTE", EXEC_MACH, format!("filetype {filetype}; exec runs only MH_EXECUTE"));
    }
    if flags & macho::MH_DYLDLINK.0 != 0 {
        return refuse(RULE_DYLD, PARSE, "MH_DYLDLINK is set: the kernel would load dyld to finish linking");
    }

    // parse_machfile: header + sizeofcmds must fit in the file, and it reads
    // round_page() of that, refusing a short read: a file smaller than a page
    // does not exec at all.
    let cmds_end = header_size as u64 + u64::from(sizeofcmds);
    if cmds_end > file_len {
        return refuse(
            "load commands past end of file",
            PARSE,
            format!("header + sizeofcmds = {cmds_end} bytes, file has {file_len}"),
        );
    }
    if round_page(cmds_end) > file_len {
        return refuse(
            "file shorter than one page",
            PARSE,
            format!("{file_len} bytes; XNU reads round_page(header + sizeofcmds) = {} and refuses a short read", round_page(cmds_end)),
        );
    }
    if (file.len() as u64) < cmds_end {
        return refuse("load commands past end of file", PARSE, format!("only {} of {cmds_end} header bytes could be read", file.len()));
    }

    let mut raw_segments = Vec::new();
    let mut thread: Option<(X86State, u64, bool)> = None;
    let mut off = header_size;
    let cmds_end = cmds_end as usize;
    for index in 0..ncmds {
        let (Some(cmd), Some(cmdsize)) = (
            u32_at(file, off).filter(|_| off + 8 <= cmds_end),
            u32_at(file, off + 4).filter(|_| off + 8 <= cmds_end),
        ) else {
            return refuse("load command past sizeofcmds", PARSE, format!("command {index} starts at {off}, sizeofcmds ends at {cmds_end}"));
        };
        let next = off + cmdsize as usize;
        if cmdsize < 8 || next > cmds_end {
            return refuse(
                "bad load command size",
                PARSE,
                format!("command {index} (0x{cmd:x}) has cmdsize {cmdsize}, room for {}", cmds_end - off),
            );
        }
        let lc = &file[off..next];
        match macho::LoadCommandType(cmd) {
            macho::LC_SEGMENT_64 | macho::LC_SEGMENT => {
                let is64 = cmd == macho::LC_SEGMENT_64.0;
                if is64 != (arch == Arch::X86_64) {
                    return refuse(
                        "segment command for the wrong ABI",
                        PARSE,
                        format!("command {index} is {} in a {}-bit image", if is64 { "LC_SEGMENT_64" } else { "LC_SEGMENT" }, arch.ptr_size() * 8),
                    );
                }
                raw_segments.push(parse_segment(lc, is64, index)?);
            }
            macho::LC_UNIXTHREAD => {
                if thread.is_some() {
                    return refuse("more than one LC_UNIXTHREAD", UNIXTHREAD, format!("command {index} is a second thread"));
                }
                thread = Some(parse_thread(lc, arch, index)?);
            }
            macho::LC_MAIN => {
                return refuse(RULE_DYLD, PARSE, format!("command {index} is LC_MAIN, which only dyld reads"));
            }
            macho::LC_LOAD_DYLINKER => {
                return refuse(RULE_DYLD, PARSE, format!("command {index} is LC_LOAD_DYLINKER"));
            }
            _ => {}
        }
        off = next;
    }

    let Some((thread, entry, custom_stack)) = thread else {
        return refuse("no LC_UNIXTHREAD", PARSE, "a static image needs LC_UNIXTHREAD to give its entry point (thread_count == 0)");
    };

    let mut segments = Vec::new();
    let mut pagezero_end = 0u64;
    let mut header_segment = false;
    for seg in raw_segments {
        check_segment(&seg, file_len, arch)?;
        if seg.vmsize == 0 {
            continue;
        }
        if seg.vmaddr == 0 && seg.filesize == 0 && seg.initprot & 7 == 0 && seg.maxprot & 7 == 0 {
            // load_segment: page zero only raises the map's minimum address.
            pagezero_end = pagezero_end.max(round_page(seg.vmsize));
            continue;
        }
        if seg.fileoff == 0 && seg.filesize > 0 {
            let rx = macho::VM_PROT_READ.0 | macho::VM_PROT_EXECUTE.0;
            if header_segment || seg.initprot & rx != rx {
                return refuse(
                    "header segment",
                    PARSE,
                    format!("segment {} maps file offset 0: exactly one segment may, and it must be r-x", seg.name),
                );
            }
            header_segment = true;
        }
        segments.push(seg);
    }
    if !header_segment {
        return refuse("header segment", PARSE, "no segment maps file offset 0 (r-x, filesize > 0)");
    }

    // Overlap: load_segment maps with VM_FLAGS_FIXED and no overwrite, so a
    // second segment on the same pages fails (LOAD_NOSPACE); page zero is
    // the map's floor, so nothing may sit below its end either.
    let mut ranges: Vec<(u64, u64, &str)> = segments.iter().map(|s| {
        let (a, b) = s.vm_range();
        (a, b, s.name.as_str())
    }).collect();
    ranges.sort();
    for w in ranges.windows(2) {
        if w[1].0 < w[0].1 {
            return refuse("overlapping segments", LOAD_SEGMENT, format!("{} and {} share pages at 0x{:x}", w[0].2, w[1].2, w[1].0));
        }
    }
    if let Some(first) = ranges.first()
        && first.0 < pagezero_end {
            return refuse("segment inside page zero", LOAD_SEGMENT, format!("{} at 0x{:x}, page zero ends at 0x{pagezero_end:x}", first.2, first.0));
        }

    // load_machfile: 64-bit images must leave a hard page zero (at least
    // the first page unmapped and unmappable); 32-bit ones are exempt on x86.
    if arch == Arch::X86_64 && pagezero_end < PAGE {
        return refuse(
            "no hard page zero",
            LOAD_MACHFILE,
            "a 64-bit image needs a __PAGEZERO segment (vmaddr 0, no file bytes, no access) of at least one page",
        );
    }

    // parse_machfile pass 3: the entry must lie in an r-x segment
    // (load_segment sets validentry).
    let rx = macho::VM_PROT_READ.0 | macho::VM_PROT_EXECUTE.0;
    let in_rx = segments.iter().any(|s| entry >= s.vmaddr && entry - s.vmaddr < s.vmsize && s.initprot & rx == rx);
    if !in_rx {
        return refuse("entry outside executable segment", PARSE, format!("entry 0x{entry:x} is not inside an r-x segment"));
    }

    let user_stack = if custom_stack {
        let sp = thread.rsp;
        let top = sp & !(PAGE - 1);
        // load_unixthread truncates a custom stack pointer to a page, and
        // exec_copyout_strings writes the strings just below it; where that
        // is not writable memory the copyout fails and exec dies.
        let writable = segments.iter().any(|s| {
            s.initprot & macho::VM_PROT_WRITE.0 != 0 && top > s.vmaddr && top - s.vmaddr <= s.vmsize
        });
        if !writable {
            return refuse(
                "custom stack not writable",
                "exec_copyout_strings, bsd/kern/kern_exec.c",
                format!("the thread state's stack pointer 0x{sp:x} is not inside a writable segment"),
            );
        }
        top
    } else {
        default_stack(arch, &segments)
    };

    Ok(Image { arch, segments, pagezero_end, entry, thread, user_stack, custom_stack, file_len, dyld_work: None, rebases: Vec::new() })
}

/// `create_unix_stack` (kern_exec.c) asks for the `MAXSSIZ` bytes below
/// `USRSTACK*` and, when a segment is already there, takes space anywhere
/// else; this picks the first gap above the highest segment.
fn default_stack(arch: Arch, segments: &[Segment]) -> u64 {
    let top = if arch == Arch::I386 { USRSTACK32 } else { USRSTACK64 };
    let clash = |top: u64| segments.iter().any(|s| {
        let (a, b) = s.vm_range();
        a < top && top - MAXSSIZ < b
    });
    if !clash(top) {
        return top;
    }
    let highest = segments.iter().map(|s| s.vm_range().1).max().unwrap_or(0);
    highest.saturating_add(MAXSSIZ)
}

pub(crate) fn parse_segment(lc: &[u8], is64: bool, index: u32) -> Result<Segment, Refusal> {
    let (size, sect) = if is64 { (72usize, 80u64) } else { (56usize, 68u64) };
    if lc.len() < size {
        return refuse("segment command too small", LOAD_SEGMENT, format!("command {index}: cmdsize {} < {size}", lc.len()));
    }
    let name = name16(lc, 8);
    let field = |o: usize| -> u64 {
        if is64 { u64_at(lc, o).unwrap_or(0) } else { u64::from(u32_at(lc, o).unwrap_or(0)) }
    };
    let seg = if is64 {
        Segment {
            name,
            vmaddr: field(24),
            vmsize: field(32),
            fileoff: field(40),
            filesize: field(48),
            maxprot: u32_at(lc, 56).unwrap_or(0),
            initprot: u32_at(lc, 60).unwrap_or(0),
        }
    } else {
        Segment {
            name,
            vmaddr: field(24),
            vmsize: field(28),
            fileoff: field(32),
            filesize: field(36),
            maxprot: u32_at(lc, 40).unwrap_or(0),
            initprot: u32_at(lc, 44).unwrap_or(0),
        }
    };
    let nsects = u64::from(u32_at(lc, if is64 { 64 } else { 48 }).unwrap_or(0));
    if (lc.len() - size) as u64 / sect < nsects {
        return refuse("sections past segment command", LOAD_SEGMENT, format!("segment {}: {nsects} sections do not fit in cmdsize {}", seg.name, lc.len()));
    }
    Ok(seg)
}

fn check_segment(seg: &Segment, file_len: u64, arch: Arch) -> Result<(), Refusal> {
    let name = &seg.name;
    match seg.fileoff.checked_add(seg.filesize) {
        Some(end) if end <= file_len => {}
        _ => {
            return refuse(
                "segment outside the file",
                LOAD_SEGMENT,
                format!("{name}: file bytes 0x{:x}+0x{:x} pass the end of the {file_len}-byte file", seg.fileoff, seg.filesize),
            );
        }
    }
    if !seg.fileoff.is_multiple_of(PAGE) {
        return refuse("segment not page-aligned in the file", LOAD_SEGMENT, format!("{name}: fileoff 0x{:x}", seg.fileoff));
    }
    if seg.vmsize == 0 {
        return Ok(());
    }
    // map_segment maps all of the file's pages at vm_start, even past
    // vm_end, over whatever lies there. xnurun does not follow XNU into
    // that: it refuses such a segment (a divergence, and the only refusal
    // here that XNU itself would not make).
    if round_page(seg.filesize) > round_page(seg.vmsize) {
        return refuse("segment file bytes exceed vmsize", LOAD_SEGMENT, format!("{name}: filesize 0x{:x} > vmsize 0x{:x}", seg.filesize, seg.vmsize));
    }
    let limit = if arch == Arch::I386 { VM_MAX_ADDRESS32 } else { VM_MAX_PAGE_ADDRESS64 };
    match seg.vmaddr.checked_add(seg.vmsize) {
        Some(end) if end <= limit => {}
        _ => {
            return refuse(
                "segment outside the user address space",
                LOAD_SEGMENT,
                format!("{name}: 0x{:x}+0x{:x} passes 0x{limit:x}", seg.vmaddr, seg.vmsize),
            );
        }
    }
    Ok(())
}

fn parse_thread(lc: &[u8], arch: Arch, index: u32) -> Result<(X86State, u64, bool), Refusal> {
    let (want_flavor, want_count, fname) = if arch == Arch::I386 {
        (X86_THREAD_STATE32, X86_THREAD_STATE32_COUNT, "x86_THREAD_STATE32 (1, count 16)")
    } else {
        (X86_THREAD_STATE64, X86_THREAD_STATE64_COUNT, "x86_THREAD_STATE64 (4, count 42)")
    };
    let (Some(flavor), Some(count)) = (u32_at(lc, 8), u32_at(lc, 12)) else {
        return refuse("bad thread state", UNIXTHREAD, format!("command {index}: LC_UNIXTHREAD holds no state"));
    };
    if flavor != want_flavor || count != want_count {
        return refuse(
            "bad thread state",
            UNIXTHREAD,
            format!("LC_UNIXTHREAD has flavor {flavor} count {count}; a {} image needs {fname}", arch.name()),
        );
    }
    let need = 16 + count as usize * 4;
    if lc.len() != need {
        return refuse(
            "bad thread state",
            UNIXTHREAD,
            format!("LC_UNIXTHREAD cmdsize {} but one {fname} state takes {need}", lc.len()),
        );
    }
    let st = &lc[16..];
    let mut t = X86State::default();
    // x86_thread_state64_t and x86_thread_state32_t (osfmk/mach/i386/
    // _structs.h) both open with ax bx cx dx di si bp sp, in words of
    // their width; then 64-bit has r8-r15 rip rflags, 32-bit ss eflags eip.
    let r = |i: usize| if arch == Arch::I386 { u64::from(u32_at(st, i * 4).unwrap_or(0)) } else { u64_at(st, i * 8).unwrap_or(0) };
    [t.rax, t.rbx, t.rcx, t.rdx, t.rdi, t.rsi, t.rbp, t.rsp] = [r(0), r(1), r(2), r(3), r(4), r(5), r(6), r(7)];
    if arch == Arch::I386 {
        (t.eflags, t.rip) = (r(9), r(10));
    } else {
        [t.r8, t.r9, t.r10, t.r11, t.r12, t.r13, t.r14, t.r15] = [r(8), r(9), r(10), r(11), r(12), r(13), r(14), r(15)];
        (t.rip, t.eflags) = (r(16), r(17));
    }
    // thread_userstack: a non-zero stack pointer is a custom stack.
    let custom = t.rsp != 0;
    Ok((t, t.rip, custom))
}
