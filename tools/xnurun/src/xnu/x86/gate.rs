//! The ways into XNU's x86 kernel, and what XNU does with each, by the
//! task's bitness (osfmk/x86_64/idt64.s). The CPU decides what an
//! instruction *is* from the mode it runs in; XNU then decides, from the
//! task, whether that entry is allowed.

use super::i386;
use crate::xnu::Arch;

/// The CPU mode a stop happened in, from the code selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Long,
    Compat,
}

/// The instruction at a stop, as far as kernel entry goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insn {
    Syscall(u64),
    Sysenter(u64),
    Int(u8, u64),
    Other,
}

/// Decodes the instruction at the start of `code` in `mode`: legacy
/// prefixes in both modes, REX prefixes only in 64-bit mode (in 32-bit
/// mode 0x40-0x4f are `inc`/`dec`, whole instructions).
pub fn decode(mode: Mode, code: &[u8]) -> Insn {
    let mut i = 0;
    while let Some(&b) = code.get(i) {
        let prefix = matches!(b, 0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x66 | 0x67 | 0xf0 | 0xf2 | 0xf3)
            || (mode == Mode::Long && (0x40..=0x4f).contains(&b));
        if !prefix || i >= 14 {
            break;
        }
        i += 1;
    }
    let len = |n: usize| (i + n) as u64;
    match (code.get(i), code.get(i + 1)) {
        (Some(0x0f), Some(0x05)) => Insn::Syscall(len(2)),
        (Some(0x0f), Some(0x34)) => Insn::Sysenter(len(2)),
        (Some(0xcd), Some(&n)) => Insn::Int(n, len(2)),
        _ => Insn::Other,
    }
}

/// A kernel entry the guest made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// `syscall` in 64-bit mode.
    Syscall64,
    /// `syscall` in 32-bit mode.
    SyscallCompat,
    Sysenter,
    /// `int n` with n in 0x80..=0x82, XNU's system-call gates (idt_table.h).
    Int(u8),
}

/// What XNU does with a gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handling {
    /// `unix_syscall64` and the classes of `hndl_syscall`.
    X86_64,
    /// `unix_syscall` through this gate.
    I386(i386::Gate),
    /// The guest dies of SIGILL: why.
    Sigill(&'static str),
    /// A real XNU entry xnurun does not implement: what it is.
    Unimplemented(&'static str),
}

pub fn handling(task: Arch, gate: Gate) -> Handling {
    match (task, gate) {
        // idt64_syscall: `syscall` is dispatched as a 64-bit call
        // (L_64bit_enter: "this can only be a 64-bit task").
        (_, Gate::Syscall64) => Handling::X86_64,
        // Intel CPUs, the only x86 CPUs XNU supports, raise #UD for
        // `syscall` outside 64-bit mode: T_INVALID_OPCODE, SIGILL.
        (_, Gate::SyscallCompat) => Handling::Sigill("syscall in 32-bit mode is #UD on Intel"),
        // The 32-bit entries check the task first (L_32bit_entry_check,
        // L_u64bit_entry_check): a 64-bit task goes to
        // L_64bit_entry_reject, which raises T_INVALID_OPCODE.
        (Arch::X86_64 | Arch::Arm64, Gate::Sysenter | Gate::Int(_)) => {
            Handling::Sigill("a 32-bit kernel entry from a 64-bit task (L_64bit_entry_reject, osfmk/x86_64/idt64.s)")
        }
        (Arch::I386, Gate::Sysenter) => Handling::I386(i386::Gate::Sysenter),
        (Arch::I386, Gate::Int(0x80)) => Handling::I386(i386::Gate::Int80),
        (Arch::I386, Gate::Int(0x81)) => Handling::Unimplemented("int 0x81 (the Mach trap gate)"),
        (Arch::I386, Gate::Int(_)) => Handling::Unimplemented("int 0x82 (the machine-dependent call gate)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_by_mode() {
        assert_eq!(decode(Mode::Long, &[0x0f, 0x05]), Insn::Syscall(2));
        assert_eq!(decode(Mode::Long, &[0x48, 0x0f, 0x05]), Insn::Syscall(3));
        assert_eq!(decode(Mode::Compat, &[0x48, 0x0f, 0x05]), Insn::Other, "0x48 is dec eax in 32-bit mode");
        assert_eq!(decode(Mode::Compat, &[0x0f, 0x34]), Insn::Sysenter(2));
        assert_eq!(decode(Mode::Compat, &[0xcd, 0x80]), Insn::Int(0x80, 2));
        assert_eq!(decode(Mode::Compat, &[0x66, 0xcd, 0x81]), Insn::Int(0x81, 3));
        assert_eq!(decode(Mode::Long, &[0x90, 0x0f, 0x05]), Insn::Other);
        assert_eq!(decode(Mode::Long, &[]), Insn::Other);
        assert_eq!(decode(Mode::Long, &[0x66; 16]), Insn::Other);
    }

    #[test]
    fn the_task_decides_which_entries_are_allowed() {
        assert_eq!(handling(Arch::I386, Gate::Syscall64), Handling::X86_64);
        assert!(matches!(handling(Arch::X86_64, Gate::Int(0x80)), Handling::Sigill(_)));
        assert!(matches!(handling(Arch::X86_64, Gate::Sysenter), Handling::Sigill(_)));
        assert!(matches!(handling(Arch::I386, Gate::SyscallCompat), Handling::Sigill(_)));
        assert_eq!(handling(Arch::I386, Gate::Int(0x80)), Handling::I386(i386::Gate::Int80));
        assert!(matches!(handling(Arch::I386, Gate::Int(0x82)), Handling::Unimplemented(_)));
    }
}
