//! Small no_std programs as a new user would write them, compiled by
//! rustc (`--emit=obj`) at -O0, -O2 and -Os for x86_64-apple-darwin and
//! i686-apple-darwin, linked by machlink with `core` and
//! `compiler_builtins` from the sysroot, and run under the workspace's XNU
//! runner: each must print exactly what the same code computes here.
//!
//! Between them they need writable data and zero-fill (`static mut`),
//! pointers in `__DATA,__const` (a table of `&str`), `core::fmt`, jump and
//! switch tables (`SUBTRACTOR` pairs on x86_64, `LOCAL_SECTDIFF` on i386),
//! GOT loads (x86_64) and non-lazy pointers (i386) into `core`.

mod common;

use std::path::PathBuf;

/// System calls, `_start`, the panic handler, and the memory functions
/// compiler_builtins leaves to libSystem on Apple targets.
const PRELUDE: &str = r#"
#![no_std]
#![no_main]
#![allow(static_mut_refs)]

#[cfg(target_arch = "x86_64")]
fn sys3(nr: usize, a: usize, b: usize, c: usize) -> isize {
    let ret: isize;
    // XNU returns rval[1] in rdx (unix_syscall64), hence its clobber.
    unsafe {
        core::arch::asm!("syscall", "jnc 2f", "neg rax", "2:",
            inlateout("rax") 0x2000000 | nr => ret, in("rdi") a, in("rsi") b, inlateout("rdx") c => _,
            lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

#[cfg(target_arch = "x86")]
fn sys3(nr: usize, a: usize, b: usize, c: usize) -> isize {
    let ret: isize;
    // int 0x80: arguments on the stack above one unused word.
    unsafe {
        core::arch::asm!("push edx", "push ecx", "push {a}", "push eax", "int 0x80", "jnc 2f", "neg eax", "2:", "add esp, 16",
            a = in(reg) a, inlateout("eax") nr => ret, inlateout("ecx") b => _, inlateout("edx") c => _);
    }
    ret
}

fn write_all(mut s: &[u8]) {
    while !s.is_empty() {
        let n = sys3(4, 1, s.as_ptr() as usize, s.len());
        if n == -4 { continue; }
        if n <= 0 { exit(1); }
        s = &s[n as usize..];
    }
}

fn exit(code: i32) -> ! {
    sys3(1, code as usize, 0, 0);
    loop {}
}

fn put_u32(mut n: u32) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 { break; }
    }
    write_all(&buf[i..]);
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    write_all(b"panic\n");
    exit(101)
}

#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!("and rsp, -16", "call {m}", "ud2", m = sym main_rs)
}

#[cfg(target_arch = "x86")]
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!("and esp, -16", "call {m}", "ud2", m = sym main_rs)
}

#[cfg(target_arch = "x86_64")]
mod mem {
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
        unsafe { core::arch::asm!("rep movsb", inout("rdi") d => _, inout("rsi") s => _, inout("rcx") n => _, options(nostack)); }
        d
    }
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
        unsafe { core::arch::asm!("rep stosb", inout("rdi") d => _, in("al") c as u8, inout("rcx") n => _, options(nostack)); }
        d
    }
    // Not through memset: LLVM turns memset(d, 0, n) into a call to
    // __bzero on Apple targets, which would then call itself.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __bzero(d: *mut u8, n: usize) {
        unsafe { core::arch::asm!("rep stosb", inout("rdi") d => _, in("al") 0u8, inout("rcx") n => _, options(nostack)); }
    }
}

#[cfg(target_arch = "x86")]
mod mem {
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
        // LLVM reserves esi on i386: swapped in and out by hand.
        unsafe { core::arch::asm!("xchg esi, {s}", "rep movsb", "xchg esi, {s}", s = inout(reg) s => _, inout("edi") d => _, inout("ecx") n => _, options(nostack)); }
        d
    }
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
        unsafe { core::arch::asm!("rep stosb", inout("edi") d => _, in("al") c as u8, inout("ecx") n => _, options(nostack)); }
        d
    }
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __bzero(d: *mut u8, n: usize) {
        unsafe { core::arch::asm!("rep stosb", inout("edi") d => _, in("al") 0u8, inout("ecx") n => _, options(nostack)); }
    }
}

// Byte at a time through volatile accesses, so that LLVM cannot turn the
// loops back into calls to themselves.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    for i in 0..n {
        let i = if (d as usize) < (s as usize) { i } else { n - 1 - i };
        unsafe { core::ptr::write_volatile(d.add(i), core::ptr::read_volatile(s.add(i))) }
    }
    d
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        let (x, y) = unsafe { (core::ptr::read_volatile(a.add(i)), core::ptr::read_volatile(b.add(i))) };
        if x != y { return i32::from(x) - i32::from(y); }
    }
    0
}


#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    unsafe { memcmp(a, b, n) }
}
"#;

/// A `static mut` counter in zero-fill memory, a step in initialised
/// data, and a writable table of pointers (relocated `__DATA,__data`), all
/// written at run time.
const COUNTER: &str = r#"
static mut COUNTER: u32 = 0;
static mut STEP: u32 = 3;
static mut ORDER: [&str; 3] = ["first ", "second ", "third "];

#[inline(never)]
fn bump() -> u32 {
    unsafe {
        COUNTER += STEP;
        STEP += 1;
        COUNTER
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn main_rs() -> ! {
    let mut last = 0;
    for _ in 0..core::hint::black_box(4) {
        last = bump();
        put_u32(last);
        write_all(b" ");
    }
    put_u32(unsafe { STEP });
    write_all(b"\n");
    unsafe { ORDER.swap(0, core::hint::black_box(2)) };
    for name in unsafe { ORDER.iter() } {
        write_all(name.as_bytes());
    }
    write_all(b"\n");
    exit(if last == 18 { 0 } else { 2 })
}
"#;

/// A table of messages: `&str`s, whose pointers sit in `__DATA,__const`.
const MESSAGES: &str = r#"
static MESSAGES: [&str; 4] = ["zero\n", "one\n", "two\n", "three\n"];
static NUMBERS: [(&str, u32); 3] = [("ten ", 10), ("twenty ", 20), ("thirty ", 30)];

#[unsafe(no_mangle)]
pub extern "C" fn main_rs() -> ! {
    for i in 0..core::hint::black_box(4) {
        write_all(MESSAGES[3 - i].as_bytes());
    }
    for i in 0..core::hint::black_box(3) {
        let (name, n) = NUMBERS[i];
        write_all(name.as_bytes());
        put_u32(n);
        write_all(b"\n");
    }
    exit(0)
}
"#;

/// Numbers printed by core::fmt (its tables, its vtables, dyn Write).
const FMT: &str = r#"
use core::fmt::Write;

struct Out;
impl Write for Out {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        write_all(s.as_bytes());
        Ok(())
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn main_rs() -> ! {
    let (a, b, c) = core::hint::black_box((12345u32, 0xbeefu32, -7i64));
    let _ = writeln!(Out, "{a} {b:x} {c} {:>5}|{:.2}", "ab", 2.5f64);
    exit(0)
}
"#;

/// A dense match: a jump table, or a switch table of values.
const JUMP: &str = r#"
#[inline(never)]
fn op(n: u32, x: u32) -> u32 {
    match n {
        0 => x + 1,
        1 => x.wrapping_mul(3),
        2 => x ^ 0x55,
        3 => x.rotate_left(5),
        4 => x / 7,
        5 => x.wrapping_sub(100),
        6 => !x,
        7 => x << 2,
        8 => x.count_ones(),
        _ => 0,
    }
}

#[inline(never)]
fn name(n: u32) -> &'static str {
    match n {
        0 => "alpha", 1 => "beta", 2 => "gamma", 3 => "delta", 4 => "epsilon",
        5 => "zeta", 6 => "eta", 7 => "theta", _ => "other",
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn main_rs() -> ! {
    let mut acc = 1u32;
    for i in 0..core::hint::black_box(10) {
        acc = op(i, acc);
        put_u32(acc);
        write_all(b" ");
        write_all(name(i).as_bytes());
        write_all(b"\n");
    }
    exit(0)
}
"#;

/// What `JUMP` prints, computed by the same code on the host.
fn jump_expected() -> String {
    fn op(n: u32, x: u32) -> u32 {
        match n {
            0 => x + 1,
            1 => x.wrapping_mul(3),
            2 => x ^ 0x55,
            3 => x.rotate_left(5),
            4 => x / 7,
            5 => x.wrapping_sub(100),
            6 => !x,
            7 => x << 2,
            8 => x.count_ones(),
            _ => 0,
        }
    }
    let names = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "other", "other"];
    let mut acc = 1u32;
    let mut out = String::new();
    for (i, name) in names.iter().enumerate() {
        acc = op(i as u32, acc);
        out += &format!("{acc} {name}\n");
    }
    out
}

fn check(program: &str, body: &str, expected: &str) {
    check_with(program, body, expected, &["0", "2", "s"], true);
}

fn check_with(program: &str, body: &str, expected: &str, opts: &[&str], dead_strip: bool) {
    let source = format!("{PRELUDE}{body}");
    for target in [common::X86_64, common::I686] {
        for opt in opts {
            let dir = common::scratch(&format!("program-{program}-{target}-O{opt}-{dead_strip}"));
            let object = common::compile(target, &source, opt, &dir, program);
            let mut inputs: Vec<PathBuf> = vec![object];
            inputs.extend(common::core_rlibs(target));
            let image = dir.join(program);
            common::link_ok(target, &inputs, &image, dead_strip);
            common::check_with_llvm(&image);
            let (status, stdout, stderr) = common::run(&image);
            assert_eq!(
                (status, stdout.as_str()),
                (Some(0), expected),
                "{program} for {target} at -O{opt}: xnurun said {stderr}"
            );
        }
    }
}

#[test]
fn static_mut_counter() {
    check("counter", COUNTER, "3 7 12 18 7\nthird second first \n");
}

#[test]
fn table_of_messages() {
    check("messages", MESSAGES, "three\ntwo\none\nzero\nten 10\ntwenty 20\nthirty 30\n");
}

#[test]
fn core_fmt_numbers() {
    check("fmt", FMT, "12345 beef -7    ab|2.50\n");
}

/// Without -dead_strip every loaded archive member is kept whole: far more
/// of core and compiler_builtins, including the constant pools that
/// i386 code reaches at the start of a `__const` section.
#[test]
fn core_fmt_without_dead_strip() {
    check_with("fmt", FMT, "12345 beef -7    ab|2.50\n", &["2"], false);
}

#[test]
fn jump_tables() {
    check("jump", JUMP, &jump_expected());
}
