//! The kernel side of XNU's x86_64 `syscall` convention.
//!
//! - `hi64_syscall` (osfmk/x86_64/idt64.s) keeps only the low 32 bits of
//!   `rax`; `hndl_syscall` dispatches on the class in bits 24-31
//!   (osfmk/mach/i386/syscall_sw.h): 1 Mach, 2 BSD (`unix_syscall64`),
//!   3 machine-dependent, 4 diagnostics; any other class, 0 included, is
//!   `i386_exception(EXC_SYSCALL)`, which `ux_exception`
//!   (bsd/uxkern/ux_exception.c) turns into SIGSYS.
//! - `unix_syscall64` (bsd/dev/i386/systemcalls.c): arguments in `rdi rsi rdx
//!   r10 r8 r9`; number 0 is the indirect call, whose number is in `rdi` and
//!   whose arguments start at `rsi`. Success: CF clear, `rax` = first value,
//!   `rdx` = second (0 for an `ssize_t` call such as write). Error: CF set,
//!   `rax` = errno, `rdx` untouched. ERESTART: `pal_syscall_restart`
//!   (osfmk/i386/pal_routines.c) moves `rip` back 2 bytes, nothing else.
//! - The `syscall` instruction has put the return address in `rcx` and
//!   `rflags` in `r11`. XNU goes back through `L_sysret` (idt64.s), which
//!   loads `rcx` from the saved `rip` and `r11` from the saved `rflags`
//!   before `sysretq`: so the guest finds in them the *final* values, the
//!   rewound `rip` after a restart and the flags with the outcome's CF.

use super::state::X86State;
use crate::xnu::outcome::Outcome;

const CF: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Class 2: BSD call `code` (indirect call resolved) with its arguments.
    Bsd { code: u32, args: [u64; 6] },
    /// Class 1: Mach trap `number` (`mach_call_munger64`).
    Mach { number: u32 },
    /// Class 3: machine-dependent call `number` (`machdep_syscall64`).
    Machdep { number: u32 },
    /// Class 4: a diagnostics call, which xnurun does not implement.
    Diag { number: u32 },
    /// Any other class: EXC_SYSCALL, SIGSYS.
    ExcSyscall { class: u32 },
}

pub fn decode(r: &X86State) -> Entry {
    let eax = r.rax as u32;
    let class = eax >> 24;
    let number = eax & 0x00ff_ffff;
    match class {
        2 if number == 0 => Entry::Bsd { code: r.rdi as u32, args: [r.rsi, r.rdx, r.r10, r.r8, r.r9, 0] },
        2 => Entry::Bsd { code: number, args: [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9] },
        1 => Entry::Mach { number },
        3 => Entry::Machdep { number },
        4 => Entry::Diag { number },
        _ => Entry::ExcSyscall { class },
    }
}

/// Applies an outcome: `entry` are the registers at the `syscall`
/// instruction, `next` the address after it.
pub fn finish(entry: &X86State, next: u64, out: &Outcome) -> X86State {
    let mut r = *entry;
    r.rip = next;
    match *out {
        Outcome::Ok(v0, v1) => {
            r.rax = v0;
            r.rdx = v1;
            r.eflags &= !CF;
        }
        Outcome::Err(e) => {
            r.rax = e as u64;
            r.eflags |= CF;
        }
        Outcome::Restart => r.rip = next - 2,
        Outcome::Value(v) => r.rax = v,
        Outcome::Unchanged => {}
    }
    // L_sysret: `pop %rcx` (the saved rip), `pop %r11` (the saved rflags).
    r.rcx = r.rip;
    r.r11 = r.eflags;
    r
}

/// The trace's line at the trap: the number, every argument register
/// (`rdi rsi rdx r10 r8 r9`), and what `syscall` itself wrote (`rcx`,
/// `r11`).
pub fn regs_line(r: &X86State) -> String {
    format!(
        "RIP 0x{:x} RAX 0x{:x} RCX 0x{:x} RDX 0x{:x} RSP 0x{:x} RDI 0x{:x} RSI 0x{:x} R8 0x{:x} R9 0x{:x} R10 0x{:x} R11 0x{:x}",
        r.rip, r.rax, r.rcx, r.rdx, r.rsp, r.rdi, r.rsi, r.r8, r.r9, r.r10, r.r11
    )
}

/// The trace's line after the call: where the thread resumes, the return
/// registers, what the kernel overwrote (`rdx` on success; `rcx` and `r11`
/// as `L_sysret` reloads them) and the carry flag.
pub fn after_line(r: &X86State) -> String {
    format!("-> RIP 0x{:x} RAX 0x{:x} RDX 0x{:x} RCX 0x{:x} R11 0x{:x} CF {}", r.rip, r.rax, r.rdx, r.rcx, r.r11, r.eflags & CF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs() -> X86State {
        X86State::default()
    }

    #[test]
    fn classes() {
        let mut r = regs();
        r.rax = 0xdead_beef_0200_0004; // high half ignored
        r.rdi = 1;
        assert_eq!(decode(&r), Entry::Bsd { code: 4, args: [1, 0, 0, 0, 0, 0] });
        r.rax = 1;
        assert_eq!(decode(&r), Entry::ExcSyscall { class: 0 });
        r.rax = 0x100_001f;
        assert_eq!(decode(&r), Entry::Mach { number: 0x1f });
        r.rax = 0x300_0064;
        assert_eq!(decode(&r), Entry::Machdep { number: 100 });
        r.rax = 0x200_0000;
        r.rdi = 4;
        r.rsi = 7;
        assert_eq!(decode(&r), Entry::Bsd { code: 4, args: [7, 0, 0, 0, 0, 0] });
    }

    #[test]
    fn results() {
        let mut e = regs();
        e.rip = 0x1000;
        e.eflags = 0x203; // CF set on entry
        e.rdx = 14;
        let ok = finish(&e, 0x1002, &Outcome::Ok(14, 0));
        // r11 carries the final flags, CF cleared, as L_sysret pops them.
        assert_eq!((ok.rip, ok.rax, ok.rdx, ok.eflags & 1, ok.rcx, ok.r11), (0x1002, 14, 0, 0, 0x1002, 0x202));
        e.eflags = 0x202;
        let err = finish(&e, 0x1002, &Outcome::Err(28));
        assert_eq!((err.rax, err.rdx, err.eflags & 1, err.r11), (28, 14, 1, 0x203));
        let rs = finish(&e, 0x1002, &Outcome::Restart);
        assert_eq!((rs.rip, rs.rax, rs.rdx, rs.rcx), (0x1000, e.rax, 14, 0x1000));
    }
}
