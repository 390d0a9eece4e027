//! Judges a file the way XNU's exec path does before it runs a static x86
//! image (x86_64, or i386 as macOS 10.14 ran it), and describes what to
//! map and where to start.
//!
//! For i386 the rules are those of the last XNU that ran 32-bit programs
//! (macOS 10.14, xnu-4903), where `parse_machfile` refused static images
//! only on embedded builds; current XNU accepts static images for x86_64
//! alone.

use super::{refuse, segments, u32_at, u64_at, Image, Refusal, Start, EXEC_MACH, PARSE, RULE_DYLD};
use crate::xnu::x86::state::{X86State, X86_THREAD_STATE32, X86_THREAD_STATE32_COUNT, X86_THREAD_STATE64, X86_THREAD_STATE64_COUNT};
use crate::xnu::{vm, Arch};
use object::macho;

/// `round_page` on x86's 4 KiB pages.
pub fn round_page(x: u64) -> u64 {
    vm::round(x, vm::PAGE_X86)
}

const UNIXTHREAD: &str = "load_unixthread / thread_userstack, bsd/kern/mach_loader.c + osfmk/i386/bsd_i386.c";

/// Checks a whole file held in memory (tests, fuzzing).
pub fn load(file: &[u8]) -> Result<Image, Refusal> {
    load_from(file, file.len() as u64)
}

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
    if super::arm64::is_arm64(file) {
        return refuse("arm64 image", EXEC_MACH, "an arm64 image is checked with its signature: use image::arm64::load");
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
                raw_segments.push(segments::parse(lc, is64, index)?);
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

    let (segments, pagezero_end) = segments::place(raw_segments, arch, file_len)?;

    // parse_machfile pass 3: the entry must lie in an r-x segment
    // (load_segment sets validentry).
    if !segments::entry_in_rx(&segments, entry) {
        return refuse("entry outside executable segment", PARSE, format!("entry 0x{entry:x} is not inside an r-x segment"));
    }

    let user_stack = if custom_stack {
        let sp = thread.rsp;
        let top = vm::trunc(sp, vm::PAGE_X86);
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
        segments::stack_top(arch, &segments, pagezero_end)?
    };

    Ok(Image { arch, segments, pagezero_end, entry, start: Start::UnixThread(thread), user_stack, custom_stack, file_len, dyld_work: None, rebases: Vec::new(), nx_off: flags & macho::MH_ALLOW_STACK_EXECUTION.0 != 0 })
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
