//! Reads its own registers, the way each kernel offers. Linux: from a
//! tracer, as a debugger does (a child stops itself under PTRACE_TRACEME
//! and its parent reads it with ptrace). XNU, which has no
//! PTRACE_GETREGS: `thread_get_state` on the thread's own port, a Mach
//! message to the kernel sent through a Mach trap, the other half of XNU's
//! system-call interface. One register a line, in the convention's own
//! names, then where the values came from.
//!
//! ```text
//! cargo run --release --example regs --target x86_64-apple-darwin
//! ```
#![no_std]
#![no_main]

mod sys;

#[cfg_attr(target_os = "linux", path = "regs/ptrace.rs")]
#[cfg_attr(target_os = "macos", path = "regs/mach.rs")]
mod way;

/// Why reading failed: the call, and its error (an errno on Linux, a
/// kern_return_t or mach_msg_return_t on XNU, shown in hex there).
pub struct Failure {
    pub call: &'static [u8],
    pub code: u64,
    pub hint: &'static [u8],
}

fn hex(v: u64, digits: usize, buf: &mut [u8; 18]) -> &[u8] {
    buf[..2].copy_from_slice(b"0x");
    for i in 0..digits {
        let d = (v >> (4 * (digits - 1 - i))) & 0xf;
        buf[2 + i] = b"0123456789abcdef"[d as usize];
    }
    &buf[..2 + digits]
}

fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

fn line(fd: i32, parts: &[&[u8]]) -> Result<(), i32> {
    for p in parts {
        sys::write_all(fd, p)?;
    }
    sys::write_all(fd, b"\n")
}

fn print(values: &[u64]) -> Result<(), i32> {
    for (name, v) in way::NAMES.iter().zip(values) {
        line(1, &[name.as_bytes(), b" ", hex(*v, way::DIGITS, &mut [0; 18])])?;
    }
    line(1, &[way::FROM])
}

pub fn main(start: &sys::Start) -> i32 {
    #[cfg(target_os = "macos")]
    if let Err(f) = way::options(start) {
        let _ = line(2, &[b"regs: ", f.call, f.hint]);
        return 2;
    }
    #[cfg(not(target_os = "macos"))]
    let _ = start;
    let mut values = [0u64; way::NAMES.len()];
    match way::read(&mut values) {
        Ok(()) => {
            if print(&values).is_ok() { 0 } else { 1 }
        }
        Err(f) => {
            let (mut h, mut d) = ([0; 18], [0; 20]);
            let code = if way::HEX_ERRORS { hex(f.code, 8, &mut h) } else { decimal(f.code, &mut d) };
            let _ = line(2, &[b"regs: ", f.call, b" failed: ", code, f.hint]);
            1
        }
    }
}
