//! Prints numbers with `core::fmt`: formatting tables and vtables are data
//! with pointers in them, a counter lives in writable memory, and on XNU
//! x86 the code reaches them through the GOT: what a static image needs
//! `__DATA` for (machlink lays it out; see README).
//!
//! ```text
//! cargo run --release --example fmt --target x86_64-apple-darwin
//! ```
#![no_std]
#![no_main]

mod sys;

use core::fmt::Write;

/// Collects formatted text and writes it out whole.
struct Out {
    buf: [u8; 512],
    len: usize,
}

impl Write for Out {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Writable data: the count of lines printed, bumped through a pointer the
/// optimizer cannot see through.
static mut LINES: u32 = 0;

static NAMES: [&str; 3] = ["zero", "one", "two"];

fn next_line() -> u32 {
    // SAFETY: one thread; the address is only read and written here.
    unsafe {
        let p = core::ptr::addr_of_mut!(LINES);
        let n = core::ptr::read_volatile(p) + 1;
        core::ptr::write_volatile(p, n);
        n
    }
}

pub fn main(_: &sys::Start) -> i32 {
    let mut out = Out { buf: [0; 512], len: 0 };
    let n: u32 = core::hint::black_box(48879);
    let r = writeln!(out, "{} {n} = {n:#x} = {n:#o} = {n:#b}", sys::CONVENTION)
        .and_then(|_| writeln!(out, "line {}: {:?} {:>6}|{:<6}|", next_line(), [1u8, 2, 3], -42i64, NAMES[core::hint::black_box(2)]))
        .and_then(|_| writeln!(out, "line {}: {:e}", next_line(), core::hint::black_box(1234567u64)));
    if r.is_err() {
        return 1;
    }
    if sys::write_all(1, &out.buf[..out.len]).is_err() { 1 } else { 0 }
}
