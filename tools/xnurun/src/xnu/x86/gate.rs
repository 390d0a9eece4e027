//! The ways into XNU's x86 kernel, and what XNU does with each, by the
//! task's bitness (osfmk/x86_64/idt64.s). The CPU decides what an
//! instruction *is* from the mode it runs in; XNU then decides, from the
//! task, whether that entry is allowed.

use super::i386;
use crate::xnu::Arch;
use iced_x86::{Code, Decoder, DecoderOptions, FlowControl, Register};

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

/// Decodes the instruction at the start of `code` as the CPU would in
/// `mode` (iced-x86): prefixes as the mode reads them (REX only in 64-bit
/// mode; in 32-bit mode 0x40-0x4f are `inc`/`dec`), and an instruction the
/// CPU refuses (LOCK where it is not allowed, more than 15 bytes) is
/// `Other`: the CPU faults on it instead of entering the kernel.
pub fn decode(mode: Mode, code: &[u8]) -> Insn {
    plain(code).unwrap_or_else(|| by_iced(mode, code))
}

/// The unprefixed gates every ordinary program uses, answered without
/// iced: its first decode builds its tables, about 600 µs of a hello's run
/// (bench/history.md). `plain_gates_are_what_iced_decodes` holds these to
/// iced's answers in both modes.
fn plain(code: &[u8]) -> Option<Insn> {
    match code {
        [0x0f, 0x05, ..] => Some(Insn::Syscall(2)),
        [0x0f, 0x34, ..] => Some(Insn::Sysenter(2)),
        [0xcd, n, ..] => Some(Insn::Int(*n, 2)),
        _ => None,
    }
}

fn by_iced(mode: Mode, code: &[u8]) -> Insn {
    let bitness = match mode {
        Mode::Long => 64,
        Mode::Compat => 32,
    };
    let i = Decoder::new(bitness, code, DecoderOptions::NONE).decode();
    let len = i.len() as u64;
    match i.code() {
        Code::Syscall => Insn::Syscall(len),
        Code::Sysenter => Insn::Sysenter(len),
        Code::Int_imm8 => Insn::Int(i.immediate8(), len),
        _ => Insn::Other,
    }
}

/// What ends a run of straight-line code that an emulator reported as a
/// `sysenter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sysenter {
    /// A `sysenter` the CPU runs: its address and length.
    At(u64, u64),
    /// One the CPU refuses (QEMU is more lenient): its address and the
    /// exception, #UD under a LOCK, #GP past 15 bytes.
    Refused(u64, u8),
    /// Neither: the run reaches no `sysenter`.
    Missing,
}

/// Finds the `sysenter` that ends a run of straight-line code starting at
/// `start` (`code` are the bytes there).
pub fn find_sysenter(mode: Mode, start: u64, code: &[u8]) -> Sysenter {
    if let Some((at, len)) = find(mode, start, code, |i| i.code() == Code::Sysenter) {
        return Sysenter::At(at, len);
    }
    match find_refused_gate(mode, start, code) {
        Some((at, vector)) if matches!(gate_after_prefixes(mode, &code[(at - start) as usize..]), Some((_, [0x0f, 0x34]))) => {
            Sysenter::Refused(at, vector)
        }
        _ => Sysenter::Missing,
    }
}

/// The first instruction the CPU refuses in a run of straight-line code
/// starting at `start`, if it is a kernel entry under prefixes the CPU
/// will not take (QEMU takes them): its address and exception.
pub fn find_refused_gate(mode: Mode, start: u64, code: &[u8]) -> Option<(u64, u8)> {
    let (at, _) = find(mode, start, code, |i| i.code() == Code::INVALID)?;
    Some((at, refused_gate(mode, &code[(at - start) as usize..])?))
}

/// The exception for the instruction at the start of `code` when it is
/// `syscall`, `sysenter` or `int n` under prefixes the CPU refuses: #UD
/// under a LOCK (LOCK stands only before an instruction that writes
/// memory), #GP past 15 bytes. `None` for anything else.
pub fn refused_gate(mode: Mode, code: &[u8]) -> Option<u8> {
    use super::exception::{GENERAL_PROTECTION, INVALID_OPCODE};
    let (prefixes, _) = gate_after_prefixes(mode, code)?;
    if by_iced(mode, code) != Insn::Other {
        return None;
    }
    if prefixes + 2 > 15 {
        Some(GENERAL_PROTECTION)
    } else if code[..prefixes].contains(&0xf0) {
        Some(INVALID_OPCODE)
    } else {
        None
    }
}

/// How many prefix bytes start `code` (REX only in 64-bit mode, where
/// 0x40-0x4f are not `inc`/`dec`), and the gate's two bytes after them.
fn gate_after_prefixes(mode: Mode, code: &[u8]) -> Option<(usize, [u8; 2])> {
    let prefix = |b: &&u8| match b {
        0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x66 | 0x67 | 0xf0 | 0xf2 | 0xf3 => true,
        0x40..=0x4f => mode == Mode::Long,
        _ => false,
    };
    let n = code.iter().take_while(prefix).count();
    match code.get(n..n + 2)? {
        [0x0f, 0x05] | [0x0f, 0x34] => Some((n, [code[n], code[n + 1]])),
        [0xcd, v] => Some((n, [0xcd, *v])),
        _ => None,
    }
}

/// Where the first port I/O instruction (`in`, `out`, `ins`, `outs`) is in
/// a run of straight-line code starting at `start`.
pub fn find_port_io(mode: Mode, start: u64, code: &[u8]) -> Option<(u64, u64)> {
    use iced_x86::Mnemonic::*;
    find(mode, start, code, |i| matches!(i.mnemonic(), In | Out | Insb | Insw | Insd | Outsb | Outsw | Outsd))
}

/// The first instruction `wanted` takes, decoding from `start` as long as
/// the code runs straight on.
fn find(mode: Mode, start: u64, code: &[u8], wanted: impl Fn(&iced_x86::Instruction) -> bool) -> Option<(u64, u64)> {
    let bitness = match mode {
        Mode::Long => 64,
        Mode::Compat => 32,
    };
    let mut d = Decoder::with_ip(bitness, code, start, DecoderOptions::NONE);
    while d.can_decode() {
        let i = d.decode();
        if wanted(&i) {
            return Some((i.ip(), i.len() as u64));
        }
        if i.code() == Code::INVALID || i.flow_control() != FlowControl::Next {
            return None;
        }
    }
    None
}

/// Which fault the 64-bit instruction in `code` at `ip` takes for a
/// non-canonical address (`regs` gives a 64-bit register's value): #SS
/// when it reaches memory through the stack (a push, pop, call or return,
/// or a base of RSP or RBP), #GP otherwise. `None` when every address it
/// forms is canonical, or cannot be told.
pub fn non_canonical(code: &[u8], ip: u64, regs: impl Fn(Register) -> Option<u64>) -> Option<u8> {
    use super::exception::{GENERAL_PROTECTION, STACK_FAULT};
    let canonical = |a: u64| (a as i64) >> 47 == 0 || (a as i64) >> 47 == -1;
    let i = Decoder::with_ip(64, code, ip, DecoderOptions::NONE).decode();
    if i.code() == Code::INVALID {
        return None;
    }
    if i.stack_pointer_increment() != 0 {
        let rsp = regs(Register::RSP)?;
        let inc = i.stack_pointer_increment() as i64;
        let at = if inc < 0 { rsp.wrapping_add(inc as u64) } else { rsp };
        if !canonical(at) || !canonical(rsp) {
            return Some(STACK_FAULT);
        }
    }
    for op in 0..i.op_count() {
        if i.op_kind(op) != iced_x86::OpKind::Memory {
            continue;
        }
        let at = i.virtual_address(op, 0, |r, _, _| regs(r))?;
        if !canonical(at) {
            return Some(if matches!(i.memory_base(), Register::RSP | Register::RBP) { STACK_FAULT } else { GENERAL_PROTECTION });
        }
    }
    None
}

/// Where a descriptor-table store (`sgdt`, `sidt`, `smsw`, `sldt`, `str`)
/// puts its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableStore {
    /// `len` bytes at this address.
    Memory(u64, u64),
    /// A general register, whole.
    Register(Register),
}

/// The descriptor-table store at the start of `code`, if it is one, with
/// its length: XNU never sets CR4.UMIP, so user code may run these (they
/// are #GP where Linux sets it and does not emulate them). `regs` gives a
/// register's value, for the address.
pub fn table_store(mode: Mode, code: &[u8], ip: u64, regs: impl Fn(Register) -> Option<u64>) -> Option<(TableStore, u64)> {
    use iced_x86::Mnemonic::{Sgdt, Sidt, Sldt, Smsw, Str};
    let bitness = match mode {
        Mode::Long => 64,
        Mode::Compat => 32,
    };
    let i = Decoder::with_ip(bitness, code, ip, DecoderOptions::NONE).decode();
    let size = match i.mnemonic() {
        // A 16-bit limit and a base of the mode's width.
        Sgdt | Sidt => 2 + u64::from(bitness) / 8,
        Smsw | Sldt | Str => 2,
        _ => return None,
    };
    let dest = match i.op0_kind() {
        iced_x86::OpKind::Register => TableStore::Register(i.op0_register().full_register()),
        iced_x86::OpKind::Memory => TableStore::Memory(i.virtual_address(0, 0, |r, _, _| regs(r))?, size),
        _ => return None,
    };
    Some((dest, i.len() as u64))
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
        (Arch::I386, Gate::Int(0x81)) => Handling::I386(i386::Gate::Int81),
        (Arch::I386, Gate::Int(_)) => Handling::I386(i386::Gate::Int82),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_gates_are_what_iced_decodes() {
        let mut codes = vec![[0x0f, 0x05, 0x90], [0x0f, 0x34, 0x90]];
        codes.extend((0..=255).map(|n| [0xcd, n, 0x90]));
        for mode in [Mode::Long, Mode::Compat] {
            for code in &codes {
                assert_eq!(plain(code), Some(by_iced(mode, code)), "{mode:?} {code:02x?}");
            }
        }
        assert_eq!(plain(&[0xf0, 0xcd, 0x80]), None, "a prefix goes to iced");
    }

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
        assert_eq!(decode(Mode::Compat, &[0xf0, 0x0f, 0x34]), Insn::Other, "lock sysenter is #UD");
        let mut long = vec![0x66; 14];
        long.extend_from_slice(&[0x0f, 0x34]);
        assert_eq!(decode(Mode::Compat, &long), Insn::Other, "16 bytes: #GP");
        assert_eq!(decode(Mode::Compat, &[0xcd]), Insn::Other, "cut short");
        // inc eax; mov ecx, 5; sysenter
        assert_eq!(find_sysenter(Mode::Compat, 0x1000, &[0x40, 0xb9, 5, 0, 0, 0, 0x0f, 0x34]), Sysenter::At(0x1006, 2));
        assert_eq!(find_sysenter(Mode::Compat, 0x1000, &[0xeb, 0x00, 0x0f, 0x34]), Sysenter::Missing, "a jump ends the run");
        assert_eq!(find_sysenter(Mode::Compat, 0x1000, &[0x40, 0xf0, 0x0f, 0x34]), Sysenter::Refused(0x1001, 6));
        assert_eq!(find_sysenter(Mode::Compat, 0x1000, &long), Sysenter::Refused(0x1000, 13));
        assert_eq!(find_sysenter(Mode::Compat, 0x1000, &[0x40, 0xf0, 0xcd, 0x80]), Sysenter::Missing, "a refused int is no sysenter");
    }

    #[test]
    fn gates_under_a_lock_or_too_long_are_refused() {
        for mode in [Mode::Long, Mode::Compat] {
            assert_eq!(refused_gate(mode, &[0xf0, 0xcd, 0x80]), Some(6), "{mode:?}");
            assert_eq!(refused_gate(mode, &[0x66, 0xf0, 0xcd, 0x04]), Some(6), "{mode:?}");
            assert_eq!(refused_gate(mode, &[0xf0, 0x0f, 0x05]), Some(6), "{mode:?}");
            assert_eq!(refused_gate(mode, &[0xcd, 0x80]), None, "{mode:?}: the CPU takes it");
            assert_eq!(refused_gate(mode, &[0x66, 0xcd, 0x80]), None, "{mode:?}");
            assert_eq!(refused_gate(mode, &[0xf0, 0x01, 0x08]), None, "{mode:?}: lock add, no gate");
            assert_eq!(refused_gate(mode, &[0xf0, 0xcd]), None, "{mode:?}: cut short");
            let mut long = vec![0x66; 14];
            long.extend_from_slice(&[0xcd, 0x80]);
            assert_eq!(refused_gate(mode, &long), Some(13), "{mode:?}: 16 bytes");
        }
        assert_eq!(refused_gate(Mode::Long, &[0xf0, 0x48, 0xcd, 0x80]), Some(6), "REX between LOCK and the opcode");
        assert_eq!(refused_gate(Mode::Compat, &[0xf0, 0x48, 0xcd, 0x80]), None, "0x48 is dec eax in 32-bit mode");
        // mov al, 0xf0; lock int 0x80 — and mov al, 0xf0; int 0x80.
        assert_eq!(find_refused_gate(Mode::Compat, 0x1000, &[0xb0, 0xf0, 0xf0, 0xcd, 0x80]), Some((0x1002, 6)));
        assert_eq!(find_refused_gate(Mode::Compat, 0x1000, &[0xb0, 0xf0, 0xcd, 0x80]), None);
    }

    #[test]
    fn the_task_decides_which_entries_are_allowed() {
        assert_eq!(handling(Arch::I386, Gate::Syscall64), Handling::X86_64);
        assert!(matches!(handling(Arch::X86_64, Gate::Int(0x80)), Handling::Sigill(_)));
        assert!(matches!(handling(Arch::X86_64, Gate::Sysenter), Handling::Sigill(_)));
        assert!(matches!(handling(Arch::I386, Gate::SyscallCompat), Handling::Sigill(_)));
        assert_eq!(handling(Arch::I386, Gate::Int(0x80)), Handling::I386(i386::Gate::Int80));
        assert_eq!(handling(Arch::I386, Gate::Int(0x81)), Handling::I386(i386::Gate::Int81));
    }
}
