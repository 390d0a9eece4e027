//! `--trace` output: register lines and strace-like call lines, on stderr.
//!
//! Format, one system call at a time:
//! - registers as the guest holds them when it executes the trap
//!   instruction (so RIP/EIP is the instruction's address), in the order of
//!   the classic `thread_get_state` demo, hex without padding:
//!   `RIP 0x… RAX 0x… RCX 0x… RDX 0x… RSP 0x… RDI 0x… RSI 0x… R8 0x… R9 0x…
//!   R10 0x… R11 0x…`, `EIP 0x… EAX 0x… ECX 0x… EDX 0x… ESP 0x… EBX 0x…
//!   ESI 0x… EDI 0x…` or `PC … X16 … X0 … X7 … SP … LR … CPSR …`;
//! - for an i386 BSD call, the stack words `unix_syscall` reads its
//!   arguments from: `STACK 0xbfffff78: 0x11bc | 0x1 0x11bc 0xe`, the word
//!   at the user stack pointer (ECX after `sysenter`, ESP after `int 0x80`)
//!   that it skips, then those it copies in (`i386::stack_line`);
//! - the call: `write(1, "Hello, world!\n", 14) = 14`,
//!   `write(1, "…", 14) = -1 ENOSPC (No space left on device)`,
//!   `write(1, "…", 14) = ? ERESTART (restarted)`, `exit(0)`;
//! - the registers the thread resumes with, after `->`: where, the return
//!   registers, what the kernel overwrote, the carry (each convention's
//!   `after_line`);
//! - at the end `+++ exited with 0 +++`, or `+++ killed by SIGSYS +++`.
//!
//! Strings are escaped as strace does (`\n`, `\t`, `\"`, octal for other
//! unprintable bytes) and cut after 32 bytes with `...`.

use super::{errno, signal};
use std::io::Write;

/// strace's default `-s`.
pub const STRING_LIMIT: usize = 32;

pub fn escape(bytes: &[u8], full_len: u64) -> String {
    let mut s = String::from("\"");
    let shown = &bytes[..bytes.len().min(STRING_LIMIT)];
    for (i, &b) in shown.iter().enumerate() {
        match b {
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\r' => s.push_str("\\r"),
            0x0b => s.push_str("\\v"),
            0x0c => s.push_str("\\f"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                // strace pads the octal to 3 digits only when a digit follows.
                let next_digit = shown.get(i + 1).is_some_and(|c| (b'0'..=b'7').contains(c));
                if next_digit {
                    s.push_str(&format!("\\{b:03o}"));
                } else {
                    s.push_str(&format!("\\{b:o}"));
                }
            }
        }
    }
    s.push('"');
    if full_len > shown.len() as u64 {
        s.push_str("...");
    }
    s
}

pub fn result_ok(v: u64) -> String {
    format!("= {v}")
}

pub fn result_err(errno: i32) -> String {
    let (name, text) = errno::name(errno);
    format!("= -1 {name} ({text})")
}

pub const RESULT_RESTART: &str = "= ? ERESTART (restarted)";

pub fn killed(sig: i32) -> String {
    format!("+++ killed by {} +++", signal::name(sig))
}

/// Reports the guest's death by XNU signal `sig` (the `+++ killed +++`
/// line when tracing, then xnurun's own line). `pc` is `rip`, `eip` or
/// `pc`; `code`, the instruction bytes, may be empty.
pub fn death(tracing: bool, sig: i32, pc: (&str, u64), detail: Option<&str>, why: &str, code: &[u8]) {
    if tracing {
        line(&killed(sig));
    }
    let mut msg = format!("xnurun: guest killed by {} ({sig}) at {} 0x{:x}", signal::name(sig), pc.0, pc.1);
    if let Some(d) = detail {
        msg.push_str(&format!(", {d}"));
    }
    if !why.is_empty() {
        msg.push_str(&format!(" ({why})"));
    }
    if !code.is_empty() {
        let bytes: Vec<String> = code[..code.len().min(15)].iter().map(|b| format!("{b:02x}")).collect();
        msg.push_str(&format!(", instruction bytes: {}", bytes.join(" ")));
    }
    line(&msg);
}

/// Writes one line to stderr; a failing stderr must not stop the guest.
pub fn line(s: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{s}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_strace() {
        assert_eq!(escape(b"Hello, world!\n", 14), "\"Hello, world!\\n\"");
        assert_eq!(escape(b"a\0b", 3), "\"a\\0b\"");
        assert_eq!(escape(b"\x001", 2), "\"\\0001\"");
        assert_eq!(escape(b"\"\\\t", 3), "\"\\\"\\\\\\t\"");
        assert_eq!(escape(b"\r\x0b\x0c", 3), "\"\\r\\v\\f\"");
        assert_eq!(escape(&[b'x'; 40], 40), format!("\"{}\"...", "x".repeat(32)));
        assert_eq!(result_err(28), "= -1 ENOSPC (No space left on device)");
    }
}
