//! Segments, read from their load commands and judged as `load_segment`
//! and `parse_machfile` (bsd/kern/mach_loader.c) judge them, for every
//! architecture: only the page size, the end of the user map and the hard
//! page zero differ, and those come from [`crate::xnu::vm`].

use super::{refuse, Refusal, Segment, LOAD_MACHFILE, LOAD_SEGMENT, PARSE};
use crate::xnu::{vm, Arch};
use object::macho;
use object::LittleEndian;

const RX: u32 = macho::VM_PROT_READ.0 | macho::VM_PROT_EXECUTE.0;

/// One `segment_command` or `segment_command_64`, read through the
/// `object` crate's width-generic view: the same fields either way.
fn fields<S: object::read::macho::Segment<Endian = LittleEndian>>(lc: &[u8]) -> Option<(Segment, u32)> {
    let (s, _) = object::pod::from_bytes::<S>(lc).ok()?;
    let e = LittleEndian;
    let seg = Segment {
        name: String::from_utf8_lossy(s.name()).into_owned(),
        vmaddr: s.vmaddr(e).into(),
        vmsize: s.vmsize(e).into(),
        fileoff: s.fileoff(e).into(),
        filesize: s.filesize(e).into(),
        maxprot: s.maxprot(e).0,
        initprot: s.initprot(e).0,
    };
    Some((seg, s.nsects(e)))
}

pub fn parse(lc: &[u8], is64: bool, index: u32) -> Result<Segment, Refusal> {
    let (size, sect) = if is64 {
        (size_of::<macho::SegmentCommand64<LittleEndian>>(), size_of::<macho::Section64<LittleEndian>>())
    } else {
        (size_of::<macho::SegmentCommand32<LittleEndian>>(), size_of::<macho::Section32<LittleEndian>>())
    };
    let read = if is64 { fields::<macho::SegmentCommand64<LittleEndian>>(lc) } else { fields::<macho::SegmentCommand32<LittleEndian>>(lc) };
    let Some((seg, nsects)) = read else {
        return refuse("segment command too small", LOAD_SEGMENT, format!("command {index}: cmdsize {} < {size}", lc.len()));
    };
    if ((lc.len() - size) / sect) < nsects as usize {
        return refuse("sections past segment command", LOAD_SEGMENT, format!("segment {}: {nsects} sections do not fit in cmdsize {}", seg.name, lc.len()));
    }
    Ok(seg)
}

/// The segments XNU maps, checked, with page zero set aside: returns them
/// (those with `vmsize > 0`, page zero excluded) and the end of page zero.
pub fn place(raw: Vec<Segment>, arch: Arch, file_len: u64) -> Result<(Vec<Segment>, u64), Refusal> {
    let page = vm::page(arch);
    let mut segments = Vec::new();
    let mut pagezero_end = 0u64;
    let mut header_segment = false;
    for seg in raw {
        check(&seg, arch, file_len)?;
        if seg.vmsize == 0 {
            continue;
        }
        if seg.vmaddr == 0 && seg.filesize == 0 && seg.initprot & 7 == 0 && seg.maxprot & 7 == 0 {
            // load_segment: page zero only raises the map's minimum address.
            pagezero_end = pagezero_end.max(vm::round(seg.vmsize, page));
            continue;
        }
        if seg.fileoff == 0 && seg.filesize > 0 {
            if header_segment || seg.initprot & RX != RX {
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
    let mut ranges: Vec<(u64, u64, &str)> = segments
        .iter()
        .map(|s| {
            let (a, b) = s.vm_range(page);
            (a, b, s.name.as_str())
        })
        .collect();
    ranges.sort();
    for w in ranges.windows(2) {
        if w[1].0 < w[0].1 {
            return refuse("overlapping segments", LOAD_SEGMENT, format!("{} and {} share pages at 0x{:x}", w[0].2, w[1].2, w[1].0));
        }
    }
    if let Some(first) = ranges.first()
        && first.0 < pagezero_end
    {
        return refuse("segment inside page zero", LOAD_SEGMENT, format!("{} at 0x{:x}, page zero ends at 0x{pagezero_end:x}", first.2, first.0));
    }

    // load_machfile: a 64-bit image must leave a hard page zero (unmapped
    // and unmappable): at least a page on x86_64, 4 GiB on arm64. 32-bit
    // ones are exempt on x86.
    let min = vm::pagezero_min(arch);
    if pagezero_end < min {
        let size = if min >= 1 << 30 { format!("{} GiB", min >> 30) } else { "one-page".to_string() };
        return refuse(
            "no hard page zero",
            LOAD_MACHFILE,
            format!("page zero ends at 0x{pagezero_end:x}; an {} image needs a {size} page zero (__PAGEZERO: vmaddr 0, no file bytes, no access)", arch.name()),
        );
    }
    Ok((segments, pagezero_end))
}

/// Whether `entry` lies in an r-x segment (parse_machfile, pass 3:
/// load_segment sets `validentry`).
pub fn entry_in_rx(segments: &[Segment], entry: u64) -> bool {
    segments.iter().any(|s| entry >= s.vmaddr && entry - s.vmaddr < s.vmsize && s.initprot & RX == RX)
}

fn check(seg: &Segment, arch: Arch, file_len: u64) -> Result<(), Refusal> {
    let name = &seg.name;
    let page = vm::page(arch);
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
    if !seg.fileoff.is_multiple_of(page) {
        return refuse(
            "segment not page-aligned in the file",
            LOAD_SEGMENT,
            format!("{name}: fileoff 0x{:x} is not {} KiB-aligned (the map's page size)", seg.fileoff, page >> 10),
        );
    }
    if seg.vmsize == 0 {
        return Ok(());
    }
    // An arm64 map takes whole 16 KiB pages at their own addresses; x86
    // truncates vmaddr to its page (map_segment), which a test shows.
    if arch == Arch::Arm64 && !seg.vmaddr.is_multiple_of(page) {
        return refuse("segment address", LOAD_SEGMENT, format!("{name}: 0x{:x} is not 16 KiB-aligned", seg.vmaddr));
    }
    // map_segment maps all of the file's pages at vm_start, even past
    // vm_end, over whatever lies there. xnurun does not follow XNU into
    // that: it refuses such a segment (a divergence, and the only refusal
    // here that XNU itself would not make).
    if vm::round(seg.filesize, page) > vm::round(seg.vmsize, page) {
        return refuse("segment file bytes exceed vmsize", LOAD_SEGMENT, format!("{name}: filesize 0x{:x} > vmsize 0x{:x}", seg.filesize, seg.vmsize));
    }
    let limit = vm::max_address(arch);
    match seg.vmaddr.checked_add(seg.vmsize) {
        Some(end) if end <= limit => Ok(()),
        _ => refuse(
            "segment outside the user address space",
            LOAD_SEGMENT,
            format!("{name}: 0x{:x}+0x{:x} passes 0x{limit:x}", seg.vmaddr, seg.vmsize),
        ),
    }
}

const CREATE_UNIX_STACK: &str = "create_unix_stack, bsd/kern/kern_exec.c";

/// `create_unix_stack` (bsd/kern/kern_exec.c) asks for the `MAXSSIZ`
/// bytes below `USRSTACK*` (VM_FLAGS_FIXED) and, when a segment is already
/// there, for the same size anywhere (VM_FLAGS_ANYWHERE): the map's first
/// gap that fits, from its bottom (page zero's end) up, inside the task's
/// map (so below 4 GiB for i386). No gap at all fails the exec. The stack
/// of a dyld image is the kernel's as well, so this serves every arch.
pub fn stack_top(arch: Arch, segments: &[Segment], pagezero_end: u64) -> Result<u64, Refusal> {
    let top = vm::usrstack(arch);
    let page = vm::page(arch);
    let mut ranges: Vec<(u64, u64)> = segments.iter().map(|s| s.vm_range(page)).collect();
    ranges.sort();
    if !ranges.iter().any(|&(a, b)| a < top && top - vm::MAXSSIZ < b) {
        return Ok(top);
    }
    // Linux refuses page 0 too, so the first gap starts at a page at least.
    let mut at = pagezero_end.max(page);
    for (a, b) in ranges.into_iter().chain([(vm::max_address(arch), vm::max_address(arch))]) {
        if a >= at && a - at >= vm::MAXSSIZ {
            return Ok(at + vm::MAXSSIZ);
        }
        at = at.max(b);
    }
    refuse(
        "no room for the stack",
        CREATE_UNIX_STACK,
        format!("no gap of MAXSSIZ (0x{:x}) bytes is left in the {} map", vm::MAXSSIZ, arch.name()),
    )
}


#[cfg(test)]
mod tests {
    use super::*;

    fn seg(vmaddr: u64, vmsize: u64) -> Segment {
        Segment { name: "s".into(), vmaddr, vmsize, fileoff: 0, filesize: 0, initprot: 3, maxprot: 3 }
    }

    #[test]
    fn the_stack_takes_the_first_gap_when_its_place_is_taken() {
        let four_gib = 0x1_0000_0000;
        // Nothing in the way: USRSTACK.
        assert_eq!(stack_top(Arch::Arm64, &[seg(four_gib, 0x4000)], four_gib), Ok(vm::USRSTACK64_ARM64));
        // A segment over it: the first gap above page zero that fits.
        let over = seg(vm::USRSTACK64_ARM64 - 0x4000, 0x8000);
        assert_eq!(stack_top(Arch::Arm64, &[seg(four_gib, 0x4000), over.clone()], four_gib), Ok(four_gib + 0x4000 + vm::MAXSSIZ));
        // i386: inside the 32-bit map, or refused.
        let low = seg(0x1000, 0x1000);
        let top = seg(vm::USRSTACK32 - 0x1000, 0x2000);
        assert_eq!(stack_top(Arch::I386, &[low, top], 0x1000), Ok(0x2000 + vm::MAXSSIZ));
        let all = seg(0x1000, vm::VM_MAX_ADDRESS32 - 0x2000);
        assert_eq!(stack_top(Arch::I386, &[all], 0x1000).unwrap_err().rule, "no room for the stack");
    }
}
