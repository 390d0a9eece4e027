//! Objects made wrong on purpose where the new code reads them: each is a
//! working object with one field patched, and each must give one line
//! naming the file, exit status 1 and no output file; never a panic, an
//! overflow or a silently wrong image.

mod common;

use std::path::{Path, PathBuf};

use object::LittleEndian as LE;
use object::macho::{MachHeader32, MachHeader64};
use object::read::macho::{MachHeader, Nlist, Section as _, Segment as _};

/// Where `item` lies in `data`.
fn offset_of<T>(data: &[u8], item: &T) -> usize {
    item as *const T as usize - data.as_ptr() as usize
}

/// File offset of the header of section `seg,sect`.
fn section_header<Mach: MachHeader<Endian = LE>>(data: &[u8], seg: &str, sect: &str) -> usize {
    let header = Mach::parse(data, 0).unwrap();
    let mut commands = header.load_commands(LE, data, 0).unwrap();
    while let Some(cmd) = commands.next().unwrap() {
        if let Some((segment, sdata)) = Mach::Segment::from_command(cmd).unwrap() {
            for s in segment.sections(LE, sdata).unwrap() {
                if s.segment_name() == seg.as_bytes() && s.name() == sect.as_bytes() {
                    return offset_of(data, s);
                }
            }
        }
    }
    panic!("no section {seg},{sect}");
}

/// File offset of symbol `name`'s nlist entry.
fn symbol_entry<Mach: MachHeader<Endian = LE>>(data: &[u8], name: &str) -> usize {
    let header = Mach::parse(data, 0).unwrap();
    let mut commands = header.load_commands(LE, data, 0).unwrap();
    while let Some(cmd) = commands.next().unwrap() {
        if let Some(symtab) = cmd.symtab().unwrap() {
            let table = symtab.symbols::<Mach, _>(LE, data).unwrap();
            for n in table.iter() {
                if n.name(LE, table.strings()).unwrap() == name.as_bytes() {
                    return offset_of(data, n);
                }
            }
        }
    }
    panic!("no symbol {name}");
}

fn put32(data: &mut [u8], at: usize, value: u32) {
    data[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn put64(data: &mut [u8], at: usize, value: u64) {
    data[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

fn get32(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().unwrap())
}

/// Assembles `asm`, lets `patch` change the object's bytes, and expects
/// the link to fail saying `what`.
fn refused(test: &str, target: &str, asm: &str, patch: impl FnOnce(&mut Vec<u8>), what: &str) {
    let dir = common::scratch(test);
    let obj = common::assemble(target, asm, &dir, "good");
    let mut data = std::fs::read(&obj).unwrap();
    // Unpatched, it links: the failure below is the patch's doing.
    common::link_ok(target, std::slice::from_ref(&obj), &dir.join("good-image"), true);
    patch(&mut data);
    let bad: PathBuf = dir.join("bad.o");
    std::fs::write(&bad, &data).unwrap();
    common::link_fails(target, std::slice::from_ref(&bad), &dir.join("image"), true, Path::new(&bad), what);
}

const I386_POINTERS: &str = r#"
.text
.globl __start
__start:
    calll 1f
1:  popl %ebx
    movl L_ext$non_lazy_ptr-1b(%ebx), %eax
    movl L_diff-1b(%ebx), %eax
    ret
.data
.globl _ext
_ext: .long 20
L_diff: .long 0
.section __IMPORT,__pointers,non_lazy_symbol_pointers
L_ext$non_lazy_ptr:
    .indirect_symbol _ext
    .long 0
"#;

/// `reserved1` (first indirect-table entry) far past the table.
#[test]
fn pointer_slot_past_the_indirect_table() {
    refused(
        "hostile-reserved1",
        common::I686,
        I386_POINTERS,
        |data| {
            let at = section_header::<MachHeader32<LE>>(data, "__IMPORT", "__pointers");
            put32(data, at + 60, 0x7fff_fff0);
        },
        "__IMPORT,__pointers+0x0: pointer slot past the indirect symbol table",
    );
}

/// A pointer section whose size is not a whole number of pointers.
#[test]
fn pointer_section_of_odd_size() {
    refused(
        "hostile-pointer-size",
        common::I686,
        I386_POINTERS,
        |data| {
            let at = section_header::<MachHeader32<LE>>(data, "__IMPORT", "__pointers");
            put32(data, at + 36, 3);
        },
        "pointer section size is not a multiple of 4",
    );
}

/// A `LOCAL_SECTDIFF` whose `PAIR` was turned into something else.
#[test]
fn sectdiff_without_its_pair() {
    refused(
        "hostile-pair",
        common::I686,
        I386_POINTERS,
        |data| {
            let at = section_header::<MachHeader32<LE>>(data, "__TEXT", "__text");
            let (reloff, nreloc) = (get32(data, at + 48) as usize, get32(data, at + 52) as usize);
            // Scattered entries: bit 31 set, r_type in bits 24-27;
            // GENERIC_RELOC_PAIR is 1, VANILLA 0.
            let pair = (0..nreloc).map(|i| reloff + 8 * i).find(|&r| get32(data, r) >> 24 == 0xa1).expect("a scattered PAIR");
            let word = get32(data, pair) & !0x0f00_0000;
            put32(data, pair, word);
        },
        "SECTDIFF relocation without its PAIR",
    );
}

const X86_64_DATA: &str = r#"
.text
.globl __start
__start:
    addl $1, _big(%rip)
    addl $1, _huge(%rip)
    leaq _table(%rip), %rax
    ret
_f1: ret
.section __TEXT,__const
_table:
    .long _f1 - _table
.zerofill __DATA,__bss,_big,16,4
.comm _huge, 8, 3
"#;

/// A zero-fill section of 2^50 bytes: its size is in its header only.
#[test]
fn zero_fill_larger_than_any_image() {
    refused(
        "hostile-bss",
        common::X86_64,
        X86_64_DATA,
        |data| {
            let at = section_header::<MachHeader64<LE>>(data, "__DATA", "__bss");
            put64(data, at + 40, 1 << 50);
        },
        "section __DATA,__bss: 0x4000000000000 bytes do not fit in the image's address space",
    );
}

/// The i386 equivalent stays inside the 32-bit object address space but
/// not inside the image's.
#[test]
fn i386_zero_fill_past_the_address_space() {
    let asm = r#"
.text
.globl __start
__start:
    addl $1, _big
    ret
.zerofill __DATA,__bss,_big,16,4
"#;
    refused(
        "hostile-bss-i386",
        common::I686,
        asm,
        |data| {
            let at = section_header::<MachHeader32<LE>>(data, "__DATA", "__bss");
            put32(data, at + 36, 0xffff_f000);
        },
        "section __DATA,__bss: 0xfffff000 bytes do not fit in the image's address space",
    );
}

/// A common symbol of 2^63 bytes.
#[test]
fn common_larger_than_any_image() {
    refused(
        "hostile-common",
        common::X86_64,
        X86_64_DATA,
        |data| {
            let at = symbol_entry::<MachHeader64<LE>>(data, "_huge");
            put64(data, at + 8, 1 << 63);
        },
        "common symbol _huge: size 0x8000000000000000 does not fit in an image",
    );
}

/// `X86_64_RELOC_SUBTRACTOR` whose `UNSIGNED` partner became `SIGNED`.
#[test]
fn subtractor_without_unsigned() {
    refused(
        "hostile-subtractor",
        common::X86_64,
        X86_64_DATA,
        |data| {
            let at = section_header::<MachHeader64<LE>>(data, "__TEXT", "__const");
            let (reloff, nreloc) = (get32(data, at + 56) as usize, get32(data, at + 60) as usize);
            // r_type is bits 28-31 of the second word: SUBTRACTOR 5,
            // UNSIGNED 0, SIGNED 1.
            let sub = (0..nreloc).map(|i| reloff + 8 * i).find(|&r| get32(data, r + 4) >> 28 == 5).expect("a SUBTRACTOR");
            let unsigned = sub + 8;
            let word = get32(data, unsigned + 4) | 0x1000_0000;
            put32(data, unsigned + 4, word);
        },
        "__TEXT,__const+0x0: X86_64_RELOC_SUBTRACTOR not followed by its X86_64_RELOC_UNSIGNED",
    );
}

/// Two inputs name the same section, one zero-fill and one not: the
/// zero-fill one has no bytes to copy, and the other's would be dropped
/// in a zero-fill output. Refused.
#[test]
fn zero_fill_and_data_under_one_name() {
    let target = common::X86_64;
    let dir = common::scratch("hostile-mixed-zerofill");
    let a = common::assemble(
        target,
        ".text\n.globl __start\n__start:\n    addl $1, _z(%rip)\n    addl $1, _d(%rip)\n    ret\n.zerofill __DATA,__mine,_z,4,2\n",
        &dir,
        "a",
    );
    let b = common::assemble(target, ".section __DATA,__mine\n.globl _d\n_d: .long 5\n", &dir, "b");
    let out = dir.join("image");
    common::link_fails(target, &[a, b.clone()], &out, true, &b, "section __DATA,__mine is zero-fill in one input and not in another");
}
