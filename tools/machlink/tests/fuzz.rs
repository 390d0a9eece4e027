//! Bounded property test over the object reader and the whole link: the
//! real hello objects, and objects using everything the data segment
//! brought (zero-fill, commons, GOT loads and slots, SUBTRACTOR pairs,
//! non-lazy pointers, scattered differences), truncated and with bytes
//! flipped, never make machlink panic; each run either links or fails with
//! one `machlink: ...` line.

mod common;

use std::sync::OnceLock;

use machlink::{Arch, InputFile};
use proptest::prelude::*;

fn objects() -> &'static [(Arch, Vec<u8>); 2] {
    static OBJECTS: OnceLock<[(Arch, Vec<u8>); 2]> = OnceLock::new();
    OBJECTS.get_or_init(|| {
        [
            (Arch::X86_64, std::fs::read(common::object(common::X86_64)).unwrap()),
            (Arch::I386, std::fs::read(common::object(common::I686)).unwrap()),
        ]
    })
}

/// Self-contained objects (each links on its own) with a little of
/// everything the data segment brought.
const X86_64_RICH: &str = r#"
.text
.globl __start
__start:
    movq _value@GOTPCREL(%rip), %rax
    addq _value@GOTPCREL(%rip), %rbx
    leaq _table(%rip), %rdx
    movslq 4(%rdx), %rax
    addl %eax, _counter(%rip)
    addl %eax, _shared(%rip)
    leaq __mh_execute_header(%rip), %rcx
    callq _f1
    ret
_f1: ret
_f2: ret
.section __TEXT,__const
_table:
    .long _f1 - _table
    .long _f2 - _table
.data
.globl _value
_value: .long 3
_ptr: .quad _value
.zerofill __DATA,__bss,_counter,4,2
.comm _shared, 16, 4
"#;

const I386_RICH: &str = r#"
.text
.globl __start
__start:
    calll 1f
1:  popl %ebx
    movl L_ext$non_lazy_ptr-1b(%ebx), %eax
    movl L_loc$non_lazy_ptr-1b(%ebx), %eax
    leal _end_a-1b(%ebx), %ecx
    leal _b0+2-1b(%ebx), %ecx
    movl $_b0+1, %eax
    addl %eax, _counter
    ret
.data
_loc: .long 22
.globl _ext
_ext: .long 20
.section __TEXT,__a
    .long 1
_end_a:
.section __TEXT,__b
    .long 7
_b0:
    .long 2
.section __IMPORT,__pointers,non_lazy_symbol_pointers
L_ext$non_lazy_ptr:
    .indirect_symbol _ext
    .long 0
L_loc$non_lazy_ptr:
    .indirect_symbol _loc
    .long _loc
.zerofill __DATA,__bss,_counter,4,2
"#;

fn rich_objects() -> &'static [(Arch, Vec<u8>); 2] {
    static OBJECTS: OnceLock<[(Arch, Vec<u8>); 2]> = OnceLock::new();
    OBJECTS.get_or_init(|| {
        let dir = common::scratch("fuzz-rich");
        let x86_64 = common::assemble(common::X86_64, X86_64_RICH, &dir, "x86_64");
        let i386 = common::assemble(common::I686, I386_RICH, &dir, "i386");
        let objects = [(Arch::X86_64, std::fs::read(x86_64).unwrap()), (Arch::I386, std::fs::read(i386).unwrap())];
        // Unmutated, both link: the mutations start from working inputs.
        for (arch, data) in &objects {
            let files = [InputFile { name: "rich.o".into(), data: data.clone().into() }];
            if let Err(e) = machlink::link(&files, Some(*arch), "__start", true, "rich") {
                panic!("{arch:?}: {e}");
            }
        }
        objects
    })
}

/// Links `data`; a failure must be one line. Whether it failed.
fn link(arch: Arch, data: Vec<u8>) -> bool {
    let files = [InputFile { name: "fuzz.o".into(), data: data.into() }];
    match machlink::link(&files, Some(arch), "__start", true, "fuzz") {
        Err(e) => {
            let line = e.to_string();
            assert!(line.starts_with("machlink: ") && !line.contains('\n'), "{line}");
            true
        }
        Ok(_) => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// The plain objects (0, 1) and the rich ones, with data, GOT and
    /// pointers (2, 3), mutated and cut: a link error, never a panic.
    #[test]
    fn mutated_objects_never_panic(
        which in 0usize..4,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
        truncate in any::<bool>(),
    ) {
        let (arch, original) = if which < 2 { &objects()[which] } else { &rich_objects()[which - 2] };
        let mut data = original.clone();
        for (at, value) in flips {
            let at = at % data.len();
            data[at] ^= value | 1;
        }
        if truncate {
            data.truncate(cut % original.len());
        }
        link(*arch, data);
    }
}

/// Every single-byte change to every header, load command, symbol and
/// relocation byte: more than random flips reach.
#[test]
fn every_byte_of_rich_objects_set_to_extremes() {
    for (arch, original) in rich_objects() {
        for at in 0..original.len() {
            for value in [0x00, 0xff, 0x80, 0x7f] {
                let mut data = original.clone();
                data[at] = value;
                link(*arch, data);
            }
        }
    }
}

#[test]
fn every_truncation_fails_cleanly() {
    for (arch, original) in objects() {
        // The whole object links: the failures below are the cuts'.
        assert!(!link(*arch, original.clone()), "the uncut object fails to link");
        for len in 0..original.len() {
            assert!(link(*arch, original[..len].to_vec()), "{arch:?}: the object cut to {len} of {} bytes linked", original.len());
        }
    }
}
