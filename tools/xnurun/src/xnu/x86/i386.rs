//! The kernel side of XNU's i386 conventions, `sysenter` and `int 0x80`.
//!
//! - `idt64_sysenter` (osfmk/x86_64/idt64.s) records `ecx` as the user stack
//!   pointer and `edx` as the user `eip`; `hndl_sysenter` sends a negative
//!   `eax` to the Mach trap handler, anything else to `unix_syscall`.
//!   `int 0x80` (`idt64_unix_scall`) always goes to `unix_syscall`, with the
//!   real `esp` and the address after the instruction.
//! - `unix_syscall` (bsd/dev/i386/systemcalls.c): number = `eax & 0xFFFF`;
//!   arguments are copied in from the user stack pointer + 4; number 0 is
//!   the indirect call, whose number is the first of those words. CF is
//!   cleared first. Success: `eax` = first value, `edx` = second; error:
//!   CF set, `eax` = errno.
//! - Back through `sysexit` (`L_rtu_via_sysexit`): `eip` and `edx` both get
//!   the saved `eip` (the entry `edx`), `esp` and `ecx` the saved `uesp`
//!   (the entry `ecx`): the second return value is lost on this path.
//! - ERESTART: `pal_syscall_restart` moves the saved `eip` back 5 bytes
//!   after `sysenter` (the 5-byte `call` into libc's `__sysenter_trap`), so
//!   `eip` = `edx` = entry `edx` - 5; 2 bytes after `int 0x80`.

use super::state::X86State;
use crate::xnu::outcome::Outcome;

const CF: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Sysenter,
    /// `int 0x80`: `unix_syscall`.
    Int80,
    /// `int 0x81`: `mach_call_munger`.
    Int81,
    /// `int 0x82`: `machdep_syscall`.
    Int82,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// BSD call `code` with its arguments at `params` in guest memory.
    Bsd { code: u32, params: u64 },
    /// Negative `eax` through `sysenter`, or any through `int 0x81`: Mach
    /// trap `-eax` (`mach_call_munger`).
    MachTrap { number: i32 },
    /// Through `int 0x82`: machine-dependent call `eax`.
    Machdep { number: i32 },
}

/// Decodes the call; `read_u32` reads a guest word (for the indirect call).
pub fn decode(gate: Gate, r: &X86State, read_u32: impl Fn(u64) -> Option<u32>) -> Entry {
    let eax = r.rax as u32;
    match gate {
        Gate::Int81 => return Entry::MachTrap { number: (eax as i32).wrapping_neg() },
        Gate::Int82 => return Entry::Machdep { number: eax as i32 },
        Gate::Sysenter if (eax as i32) < 0 => return Entry::MachTrap { number: (eax as i32).wrapping_neg() },
        _ => {}
    }
    let params = user_sp(gate, r) + 4;
    let code = eax & 0xFFFF;
    if code == 0 {
        // fuword returns -1 on a fault, which lands on SYS_invalid.
        let real = read_u32(params).unwrap_or(u32::MAX);
        return Entry::Bsd { code: real, params: params + 4 };
    }
    Entry::Bsd { code, params }
}

/// The user stack pointer XNU saves as `uesp`: `ecx` through `sysenter`
/// (`idt64_sysenter`), `esp` through an `int`.
pub fn user_sp(gate: Gate, r: &X86State) -> u64 {
    u64::from(match gate {
        Gate::Sysenter => r.rcx as u32,
        _ => r.rsp as u32,
    })
}

/// Applies an outcome: `entry` are the registers at the instruction, `next`
/// the address after it.
pub fn finish(gate: Gate, entry: &X86State, next: u64, out: &Outcome) -> X86State {
    let mut r = *entry;
    if matches!(out, Outcome::Ok(..) | Outcome::Err(_) | Outcome::Restart) {
        // unix_syscall clears the carry before the call.
        r.eflags &= !CF;
    }
    let resume = match gate {
        Gate::Sysenter => entry.rdx & 0xffff_ffff,
        Gate::Int80 | Gate::Int81 | Gate::Int82 => next,
    };
    r.rip = resume;
    match *out {
        Outcome::Ok(v0, v1) => {
            r.rax = v0 & 0xffff_ffff;
            r.rdx = v1 & 0xffff_ffff;
        }
        Outcome::Err(e) => {
            r.rax = e as u32 as u64;
            r.eflags |= CF;
        }
        Outcome::Restart => {
            r.rip = match gate {
                Gate::Sysenter => resume.wrapping_sub(5) & 0xffff_ffff,
                Gate::Int80 | Gate::Int81 | Gate::Int82 => next - 2,
            };
        }
        Outcome::Value(v) => r.rax = v & 0xffff_ffff,
        Outcome::Unchanged => {}
    }
    if gate == Gate::Sysenter {
        r.rdx = r.rip;
        r.rsp = entry.rcx & 0xffff_ffff;
        r.rcx = r.rsp;
    }
    r
}

/// The trace's line after the call: where the thread resumes, the return
/// registers, the stack and resume registers the `sysexit` path sets
/// (`ecx`, `edx`, `esp`) and the carry flag.
pub fn after_line(r: &X86State) -> String {
    format!("-> EIP 0x{:x} EAX 0x{:x} EDX 0x{:x} ECX 0x{:x} ESP 0x{:x} CF {}", r.rip, r.rax, r.rdx, r.rcx, r.rsp, r.eflags & CF)
}

/// The trace's line of stack words for a BSD call, `words` of them from
/// `uesp` up: `STACK 0xbfffff78: 0x11bc | 0x1 0x11bc 0xe`. Left of `|`
/// the word at `uesp`, which `unix_syscall` skips (it copies in from
/// `params = regs->uesp + sizeof(int)`, bsd/dev/i386/systemcalls.c: a C
/// caller's return address would be there); right of it the words it
/// copies in, the indirect call's number first. `?` is a word that
/// cannot be read.
pub fn stack_line(uesp: u64, words: u64, read_u32: impl Fn(u64) -> Option<u32>) -> String {
    let word = |i: u64| read_u32(uesp + 4 * i).map_or("?".to_string(), |w| format!("0x{w:x}"));
    let copied: Vec<String> = (1..words).map(word).collect();
    format!("STACK 0x{uesp:x}: {} | {}", word(0), copied.join(" ")).trim_end().to_string()
}

pub fn regs_line(r: &X86State) -> String {
    format!(
        "EIP 0x{:x} EAX 0x{:x} ECX 0x{:x} EDX 0x{:x} ESP 0x{:x} EBX 0x{:x} ESI 0x{:x} EDI 0x{:x}",
        r.rip, r.rax, r.rcx, r.rdx, r.rsp, r.rbx, r.rsi, r.rdi
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs() -> X86State {
        X86State::default()
    }

    #[test]
    fn decodes_gates() {
        let mut r = regs();
        r.rax = 0x1_0004; // only the low 16 bits count
        r.rcx = 0xbfff_f000;
        r.rsp = 0xbfff_e000;
        assert_eq!(decode(Gate::Sysenter, &r, |_| None), Entry::Bsd { code: 4, params: 0xbfff_f004 });
        assert_eq!(decode(Gate::Int80, &r, |_| None), Entry::Bsd { code: 4, params: 0xbfff_e004 });
        r.rax = (-31i32) as u32 as u64;
        assert_eq!(decode(Gate::Sysenter, &r, |_| None), Entry::MachTrap { number: 31 });
        r.rax = 0;
        assert_eq!(decode(Gate::Int80, &r, |a| (a == 0xbfff_e004).then_some(1)), Entry::Bsd { code: 1, params: 0xbfff_e008 });
        assert_eq!(decode(Gate::Int80, &r, |_| None), Entry::Bsd { code: u32::MAX, params: 0xbfff_e008 });
    }

    #[test]
    fn stack_line_shows_the_skipped_word_then_the_copied_ones() {
        let mem = |a: u64| (0x1000..0x100c).contains(&a).then(|| a as u32 - 0x1000);
        assert_eq!(stack_line(0x1000, 4, mem), "STACK 0x1000: 0x0 | 0x4 0x8 ?");
        assert_eq!(stack_line(0xffc, 1, mem), "STACK 0xffc: ? |");
    }

    #[test]
    fn sysexit_and_iret() {
        let mut e = regs();
        e.rip = 0x1f00;
        e.rcx = 0xbfff_f000;
        e.rsp = 0xbfff_f000;
        e.rdx = 0x1f20;
        e.eflags = 0x203;
        let ok = finish(Gate::Sysenter, &e, 0x1f02, &Outcome::Ok(14, 0));
        assert_eq!((ok.rip, ok.rdx, ok.rsp, ok.rcx, ok.rax, ok.eflags & 1), (0x1f20, 0x1f20, 0xbfff_f000, 0xbfff_f000, 14, 0));
        let rs = finish(Gate::Sysenter, &e, 0x1f02, &Outcome::Restart);
        assert_eq!((rs.rip, rs.rdx, rs.rax, rs.eflags & 1), (0x1f1b, 0x1f1b, e.rax, 0));
        let i = finish(Gate::Int80, &e, 0x1f02, &Outcome::Ok(14, 0));
        assert_eq!((i.rip, i.rdx, i.rsp, i.rcx), (0x1f02, 0, 0xbfff_f000, 0xbfff_f000));
        let ie = finish(Gate::Int80, &e, 0x1f02, &Outcome::Err(9));
        assert_eq!((ie.rax, ie.rdx, ie.eflags & 1), (9, 0x1f20, 1));
        let ir = finish(Gate::Int80, &e, 0x1f02, &Outcome::Restart);
        assert_eq!(ir.rip, 0x1f00);
    }
}
