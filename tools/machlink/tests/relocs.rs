//! Relocation kinds beyond plain branches and pointers, each checked in
//! the image's bytes and by running it: x86_64 GOT loads (relaxed to
//! `leaq`) and GOT slots, SUBTRACTOR pairs, i386 non-lazy pointers, and
//! i386 section-less (scattered) addresses at a boundary between two
//! sections.

mod common;

use std::path::PathBuf;

/// `movq _value@GOTPCREL(%rip)` (GOT_LOAD) and `addq _value@GOTPCREL(%rip)`
/// (GOT), then a call through a table of 32-bit offsets (SUBTRACTOR +
/// UNSIGNED). Exit status: 3 (through the relaxed load) + 3 (through the
/// slot) + 10 (`_f2`, found through the table) = 16.
const X86_64_GOT: &str = r#"
.text
.globl __start
__start:
    movq _value@GOTPCREL(%rip), %rax
    movl (%rax), %edi
    xorl %ebx, %ebx
    addq _value@GOTPCREL(%rip), %rbx
    addl (%rbx), %edi
    leaq _table(%rip), %rdx
    movslq 4(%rdx), %rax
    addq %rdx, %rax
    callq *%rax
    movl $0x2000001, %eax
    syscall
.globl _f1
_f1:
    addl $1, %edi
    ret
.globl _f2
_f2:
    addl $10, %edi
    ret
.section __TEXT,__const
.globl _table
_table:
    .long _f1 - _table
    .long _f2 - _table
"#;

const X86_64_VALUE: &str = r#"
.data
.globl _value
_value: .long 3
"#;

#[test]
fn x86_64_got_and_subtractor() {
    let target = common::X86_64;
    let (out, _, image) = common::link_sources(target, "x86_64-got", &[X86_64_GOT, X86_64_VALUE]);
    let (start, value) = (image.symbol("__start"), image.symbol("_value"));

    // movq _value@GOTPCREL(%rip), %rax became leaq _value(%rip), %rax.
    assert_eq!(image.at(start, 3), [0x48, 0x8d, 0x05], "movq -> leaq");
    let disp = i64::from(i32::from_le_bytes(image.at(start + 3, 4).try_into().unwrap()));
    assert_eq!((start as i64 + 7 + disp) as u64, value, "leaq reaches _value itself");

    // addq _value@GOTPCREL(%rip), %rbx (at +9 after movl and xorl) keeps
    // its load, from a GOT slot holding _value's address.
    let add = start + 3 + 4 + 2 + 2;
    assert_eq!(image.at(add, 3), [0x48, 0x03, 0x1d], "addq stays addq");
    let disp = i64::from(i32::from_le_bytes(image.at(add + 3, 4).try_into().unwrap()));
    let slot = (add as i64 + 7 + disp) as u64;
    let got = image.section("__DATA", "__got").expect("__DATA,__got").clone();
    assert_eq!((slot, got.3), (got.2, 8), "one slot, the one addq reads");
    assert_eq!(image.u64_at(slot), value, "the slot holds _value's address");

    let table = image.symbol("_table");
    for (i, f) in ["_f1", "_f2"].iter().enumerate() {
        let stored = i64::from(i32::from_le_bytes(image.at(table + 4 * i as u64, 4).try_into().unwrap()));
        assert_eq!(stored, image.symbol(f) as i64 - table as i64, "_table[{i}] = {f} - _table");
    }
    common::assert_exits(&out, 16);
}

/// Non-lazy pointers, as i386 PIC code reaches data: `_ext` is another
/// object's (an indirect-symbol entry), `_loc` this one's local
/// (`INDIRECT_SYMBOL_LOCAL`, the slot holding its object address). Exit
/// status: 20 + 22 = 42.
const I386_POINTERS: &str = r#"
.text
.globl __start
__start:
    calll 1f
1:  popl %ebx
    movl L_ext$non_lazy_ptr-1b(%ebx), %eax
    movl (%eax), %edx
    movl L_loc$non_lazy_ptr-1b(%ebx), %eax
    addl (%eax), %edx
    pushl %edx
    pushl %eax
    movl $1, %eax
    int $0x80
.data
_loc: .long 22
.section __IMPORT,__pointers,non_lazy_symbol_pointers
L_ext$non_lazy_ptr:
    .indirect_symbol _ext
    .long 0
L_loc$non_lazy_ptr:
    .indirect_symbol _loc
    .long _loc
"#;

const I386_EXT: &str = r#"
.data
.globl _ext
_ext: .long 20
"#;

#[test]
fn i386_non_lazy_pointers() {
    let target = common::I686;
    let (out, _, image) = common::link_sources(target, "i386-pointers", &[I386_POINTERS, I386_EXT]);
    let slots = image.section("__DATA", "__nl_symbol_ptr").expect("__DATA,__nl_symbol_ptr").clone();
    assert_eq!(slots.3, 8, "two 4-byte slots");
    assert_eq!(u64::from(image.u32_at(slots.2)), image.symbol("_ext"));
    assert_eq!(u64::from(image.u32_at(slots.2 + 4)), image.symbol("_loc"));
    common::assert_exits(&out, 42);
}

/// Section `__a` ends exactly where `__b` starts in the object, and the
/// code takes the address of that boundary with a `LOCAL_SECTDIFF` (which
/// carries the address but no section). `LABEL` is what names it. A
/// second object's `__a` is placed between the two in the image, so the
/// two readings differ by its 8 bytes.
fn boundary_objects(label: &str, a_end: &str, b_start: &str, dir: &std::path::Path) -> Vec<PathBuf> {
    let asm = format!(
        r#"
.text
.globl __start
__start:
    calll 1f
1:  popl %eax
    leal {label}-1b(%eax), %ecx
    movl (%ecx), %edx
    pushl %edx
    pushl %eax
    movl $1, %eax
    int $0x80
.section __TEXT,__a
.globl _a0
_a0:
    .long 0x11111111
{a_end}
.section __TEXT,__b
{b_start}
    .long 0x22222222
"#
    );
    let other = r#"
.section __TEXT,__a
.globl _other_a
_other_a:
    .long 0x33333333, 0x44444444
"#;
    let target = common::I686;
    vec![common::assemble(target, &asm, dir, "boundary"), common::assemble(target, other, dir, "other")]
}

/// Clears `MH_SUBSECTIONS_VIA_SYMBOLS` (rustc's assembler always sets
/// it): the object as a plain assembler makes it, whose sections move
/// whole, so that the end of a section is an address like any other.
fn whole_sections(object: &std::path::Path) {
    let mut data = std::fs::read(object).unwrap();
    let flags = u32::from_le_bytes(data[24..28].try_into().unwrap());
    assert_ne!(flags & object::macho::MH_SUBSECTIONS_VIA_SYMBOLS.0, 0);
    data[24..28].copy_from_slice(&(flags & !object::macho::MH_SUBSECTIONS_VIA_SYMBOLS.0).to_le_bytes());
    std::fs::write(object, data).unwrap();
}

/// The displacement of `leal X-1b(%eax), %ecx` read back from the image:
/// the address it computes.
fn lea_target(image: &common::Image) -> u64 {
    let start = image.symbol("__start");
    assert_eq!(image.at(start + 6, 2), [0x8d, 0x88], "leal disp32(%eax), %ecx");
    let disp = i64::from(i32::from_le_bytes(image.at(start + 8, 4).try_into().unwrap()));
    (start as i64 + 5 + disp) as u64
}

/// A symbol at the end of `__a` names the end of `__a`: not the start of
/// `__b`, which is where ld64's rule alone would put it. Exit status: the
/// word there, which is the other object's `__a`.
#[test]
fn i386_boundary_named_by_a_symbol_in_the_first_section() {
    let dir = common::scratch("boundary-a");
    let objs = boundary_objects("_end_a", "_end_a:", "", &dir);
    let out = dir.join("image");
    // No -dead_strip: __b stays, so that taking its start would show.
    common::link_ok(common::I686, &objs, &out, false);
    let image = common::Image::read(&out);
    let end_a = image.symbol("_end_a");
    assert_eq!(end_a, image.symbol("_a0") + 4, "_end_a right after _a0's word");
    assert_eq!(lea_target(&image), end_a, "the end of this object's __a");
    let b = image.section("__TEXT", "__b").unwrap();
    assert_ne!(end_a, b.2, "the other object's __a lies between");
    common::assert_exits(&out, 0x33);
}

/// A symbol at the start of `__b` names the start of `__b`.
#[test]
fn i386_boundary_named_by_a_symbol_in_the_next_section() {
    let dir = common::scratch("boundary-b");
    let objs = boundary_objects("_b0", "", "_b0:", &dir);
    let (out, image) = common::link_image(common::I686, &objs, &dir, true);
    let b = image.section("__TEXT", "__b").unwrap();
    assert_eq!((lea_target(&image), image.symbol("_b0")), (b.2, b.2));
    common::assert_exits(&out, 0x22);
}

/// An assembler-local label (no symbol) at the boundary, in an object
/// whose sections move whole, `__b` a plain section: nothing says which
/// is meant, and a guess would be off by 8 bytes without a warning.
/// Refused, naming file and section.
#[test]
fn i386_boundary_without_a_symbol_is_refused() {
    let dir = common::scratch("boundary-none");
    let objs = boundary_objects("Lboundary", "Lboundary:", "", &dir);
    whole_sections(&objs[0]);
    let out = dir.join("image");
    common::link_fails(
        common::I686,
        &objs,
        &out,
        true,
        &objs[0],
        "__TEXT,__text+0x8: relocation target 0x",
    );
    let result = common::link(common::I686, &objs, &out, true);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("is both the end of __TEXT,__a and the start of __TEXT,__b"), "{stderr}");
}

/// The same label in an object built on `MH_SUBSECTIONS_VIA_SYMBOLS`
/// (as rustc's are): every address belongs to the block that starts at or
/// before it, so a section's end is nobody's address and the label is the
/// start of `__b`, as ld64 reads it. This is how LLVM's constant-pool
/// labels (`LCPI`) at the start of a `__const` are reached.
#[test]
fn i386_boundary_label_in_an_atomized_object_is_the_next_section() {
    let dir = common::scratch("boundary-atomized");
    let objs = boundary_objects("Lboundary", "Lboundary:", "", &dir);
    let (out, image) = common::link_image(common::I686, &objs, &dir, false);
    let b = image.section("__TEXT", "__b").unwrap();
    assert_eq!(lea_target(&image), b.2);
    common::assert_exits(&out, 0x22);
}

/// A label after the last element of a literal section: a literal
/// section has no end to speak of (ld64 splits it per element), so the
/// label starts the next section, even in an object whose sections move
/// whole.
#[test]
fn i386_boundary_after_literals_is_the_next_section() {
    let asm = r#"
.text
.globl __start
__start:
    calll 1f
1:  popl %eax
    leal Lconst-1b(%eax), %ecx
    movl (%ecx), %edx
    addl Lfour-1b(%eax), %edx
    pushl %edx
    pushl %eax
    movl $1, %eax
    int $0x80
.literal4
Lfour: .long 3
.section __TEXT,__const
Lconst: .long 0x40
"#;
    let dir = common::scratch("boundary-literal");
    let obj = common::assemble(common::I686, asm, &dir, "literal");
    whole_sections(&obj);
    let out = dir.join("image");
    common::link_ok(common::I686, &[obj], &out, true);
    common::assert_exits(&out, 0x43);
}

/// Symbols on both sides of the boundary: refused too.
#[test]
fn i386_boundary_named_on_both_sides_is_refused() {
    let dir = common::scratch("boundary-both");
    let objs = boundary_objects("_end_a", "_end_a:", "_b0:", &dir);
    let out = dir.join("image");
    common::link_fails(common::I686, &objs, &out, true, &objs[0], "is both the end of __TEXT,__a and the start of __TEXT,__b");
}

/// The same boundary reached by a scattered `GENERIC_RELOC_VANILLA`
/// (`symbol + offset`, absolute): `_end_a + 4` moves with `__a`, and an
/// assembler-local label there is refused.
#[test]
fn i386_scattered_vanilla_at_a_boundary() {
    let asm = |label: &str, at_end: &str| {
        format!(
            r#"
.text
.globl __start
__start:
    movl ${label}+4, %eax
    movl -4(%eax), %edx
    pushl %edx
    pushl %eax
    movl $1, %eax
    int $0x80
.section __TEXT,__a
.globl _a0
_a0:
    .long 0x11111111
{at_end}
.section __TEXT,__b
    .long 0x22222222
"#
        )
    };
    let other = ".section __TEXT,__a\n.globl _other_a\n_other_a:\n    .long 0x33333333, 0x44444444\n";
    let target = common::I686;
    let dir = common::scratch("boundary-vanilla");
    let other = common::assemble(target, other, &dir, "other");

    let named = common::assemble(target, &asm("_end_a", "_end_a:"), &dir, "named");
    let (out, image) = common::link_image(target, &[named, other.clone()], &dir, false);
    let start = image.symbol("__start");
    assert_eq!(image.at(start, 1), [0xb8], "movl $imm32, %eax");
    assert_eq!(u64::from(image.u32_at(start + 1)), image.symbol("_end_a") + 4);
    common::assert_exits(&out, 0x33);

    let local = common::assemble(target, &asm("Lboundary", "Lboundary:"), &dir, "local");
    whole_sections(&local);
    common::link_fails(target, &[local.clone(), other], &out, false, &local, "is both the end of __TEXT,__a and the start of __TEXT,__b");
}

/// A GOT load of an absolute symbol stays a load, from a slot, as ld64
/// keeps it: `__mh_execute_header` is absolute in a non-PIE image. Exit
/// status: the low byte of the magic read through the slot.
#[test]
fn x86_64_got_load_of_an_absolute_symbol_keeps_its_slot() {
    let asm = r#"
.text
.globl __start
__start:
    movq __mh_execute_header@GOTPCREL(%rip), %rax
    movzbl (%rax), %edi
    movl $0x2000001, %eax
    syscall
"#;
    let target = common::X86_64;
    let dir = common::scratch("x86_64-got-absolute");
    let obj = common::assemble(target, asm, &dir, "absolute");
    let (out, image) = common::link_image(target, &[obj], &dir, true);
    let start = image.symbol("__start");
    assert_eq!(image.at(start, 3), [0x48, 0x8b, 0x05], "movq stays movq");
    let disp = i64::from(i32::from_le_bytes(image.at(start + 3, 4).try_into().unwrap()));
    let got = image.section("__DATA", "__got").expect("__DATA,__got").clone();
    assert_eq!((start as i64 + 7 + disp) as u64, got.2, "it reads the slot");
    assert_eq!(image.u64_at(got.2), 1 << 32, "which holds the header's address");
    common::assert_exits(&out, 0xcf);
}

/// i386 PIC with an addend: `leal _data+8-1b(%ecx)` is a SECTDIFF pair
/// whose stored value carries the 8. The displacement must be the target
/// plus 8 minus the pic base, computed here from the image's symbols, and
/// the program reads the third word: exit 3.
const I386_SECTDIFF_ADDEND: &str = r#"
.text
.globl __start
__start:
    calll 1f
1:  popl %ecx
    leal _data+8-1b(%ecx), %eax
    movl (%eax), %eax
    pushl %eax
    pushl %eax
    movl $1, %eax
    int $0x80
.data
.globl _data
_data: .long 1, 2, 3
"#;

#[test]
fn i386_sectdiff_with_an_addend() {
    let target = common::I686;
    let (out, _, image) = common::link_sources(target, "i386-sectdiff-addend", &[I386_SECTDIFF_ADDEND]);
    let start = image.symbol("__start");
    // calll (5 bytes), popl %ecx (59), then leal disp32(%ecx), %eax: 8d 81.
    assert_eq!(image.at(start + 6, 2), [0x8d, 0x81]);
    let pic_base = start + 5;
    assert_eq!(u64::from(image.u32_at(start + 8)), image.symbol("_data") + 8 - pic_base, "the addend survives the link");
    common::assert_exits(&out, 3);
}

/// x86_64 RIP-relative stores with an immediate after the displacement:
/// `movl $7, _v(%rip)` is X86_64_RELOC_SIGNED_4 and `movw $5, _w(%rip)`
/// SIGNED_2 (the immediate's size, which the CPU adds to find the next
/// instruction). Each displacement is checked against the address of the
/// instruction's end, computed here; the program adds the two: exit 12.
const X86_64_SIGNED: &str = r#"
.text
.globl __start
__start:
    movl $7, _v(%rip)
    movw $5, _w(%rip)
    movl _v(%rip), %edi
    movzwl _w(%rip), %eax
    addl %eax, %edi
    movl $0x2000001, %eax
    syscall
.data
.globl _v
_v: .long 0
.globl _w
_w: .short 0
"#;

#[test]
fn x86_64_signed_2_and_signed_4() {
    let target = common::X86_64;
    let (out, _, image) = common::link_sources(target, "x86_64-signed", &[X86_64_SIGNED]);
    let start = image.symbol("__start");
    let disp = |at: u64| i64::from(i32::from_le_bytes(image.at(at, 4).try_into().unwrap()));
    // c7 05 disp32 imm32: 10 bytes.
    assert_eq!(image.at(start, 2), [0xc7, 0x05]);
    assert_eq!((start as i64 + 10 + disp(start + 2)) as u64, image.symbol("_v"), "SIGNED_4");
    // 66 c7 05 disp32 imm16: 9 bytes, from start + 10.
    assert_eq!(image.at(start + 10, 3), [0x66, 0xc7, 0x05]);
    assert_eq!((start as i64 + 19 + disp(start + 13)) as u64, image.symbol("_w"), "SIGNED_2");
    common::assert_exits(&out, 12);
}

/// The i386 exit: `exit(%eax)` through `int $0x80`, the argument above a
/// return-address slot.
const I386_EXIT: &str = "    pushl %eax\n    pushl %eax\n    movl $1, %eax\n    int $0x80\n";

/// i386 fields of one and two bytes: `jecxz` (a 1-byte pc-relative
/// `VANILLA`, its target the stored byte plus the end of the field) and
/// `.short _two - _table` (a 2-byte `SECTDIFF`), both sign-extended as
/// ld64 reads them (`Section<x86>::addRelocFixup`,
/// src/ld/parsers/macho_relocatable_file.cpp: `(int8_t)`, `(int16_t)`).
/// Each is checked against the image's symbols; the jump is taken: exit 7.
#[test]
fn i386_one_and_two_byte_fields() {
    let asm = format!(
        r#"
.text
.globl __start
__start:
    xorl %ecx, %ecx
    jecxz _two
    ud2
.globl _two
_two:
    movzwl _table, %eax
    movl $7, %eax
{I386_EXIT}
.section __TEXT,__const
.globl _table
_table:
    .short _two - _table
"#
    );
    let target = common::I686;
    let (out, _, image) = common::link_sources(target, "i386-small-fields", &[&asm]);
    let (start, two, table) = (image.symbol("__start"), image.symbol("_two"), image.symbol("_table"));
    // xorl %ecx, %ecx (31 c9), then jecxz rel8 (e3 xx).
    assert_eq!(image.at(start + 2, 1), [0xe3], "jecxz");
    let rel8 = i64::from(image.at(start + 3, 1)[0] as i8);
    assert_eq!((start as i64 + 4 + rel8) as u64, two, "jecxz lands on _two");
    let diff = i64::from(i16::from_le_bytes(image.at(table, 2).try_into().unwrap()));
    assert_eq!(diff, two as i64 - table as i64, "_table holds _two - _table in 16 bits");
    common::assert_exits(&out, 7);
}

/// `calll _f+1`: a scattered pc-relative `VANILLA` (the entry names `_f`'s
/// address, the field holds `_f + 1` minus the end of the field), here
/// not at the start of its section, so that the end of the field counts.
/// The call skips `_f`'s first byte (`incl %eax`): exit 5, not 6.
#[test]
fn i386_scattered_call_past_a_symbol() {
    let asm = format!(
        r#"
.text
.globl __start
__start:
    xorl %eax, %eax
    calll _f+1
{I386_EXIT}
.globl _f
_f:
    incl %eax
    addl $5, %eax
    ret
"#
    );
    let target = common::I686;
    let (out, _, image) = common::link_sources(target, "i386-scattered-call", &[&asm]);
    let (start, f) = (image.symbol("__start"), image.symbol("_f"));
    // xorl %eax, %eax (31 c0), then calll rel32 (e8).
    assert_eq!(image.at(start + 2, 1), [0xe8], "calll");
    let disp = i64::from(i32::from_le_bytes(image.at(start + 3, 4).try_into().unwrap()));
    assert_eq!((start as i64 + 7 + disp) as u64, f + 1, "the call lands one byte into _f");
    common::assert_exits(&out, 5);
}

/// A non-lazy pointer to an assembler-absolute symbol: LLVM marks its
/// indirect-table entry `INDIRECT_SYMBOL_LOCAL | INDIRECT_SYMBOL_ABS` and
/// stores the value in the slot, which the linker must leave as it is
/// (there is no address to relocate). ld64 reads such an entry as a
/// symbol number and refuses it (`symbolFromIndex`, "symbol index out of
/// range", src/ld/parsers/macho_relocatable_file.cpp); machlink keeps the
/// value. Exit status: its low byte.
#[test]
fn i386_non_lazy_pointer_to_an_absolute_symbol() {
    let asm = format!(
        r#"
.text
.globl __start
__start:
    movl L_abs$non_lazy_ptr, %eax
{I386_EXIT}
_abs = 0x1234
.section __IMPORT,__pointers,non_lazy_symbol_pointers
L_abs$non_lazy_ptr:
    .indirect_symbol _abs
    .long _abs
"#
    );
    let target = common::I686;
    let (out, _, image) = common::link_sources(target, "i386-pointer-absolute", &[&asm]);
    let slots = image.section("__DATA", "__nl_symbol_ptr").expect("__DATA,__nl_symbol_ptr").clone();
    assert_eq!(slots.3, 4, "one slot");
    assert_eq!(image.u32_at(slots.2), 0x1234, "the slot keeps the absolute value");
    common::assert_exits(&out, 0x34);
}

/// Empty sections at section boundaries, in an object whose sections
/// move whole, reached by `LOCAL_SECTDIFF`s that carry only an address.
/// ld64's `Parser::sectionForAddress` (src/ld/parsers/macho_relocatable_file.cpp)
/// takes the section holding the address strictly inside, else an empty
/// section at it, else a section it ends; and the object's own layout
/// is:
///
/// - the empty `__z` where `__a` ends: `Lz` is `__z`'s, not the end of
///   `__a`;
/// - the empty `__y` and `__b` both at the next 16-byte boundary, which
///   no section ends: `Lb` is the start of `__b`, with nothing ambiguous
///   about it;
/// - `L_b_end` ends `__b`, no empty section there: the end of `__b`.
///
/// A second object's `__a` and `__b` go between in the image, so that
/// each wrong reading lands elsewhere.
#[test]
fn i386_empty_sections_at_boundaries() {
    let asm = format!(
        r#"
.text
.globl __start
__start:
    calll 1f
1:  popl %eax
    leal Lz-1b(%eax), %ecx
    leal L_b_end-1b(%eax), %edx
    leal Lb-1b(%eax), %esi
    movl (%esi), %eax
{I386_EXIT}
.section __TEXT,__a
.globl _a0
_a0:
    .long 0x11111111
.section __TEXT,__z
Lz:
.section __TEXT,__y
.p2align 4
.section __TEXT,__b
.p2align 4
Lb:
    .long 0x22222222
L_b_end:
"#
    );
    let other = ".section __TEXT,__a\n.globl _other_a\n_other_a:\n    .long 0x33333333, 0x44444444\n.section __TEXT,__b\n.globl _other_b\n_other_b:\n    .long 0x55555555\n";
    let target = common::I686;
    let dir = common::scratch("empty-sections");
    let obj = common::assemble(target, &asm, &dir, "empty");
    whole_sections(&obj);
    // The layout the cases above rely on, as the assembler made it.
    let data = std::fs::read(&obj).unwrap();
    let file = object::File::parse(&*data).unwrap();
    use object::{Object as _, ObjectSection as _};
    let section = |name: &str| file.section_by_name(name).map(|s| (s.address(), s.size())).unwrap();
    let [(a, a_size), (z, z_size), (y, y_size), (b, b_size)] = ["__a", "__z", "__y", "__b"].map(section);
    assert_eq!((a_size, z_size, y_size, b_size), (4, 0, 0, 4));
    assert!(z == a + 4 && y == b && a + 4 < b, "__a {a:#x}, __z {z:#x}, __y {y:#x}, __b {b:#x}");
    let other = common::assemble(target, other, &dir, "other");
    let (out, image) = common::link_image(target, &[obj, other], &dir, false);
    let start = image.symbol("__start");
    let pic_base = start as i64 + 5;
    let lea = |at: u64, modrm: u8| {
        assert_eq!(image.at(start + at, 2), [0x8d, modrm], "leal disp32(%eax) at +{at}");
        (pic_base + i64::from(i32::from_le_bytes(image.at(start + at + 2, 4).try_into().unwrap()))) as u64
    };
    let z = image.section("__TEXT", "__z").expect("__TEXT,__z").2;
    let b = image.section("__TEXT", "__b").expect("__TEXT,__b").2;
    assert_ne!(z, image.symbol("_a0") + 4, "the other object's __a lies between");
    assert_eq!(lea(6, 0x88), z, "Lz: the empty __z");
    assert_eq!(lea(12, 0x90), b + 4, "L_b_end: the end of this object's __b");
    assert_eq!(lea(18, 0xb0), b, "Lb: the start of __b");
    common::assert_exits(&out, 0x22);
}

/// Address-based references (`.long Lmid`, a non-extern `VANILLA`) into
/// the block of a weak `_shared` that another object's strong definition
/// overrides. Linked without `-dead_strip`, so that this losing copy
/// stays in the image, right after `_before`.
const I386_WEAK_BLOCK: &str = r#"
.text
.globl __start
__start:
    movl _before, %eax
    movl (%eax), %eax
    pushl %eax
    pushl %eax
    movl $1, %eax
    int $0x80
.data
.globl _before
_before: .long Lmid
.globl _shared
.weak_definition _shared
_shared: .long Lself
Lmid: .long 2
Lself: .long 3
.globl _after
_after: .long Lmid, Lmid
"#;

const I386_STRONG: &str = ".data\n.globl _shared\n_shared: .long 10, 20, 30\n";

/// (image, this object's losing copy of `_shared`, the winner) for
/// [`I386_WEAK_BLOCK`], the object's sections moving whole or not.
fn weak_block(test: &str, whole: bool) -> (PathBuf, common::Image, u64, u64) {
    let target = common::I686;
    let dir = common::scratch(test);
    let weak = common::assemble(target, I386_WEAK_BLOCK, &dir, "weak");
    if whole {
        whole_sections(&weak);
    }
    let strong = common::assemble(target, I386_STRONG, &dir, "strong");
    let (out, image) = common::link_image(target, &[weak, strong], &dir, false);
    let (loser, winner) = (image.symbol("_before") + 4, image.symbol("_shared"));
    assert_ne!(loser, winner);
    assert_eq!((image.u32_at(loser + 4), image.u32_at(winner)), (2, 10), "the two copies");
    (out, image, loser, winner)
}

/// With `MH_SUBSECTIONS_VIA_SYMBOLS`, `Lmid` belongs to `_shared`'s
/// block, so references to it from other blocks (`_before` just before
/// the block, `_after` at the very address the block ends and 4 bytes
/// on) reach the winner's copy, as ld64 binds them by name
/// (`Parser<A>::addFixups`); the block's reference to itself (`Lself`)
/// stays on its own copy. Exit status: the winner's second word, 20.
#[test]
fn i386_address_references_into_a_weak_block() {
    let (out, image, loser, winner) = weak_block("weak-block", false);
    let (before, after) = (image.symbol("_before"), image.symbol("_after"));
    assert_eq!(after, loser + 12, "_after starts where the block ends");
    assert_eq!(u64::from(image.u32_at(before)), winner + 4, "_before: the winner's Lmid");
    assert_eq!(u64::from(image.u32_at(after)), winner + 4, "_after: the winner's Lmid");
    assert_eq!(u64::from(image.u32_at(after + 4)), winner + 4, "_after + 4: the winner's Lmid");
    assert_eq!(u64::from(image.u32_at(loser)), loser + 8, "the block's own Lself");
    common::assert_exits(&out, 20);
}

/// The same object without `MH_SUBSECTIONS_VIA_SYMBOLS`: nothing promises
/// that `Lmid` belongs to `_shared` (only a symbol at the very address
/// would name it), so every reference stays on this object's copy. Exit
/// status: 2.
#[test]
fn i386_address_references_into_a_weak_block_of_a_whole_section() {
    let (out, image, loser, _) = weak_block("weak-block-whole", true);
    let (before, after) = (image.symbol("_before"), image.symbol("_after"));
    for (name, at) in [("_before", before), ("_after", after), ("_after + 4", after + 4)] {
        assert_eq!(u64::from(image.u32_at(at)), loser + 4, "{name}: this copy's Lmid");
    }
    assert_eq!(u64::from(image.u32_at(loser)), loser + 8, "the block's own Lself");
    common::assert_exits(&out, 2);
}

/// `X86_64_RELOC_GOT_LOAD` on a `movq` that is not at the start of its
/// section (the opcode is found two bytes before the field, wherever that
/// is) becomes `leaq`; `X86_64_RELOC_GOT` on `movl` keeps its slot, though
/// its opcode is 0x8b as well: only a GOT load is ever relaxed
/// (`gotFixup`, src/ld/passes/got.cpp, marks `kindStoreX86PCRel32GOT` not
/// optimizable). Exit status: `_value`, through the `leaq`.
#[test]
fn x86_64_got_load_after_other_code_and_got_on_movl() {
    let asm = r#"
.text
.globl __start
__start:
    nop
    nop
    nop
    nop
    movq _value@GOTPCREL(%rip), %rax
    movl (%rax), %edi
    movl _value@GOTPCREL(%rip), %ecx
    movl $0x2000001, %eax
    syscall
.data
.globl _value
_value: .long 3
"#;
    let target = common::X86_64;
    let (out, _, image) = common::link_sources(target, "x86_64-got-movl", &[asm]);
    let (start, value) = (image.symbol("__start"), image.symbol("_value"));
    let disp = |at: u64| i64::from(i32::from_le_bytes(image.at(at, 4).try_into().unwrap()));
    assert_eq!(image.at(start + 4, 3), [0x48, 0x8d, 0x05], "movq -> leaq");
    assert_eq!((start as i64 + 11 + disp(start + 7)) as u64, value, "leaq reaches _value itself");
    // movl (%rax), %edi is 8b 38; then movl disp32(%rip), %ecx: 8b 0d.
    assert_eq!(image.at(start + 13, 2), [0x8b, 0x0d], "movl stays movl");
    let slot = (start as i64 + 19 + disp(start + 15)) as u64;
    let got = image.section("__DATA", "__got").expect("__DATA,__got").clone();
    assert_eq!((slot, got.3), (got.2, 8), "one slot, the one movl reads");
    assert_eq!(image.u64_at(slot), value, "the slot holds _value's address");
    common::assert_exits(&out, 3);
}

/// The other x86_64 data shapes: an 8-byte `SUBTRACTOR` pair
/// (`.quad _f1 - _table`), a pair whose minuend is a non-extern
/// `UNSIGNED` naming a C-string section (`Lstr` has no symbol to be
/// named by), and a 4-byte absolute `UNSIGNED` (`.long _abs`, an
/// absolute symbol of another object), each as ld64 accepts them
/// (`Section<x86_64>::addRelocFixup`,
/// src/ld/parsers/macho_relocatable_file.cpp). The code calls `_f1`
/// (1) and adds the string's first byte (5) and `_abs` (42): exit 48.
#[test]
fn x86_64_subtractor_quad_string_minuend_and_absolute_long() {
    let asm = r#"
.text
.globl __start
__start:
    leaq _table(%rip), %rdx
    movq (%rdx), %rax
    addq %rdx, %rax
    callq *%rax
    movslq 8(%rdx), %rax
    addq %rdx, %rax
    movzbl (%rax), %eax
    addl %eax, %edi
    addl 12(%rdx), %edi
    movl $0x2000001, %eax
    syscall
.globl _f1
_f1:
    movl $1, %edi
    ret
.section __TEXT,__const
.globl _table
_table:
    .quad _f1 - _table
    .long Lstr - _table
    .long _abs
.section __TEXT,__cstring,cstring_literals
Lstr: .asciz "\5"
"#;
    let abs = ".globl _abs\n_abs = 42\n";
    let target = common::X86_64;
    let (out, _, image) = common::link_sources(target, "x86_64-subtractor-shapes", &[asm, abs]);
    let (table, f1) = (image.symbol("_table"), image.symbol("_f1"));
    let string = image.section("__TEXT", "__cstring").expect("__TEXT,__cstring").2;
    assert_eq!(image.u64_at(table) as i64, f1 as i64 - table as i64, "_f1 - _table in 8 bytes");
    assert_eq!(i64::from(image.u32_at(table + 8) as i32), string as i64 - table as i64, "Lstr - _table");
    assert_eq!(image.at(string, 2), [5, 0], "the string");
    assert_eq!(image.u32_at(table + 12), 42, "_abs");
    common::assert_exits(&out, 48);
}
