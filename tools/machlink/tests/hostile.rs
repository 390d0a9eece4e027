//! Objects made wrong on purpose where the new code reads them: each is a
//! working object with one field patched, and each must give one line
//! naming the file, exit status 1 and no output file; never a panic, an
//! overflow or a silently wrong image. The few that machlink can read
//! safely must link to the image the patched object means.

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

/// File offsets of the relocation entries of section `seg,sect`.
fn relocations<Mach: MachHeader<Endian = LE>>(data: &[u8], seg: &str, sect: &str) -> Vec<usize> {
    let at = section_header::<Mach>(data, seg, sect);
    // reloff and nreloc: at 48 and 52 in a 32-bit section header, 56 and
    // 60 in a 64-bit one.
    let at = if Mach::parse(data, 0).unwrap().is_type_64() { at + 56 } else { at + 48 };
    let (reloff, nreloc) = (get32(data, at) as usize, get32(data, at + 4) as usize);
    (0..nreloc).map(|i| reloff + 8 * i).collect()
}

/// The second word of the one relocation entry of `seg,sect` that `pick`
/// chooses, changed by `change`. Plain entries keep r_symbolnum in bits
/// 0-23 of that word, then r_pcrel (24), r_length (25-26), r_extern (27)
/// and r_type (28-31).
fn patch_plain<Mach: MachHeader<Endian = LE>>(data: &mut [u8], seg: &str, sect: &str, pick: impl Fn(u32) -> bool, change: impl Fn(u32) -> u32) {
    let entries: Vec<usize> = relocations::<Mach>(data, seg, sect).into_iter().filter(|&r| get32(data, r) >> 31 == 0 && pick(get32(data, r + 4))).collect();
    assert_eq!(entries.len(), 1, "one entry to patch in {seg},{sect}");
    let word = get32(data, entries[0] + 4);
    put32(data, entries[0] + 4, change(word));
}

/// The same for a scattered i386 entry, whose first word holds
/// r_address (bits 0-23), r_type (24-27), r_length (28-29), r_pcrel (30)
/// and the scattered bit (31).
fn patch_scattered(data: &mut [u8], seg: &str, sect: &str, r_type: u32, change: impl Fn(u32) -> u32) {
    let entries: Vec<usize> =
        relocations::<MachHeader32<LE>>(data, seg, sect).into_iter().filter(|&r| get32(data, r) >> 31 == 1 && (get32(data, r) >> 24) & 0xf == r_type).collect();
    assert_eq!(entries.len(), 1, "one scattered entry of type {r_type} in {seg},{sect}");
    let word = get32(data, entries[0]);
    put32(data, entries[0], change(word));
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

/// Plain, scattered and difference entries in one i386 object: `movl
/// _table` (non-extern `VANILLA` at +1, naming `__const` by number),
/// `movl $_table+4` (scattered `VANILLA`) and `Ltab-1b` (scattered
/// `LOCAL_SECTDIFF` + `PAIR`).
const I386_SHAPES: &str = r#"
.text
.globl __start
__start:
    movl _table, %eax
    movl $_table+4, %ecx
    calll 1f
1:  popl %ebx
    movl Ltab-1b(%ebx), %edx
    ret
.section __TEXT,__const
.globl _table
_table: .long 1, 2
Ltab: .long 3
"#;

/// `GENERIC_RELOC_*` numbers (r_type).
const VANILLA: u32 = 0;
const LOCAL_SECTDIFF: u32 = 4;

/// The plain `VANILLA` entry of [`I386_SHAPES`].
fn plain_vanilla(word: u32) -> bool {
    word >> 28 == VANILLA
}

/// A plain i386 `VANILLA` of 8 bytes (r_length 3): ld64 refuses it too
/// ("r_length=3 not supported", `Section<x86>::addRelocFixup`,
/// src/ld/parsers/macho_relocatable_file.cpp).
#[test]
fn i386_vanilla_of_eight_bytes() {
    refused(
        "hostile-vanilla-length",
        common::I686,
        I386_SHAPES,
        |data| patch_plain::<MachHeader32<LE>>(data, "__TEXT", "__text", plain_vanilla, |w| w | 3 << 25),
        "__TEXT,__text+0x1: unsupported relocation GENERIC_RELOC_VANILLA",
    );
}

/// A plain i386 entry of another type than `VANILLA` (`SECTDIFF` is only
/// ever scattered): ld64 refuses it ("unsupported i386 relocation type").
#[test]
fn i386_plain_sectdiff() {
    refused(
        "hostile-plain-sectdiff",
        common::I686,
        I386_SHAPES,
        |data| patch_plain::<MachHeader32<LE>>(data, "__TEXT", "__text", plain_vanilla, |w| (w & 0x0fff_ffff) | 2 << 28),
        "__TEXT,__text+0x1: unsupported relocation GENERIC_RELOC_SECTDIFF",
    );
}

/// A non-extern `VANILLA` naming section 0 (`R_ABS`): the target is an
/// absolute value, which ld64 takes only when an absolute symbol has it
/// (`findTargetFromAddressAndSectionNum`); machlink refuses it, never
/// reading the value as an address in some section.
#[test]
fn i386_vanilla_against_an_absolute_value() {
    refused(
        "hostile-vanilla-abs",
        common::I686,
        I386_SHAPES,
        |data| patch_plain::<MachHeader32<LE>>(data, "__TEXT", "__text", plain_vanilla, |w| w & !0xff_ffff),
        "__TEXT,__text+0x1: unsupported relocation GENERIC_RELOC_VANILLA against an absolute value",
    );
}

/// A non-extern `VANILLA` naming section `nsects + 1`, one past the last.
#[test]
fn i386_vanilla_naming_a_section_past_the_last() {
    refused(
        "hostile-vanilla-section",
        common::I686,
        I386_SHAPES,
        |data| {
            use object::Object as _;
            let nsects = object::File::parse(&**data).unwrap().sections().count() as u32;
            patch_plain::<MachHeader32<LE>>(data, "__TEXT", "__text", plain_vanilla, |w| (w & !0xff_ffff) | (nsects + 1));
        },
        "is in no section",
    );
}

/// A scattered `VANILLA` of 8 bytes: ld64 refuses it too ("unsupported
/// r_length=3 for scattered vanilla reloc").
#[test]
fn i386_scattered_vanilla_of_eight_bytes() {
    refused(
        "hostile-scattered-length",
        common::I686,
        I386_SHAPES,
        |data| patch_scattered(data, "__TEXT", "__text", VANILLA, |w| w | 3 << 28),
        "__TEXT,__text+0x6: unsupported relocation GENERIC_RELOC_VANILLA (scattered)",
    );
}

/// A pc-relative `LOCAL_SECTDIFF`: a difference of two addresses is not
/// relative to the field, and no assembler writes one.
#[test]
fn i386_pc_relative_sectdiff() {
    refused(
        "hostile-sectdiff-pcrel",
        common::I686,
        I386_SHAPES,
        |data| patch_scattered(data, "__TEXT", "__text", LOCAL_SECTDIFF, |w| w | 1 << 30),
        "__TEXT,__text+0x12: unsupported relocation GENERIC_RELOC_LOCAL_SECTDIFF with pcrel=1 length=2",
    );
}

/// `X86_64_RELOC_*` numbers (r_type).
const UNSIGNED: u32 = 0;
const SIGNED: u32 = 1;
const GOT_LOAD: u32 = 3;
const GOT: u32 = 4;
const SUBTRACTOR: u32 = 5;

/// A GOT load (`movq`, +3), a GOT reference (`addq`, +10) and a plain
/// pc-relative one (`leaq`, +17).
const X86_64_GOT: &str = r#"
.text
.globl __start
__start:
    movq _value@GOTPCREL(%rip), %rax
    addq _value@GOTPCREL(%rip), %rax
    leaq _value(%rip), %rcx
    ret
.data
.globl _value
_value: .long 3
"#;

fn x86_64_type(r_type: u32) -> impl Fn(u32) -> bool {
    move |word| word >> 28 == r_type
}

/// `X86_64_RELOC_GOT_LOAD` that is not pc-relative: ld64 refuses it ("not
/// pcrel and X86_64_RELOC_GOT_LOAD not supported").
#[test]
fn x86_64_got_load_not_pc_relative() {
    refused(
        "hostile-got-load-pcrel",
        common::X86_64,
        X86_64_GOT,
        |data| patch_plain::<MachHeader64<LE>>(data, "__TEXT", "__text", x86_64_type(GOT_LOAD), |w| w & !(1 << 24)),
        "__TEXT,__text+0x3: unsupported relocation X86_64_RELOC_GOT_LOAD with pcrel=0 length=2 extern=1",
    );
}

/// `X86_64_RELOC_SIGNED` that is not pc-relative: ld64 refuses it ("not
/// pcrel and X86_64_RELOC_SIGNED* not supported").
#[test]
fn x86_64_signed_not_pc_relative() {
    refused(
        "hostile-signed-pcrel",
        common::X86_64,
        X86_64_GOT,
        |data| patch_plain::<MachHeader64<LE>>(data, "__TEXT", "__text", x86_64_type(SIGNED), |w| w & !(1 << 24)),
        "__TEXT,__text+0x11: unsupported relocation X86_64_RELOC_SIGNED with pcrel=0 length=2 extern=1",
    );
}

/// A pc-relative `X86_64_RELOC_SUBTRACTOR`: ld64 refuses it
/// ("X86_64_RELOC_SUBTRACTOR cannot be pc-relative").
#[test]
fn x86_64_pc_relative_subtractor() {
    refused(
        "hostile-subtractor-pcrel",
        common::X86_64,
        X86_64_DATA,
        |data| patch_plain::<MachHeader64<LE>>(data, "__TEXT", "__const", x86_64_type(SUBTRACTOR), |w| w | 1 << 24),
        "__TEXT,__const+0x0: unsupported relocation X86_64_RELOC_SUBTRACTOR with pcrel=1 length=2 extern=1",
    );
}

/// A `SUBTRACTOR` pair whose `UNSIGNED` half is pc-relative: ld64 refuses
/// it ("X86_64_RELOC_UNSIGNED following a X86_64_RELOC_SUBTRACTOR cannot
/// be pc-relative").
#[test]
fn x86_64_subtractor_with_a_pc_relative_minuend() {
    refused(
        "hostile-minuend-pcrel",
        common::X86_64,
        X86_64_DATA,
        |data| patch_plain::<MachHeader64<LE>>(data, "__TEXT", "__const", x86_64_type(UNSIGNED), |w| w | 1 << 24),
        "__TEXT,__const+0x0: unsupported relocation X86_64_RELOC_SUBTRACTOR with pcrel=0 length=2 extern=1",
    );
}

/// A `SUBTRACTOR` naming a section instead of a symbol: ld64 refuses it
/// ("X86_64_RELOC_SUBTRACTOR must have r_extern=1").
#[test]
fn x86_64_non_extern_subtractor() {
    refused(
        "hostile-subtractor-extern",
        common::X86_64,
        X86_64_DATA,
        |data| patch_plain::<MachHeader64<LE>>(data, "__TEXT", "__const", x86_64_type(SUBTRACTOR), |w| w & !(1 << 27)),
        "__TEXT,__const+0x0: unsupported relocation X86_64_RELOC_SUBTRACTOR with pcrel=0 length=2 extern=0",
    );
}

/// A `SUBTRACTOR` pair of 2-byte fields, both halves alike: ld64 refuses
/// it ("X86_64_RELOC_SUBTRACTOR must have r_length of 2 or 3").
#[test]
fn x86_64_subtractor_of_two_bytes() {
    refused(
        "hostile-subtractor-length",
        common::X86_64,
        X86_64_DATA,
        |data| {
            for r_type in [SUBTRACTOR, UNSIGNED] {
                patch_plain::<MachHeader64<LE>>(data, "__TEXT", "__const", x86_64_type(r_type), |w| (w & !(3 << 25)) | 1 << 25);
            }
        },
        "__TEXT,__const+0x0: unsupported relocation X86_64_RELOC_SUBTRACTOR with pcrel=0 length=1 extern=1",
    );
}

/// The `addq`'s `X86_64_RELOC_GOT` made a `GOT_LOAD`, which only a `movq`
/// carries: the instruction is not a load that `leaq` could replace, so
/// it keeps reading its GOT slot. (ld64 would rewrite it and then refuse:
/// "GOT load reloc does not point to a movq instruction",
/// `OutputFile::applyFixUps`, src/ld/OutputFile.cpp.)
#[test]
fn x86_64_got_load_on_addq_keeps_its_slot() {
    let target = common::X86_64;
    let dir = common::scratch("hostile-got-load-addq");
    let obj = common::assemble(target, X86_64_GOT, &dir, "good");
    let mut data = std::fs::read(&obj).unwrap();
    patch_plain::<MachHeader64<LE>>(&mut data, "__TEXT", "__text", x86_64_type(GOT), |w| (w & 0x0fff_ffff) | GOT_LOAD << 28);
    let patched = dir.join("patched.o");
    std::fs::write(&patched, &data).unwrap();
    let (_, image) = common::link_image(target, &[patched], &dir, true);
    let (start, value) = (image.symbol("__start"), image.symbol("_value"));
    assert_eq!(image.at(start, 3), [0x48, 0x8d, 0x05], "the movq became leaq");
    assert_eq!(image.at(start + 7, 3), [0x48, 0x03, 0x05], "the addq stays addq");
    let disp = i64::from(i32::from_le_bytes(image.at(start + 10, 4).try_into().unwrap()));
    let got = image.section("__DATA", "__got").expect("__DATA,__got").clone();
    assert_eq!((start as i64 + 14 + disp) as u64, got.2, "it reads the slot");
    assert_eq!(image.u64_at(got.2), value, "which holds _value's address");
}

/// Sections that overlap, in an object whose sections move whole: `__a`'s
/// size patched so that it ends at `Lmid`, two bytes into `__b`. An
/// address strictly inside a section is that section's, as ld64's
/// `Parser::sectionForAddress` tries that first: not "the end of `__a`
/// and the start of `__b`", which it is not. Exit status: the low byte
/// of the half-word at `Lmid`.
#[test]
fn address_inside_one_section_where_another_ends() {
    let asm = r#"
.text
.globl __start
__start:
    calll 1f
1:  popl %eax
    leal Lmid-1b(%eax), %ecx
    movzwl (%ecx), %eax
    pushl %eax
    pushl %eax
    movl $1, %eax
    int $0x80
.section __TEXT,__a
    .long 0x11111111
.section __TEXT,__b
.p2align 4
    .short 0x2222
Lmid:
    .short 0x3333
"#;
    let target = common::I686;
    let dir = common::scratch("hostile-overlap");
    let obj = common::assemble(target, asm, &dir, "good");
    let mut data = std::fs::read(&obj).unwrap();
    let flags = get32(&data, 24);
    put32(&mut data, 24, flags & !object::macho::MH_SUBSECTIONS_VIA_SYMBOLS.0);
    let a = section_header::<MachHeader32<LE>>(&data, "__TEXT", "__a");
    let b = section_header::<MachHeader32<LE>>(&data, "__TEXT", "__b");
    let (a_addr, b_addr) = (get32(&data, a + 32), get32(&data, b + 32));
    assert!(a_addr + 4 < b_addr, "a gap between __a and __b");
    put32(&mut data, a + 36, b_addr + 2 - a_addr);
    let patched = dir.join("patched.o");
    std::fs::write(&patched, &data).unwrap();
    let (out, image) = common::link_image(target, &[patched], &dir, false);
    let start = image.symbol("__start");
    assert_eq!(image.at(start + 6, 2), [0x8d, 0x88], "leal disp32(%eax), %ecx");
    let disp = i64::from(i32::from_le_bytes(image.at(start + 8, 4).try_into().unwrap()));
    let b = image.section("__TEXT", "__b").expect("__TEXT,__b").2;
    assert_eq!((start as i64 + 5 + disp) as u64, b + 2, "Lmid, inside __b");
    common::assert_exits(&out, 0x33);
}
