//! Writable data in a static image: the `__DATA` segment's header fields,
//! its contents (absolute pointers, zero-fill), common symbols, the
//! linker-defined `__mh_execute_header`, and the refusal of thread-local
//! variables. Objects are hand-written assembly; every image is also run
//! under xnurun, whose exit status is computed from the data it reads.

mod common;

use object::macho;

const RW: u32 = 3;
const RX: u32 = 5;

/// Reads `_step` (initialised data), adds it twice to `_counter` and once
/// to a word 4 KiB into `_big` (both zero-fill, the latter past the file
/// bytes), follows `_ptr` (an absolute pointer in `__DATA,__const`) and
/// exits with the sum: 5 + 10 + 0 = 15.
const X86_64_DATA: &str = r#"
.text
.globl __start
__start:
    movl _step(%rip), %eax
    addl %eax, _counter(%rip)
    addl %eax, _counter(%rip)
    movq _ptr(%rip), %rcx
    movl (%rcx), %edi
    addl _counter(%rip), %edi
    addl _big+4092(%rip), %edi
    movl $0x2000001, %eax
    syscall
.data
.globl _step
_step: .long 5
.section __DATA,__const
.globl _ptr
_ptr: .quad _step
.zerofill __DATA,__bss,_counter,4,2
.zerofill __DATA,__bss,_big,8192,4
"#;

/// The same for i386, with absolute addresses (no PIC), exiting through
/// `int 0x80` with the argument on the stack above an unused word.
const I386_DATA: &str = r#"
.text
.globl __start
__start:
    movl _step, %eax
    addl %eax, _counter
    addl %eax, _counter
    movl _ptr, %ecx
    movl (%ecx), %edx
    addl _counter, %edx
    addl _big+4092, %edx
    pushl %edx
    pushl %eax
    movl $1, %eax
    int $0x80
.data
.globl _step
_step: .long 5
.section __DATA,__const
.globl _ptr
_ptr: .long _step
.zerofill __DATA,__bss,_counter,4,2
.zerofill __DATA,__bss,_big,8192,4
"#;

fn check_data(target: &str, asm: &str) {
    let (out, headers, image) = common::link_sources(target, &format!("data-{target}"), &[asm]);
    assert!(headers.contains("segname __DATA"), "{headers}");
    let is_64 = target == common::X86_64;

    let seg = if is_64 { macho::LC_SEGMENT_64 } else { macho::LC_SEGMENT };
    assert_eq!(image.commands, vec![seg, seg, seg, macho::LC_SYMTAB, macho::LC_UNIXTHREAD]);
    let names: Vec<&str> = image.segments.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, ["__PAGEZERO", "__TEXT", "__DATA"]);
    let text = image.segment("__TEXT").unwrap().clone();
    let data = image.segment("__DATA").unwrap().clone();
    assert_eq!((text.5, text.6), (RX, RX), "__TEXT is r-x");
    assert_eq!((data.5, data.6), (RW, RW), "__DATA is rw-");
    assert_eq!(text.3, 0, "__TEXT maps the header");
    assert_eq!(data.1, text.1 + text.2, "__DATA follows __TEXT in memory");
    assert_eq!(data.3, text.3 + text.4, "and in the file");
    assert_eq!(data.3 % 4096, 0, "file offset page-aligned");
    assert_eq!(data.2 % 4096, 0, "vmsize whole pages");
    assert!(data.2 > data.4, "zero-fill: vmsize {:#x} > filesize {:#x}", data.2, data.4);
    assert!(data.3 + data.4 <= image.data.len() as u64, "file bytes inside the file");

    let bss = image.section("__DATA", "__bss").expect("__bss").clone();
    assert_eq!(bss.5 & 0xff, u32::from(macho::S_ZEROFILL.0), "__bss is zero-fill");
    assert_eq!(bss.4, 0, "zero-fill sections have no file offset");
    assert!(bss.3 >= 8192 + 4);
    for name in ["__data", "__const"] {
        let s = image.section("__DATA", name).unwrap_or_else(|| panic!("__DATA,{name}"));
        assert_eq!(s.2 - text.1, s.4, "{name}: address = base + file offset");
        assert!(s.2 >= data.1 && s.2 + s.3 <= data.1 + data.4, "{name} inside __DATA's file bytes");
    }
    assert!(bss.2 + bss.3 <= data.1 + data.2, "__bss inside __DATA");

    // The pointer holds the absolute address of its target: no rebasing.
    let (ptr, step) = (image.symbol("_ptr"), image.symbol("_step"));
    let stored = if is_64 { image.u64_at(ptr) } else { u64::from(image.u32_at(ptr)) };
    assert_eq!(stored, step, "_ptr = &_step");
    assert_eq!(image.u32_at(step), 5);
    let counter = image.symbol("_counter");
    assert!(counter >= bss.2 && counter < bss.2 + bss.3, "_counter in __bss");

    let (status, stdout, stderr) = common::run(&out);
    assert_eq!((status, stdout.as_str()), (Some(15), ""), "xnurun: {stderr}");
}

#[test]
fn x86_64_data_segment() {
    check_data(common::X86_64, X86_64_DATA);
}

#[test]
fn i386_data_segment() {
    check_data(common::I686, I386_DATA);
}

/// Issue 11: an unused __DATA section stopped the link unless -dead_strip
/// was given. Without it, everything is kept, data included; with it,
/// the data goes and so does the segment.
#[test]
fn unused_data_without_dead_strip() {
    let asm = r#"
.text
.globl __start
__start:
    movl $7, %edi
    movl $0x2000001, %eax
    syscall
.data
.globl _unused
_unused: .quad 0x1122334455667788
"#;
    let dir = common::scratch("unused-data");
    let obj = common::assemble(common::X86_64, asm, &dir, "unused");
    let kept = dir.join("kept");
    common::link_ok(common::X86_64, std::slice::from_ref(&obj), &kept, false);
    common::check_with_llvm(&kept);
    let image = common::Image::read(&kept);
    assert!(image.segment("__DATA").is_some(), "the unused data is kept");
    assert_eq!(image.u64_at(image.symbol("_unused")), 0x1122334455667788);
    assert_eq!(common::run(&kept).0, Some(7));

    let stripped = dir.join("stripped");
    let bytes = common::link_ok(common::X86_64, &[obj], &stripped, true);
    let image = common::Image::read(&stripped);
    assert!(image.segment("__DATA").is_none(), "no __DATA once its only section is stripped");
    assert_eq!(bytes.len(), 4096, "one page, as without data");
    assert_eq!(common::run(&stripped).0, Some(7));
}

/// Tentative definitions: the largest size and alignment win, a real
/// definition anywhere wins over them, and they are zero-filled in
/// `__DATA,__common`. Exit status: 3 + 4 (`_real`'s initial value) = 7,
/// read after writing both.
#[test]
fn common_symbols() {
    let a = r#"
.text
.globl __start
__start:
    movl $3, _shared+60(%rip)
    movl _shared+60(%rip), %edi
    addl _real(%rip), %edi
    movq _pshared(%rip), %rax
    movl 60(%rax), %eax
    subl $3, %eax
    addl %eax, %edi
    movl $0x2000001, %eax
    syscall
.comm _shared, 16, 4
.comm _real, 4, 2
.data
.globl _pshared
_pshared: .quad _shared
"#;
    let b = r#"
.comm _shared, 64, 3
.comm _unused_common, 8, 3
.globl _b_marker
.text
_b_marker: ret
"#;
    let c = r#"
.data
.globl _real
_real: .long 4
"#;
    let target = common::X86_64;
    let (out, _, image) = common::link_sources(target, "commons", &[a, b, c]);
    let common_sect = image.section("__DATA", "__common").expect("__DATA,__common").clone();
    assert_eq!(common_sect.5 & 0xff, u32::from(macho::S_ZEROFILL.0));
    let shared = image.symbol("_shared");
    assert_eq!(shared % 16, 0, "the largest alignment, 2^4");
    assert!(shared >= common_sect.2 && shared + 64 <= common_sect.2 + common_sect.3, "the largest size, 64");
    assert!(!image.symbols.iter().any(|s| s.0 == "_unused_common"), "an unused common is dead-stripped");
    let data = image.section("__DATA", "__data").unwrap();
    let real = image.symbol("_real");
    assert!(real >= data.2 && real < data.2 + data.3, "the real definition wins");
    assert_eq!(image.u64_at(image.symbol("_pshared")), shared);
    common::assert_exits(&out, 7);
}

/// ld64 defines `__mh_execute_header` (and `___dso_handle`) for
/// executables; static programs read their own header through it. Exit status: the low byte of the
/// magic the code reads there.
#[test]
fn mh_execute_header() {
    let x86_64 = r#"
.text
.globl __start
__start:
    leaq __mh_execute_header(%rip), %rax
    movq _header(%rip), %rcx
    subq %rcx, %rax
    movzbl (%rcx), %edi
    addl %eax, %edi
    movq _dso(%rip), %rdx
    subq %rcx, %rdx
    addl %edx, %edi
    movl $0x2000001, %eax
    syscall
.data
.globl _header
_header: .quad __mh_execute_header
.globl _dso
_dso: .quad ___dso_handle
"#;
    let i386 = r#"
.text
.globl __start
__start:
    movzbl __mh_execute_header, %eax
    pushl %eax
    pushl %eax
    movl $1, %eax
    int $0x80
"#;
    for (target, asm, magic, base) in [(common::X86_64, x86_64, 0xcf, 1u64 << 32), (common::I686, i386, 0xce, 0x1000)] {
        let dir = common::scratch(&format!("mh-header-{target}"));
        let obj = common::assemble(target, asm, &dir, "header");
        let (out, image) = common::link_image(target, &[obj], &dir, true);
        assert_eq!(image.segment("__TEXT").unwrap().1, base);
        if target == common::X86_64 {
            assert_eq!(image.u64_at(image.symbol("_header")), base, "__mh_execute_header = __TEXT's address");
            assert_eq!(image.u64_at(image.symbol("_dso")), base, "___dso_handle too");
        }
        let (status, _, stderr) = common::run(&out);
        assert_eq!(status, Some(magic), "{target}: xnurun: {stderr}");
    }
}

const TLV: &str = r#"
.section __DATA,__thread_data,thread_local_regular
_tv$tlv$init: .long 7
.section __DATA,__thread_vars,thread_local_variables
.globl _tv
_tv:
    .quad __tlv_bootstrap
    .quad 0
    .quad _tv$tlv$init
.text
.globl __start
__start:
    movq _tv@TLVP(%rip), %rdi
    callq *(%rdi)
    ret
"#;

/// Thread-local variables need dyld: one line naming the file, the
/// section and the symbol, whether the code uses the variable or the
/// variable is merely kept (no -dead_strip).
#[test]
fn thread_locals_are_refused() {
    let dir = common::scratch("tlv");
    let obj = common::assemble(common::X86_64, TLV, &dir, "tlv");
    let out = dir.join("image");
    common::link_fails(common::X86_64, std::slice::from_ref(&obj), &out, true, &obj, "__TEXT,__text+0x3: thread-local variable _tv needs dyld");

    let unused = TLV.replace("movq _tv@TLVP(%rip), %rdi\n    callq *(%rdi)\n", "");
    let obj = common::assemble(common::X86_64, &unused, &dir, "tlv-unused");
    common::link_fails(
        common::X86_64,
        std::slice::from_ref(&obj),
        &out,
        false,
        &obj,
        "section __DATA,__thread_vars: symbol _tv is needed, but the section holds thread-local variables",
    );
}

/// Only zero-fill data: `__DATA` maps no file bytes at all (filesize 0),
/// which XNU's `load_segment` accepts as anonymous memory.
#[test]
fn zero_fill_only() {
    let asm = r#"
.text
.globl __start
__start:
    addl $9, _counter(%rip)
    movl _counter(%rip), %edi
    movl $0x2000001, %eax
    syscall
.zerofill __DATA,__bss,_counter,4,2
"#;
    let (out, _, image) = common::link_sources(common::X86_64, "bss-only", &[asm]);
    let data = image.segment("__DATA").expect("__DATA").clone();
    assert_eq!((data.2, data.4), (4096, 0), "one page of memory, no file bytes");
    common::assert_exits(&out, 9);
}
