//! What XNU does with an x86 CPU exception raised in user mode: `user_trap`
//! (osfmk/i386/trap.c) turns each vector into a Mach exception, and
//! `ux_exception` / `machine_exception` (bsd/uxkern/ux_exception.c,
//! bsd/dev/i386/unix_signal.c) turn that into the signal the process dies
//! of. Both CPU backends name the vector they saw and take the signal from
//! here.

use crate::xnu::end::Death;
use crate::xnu::signal;

pub const DIVIDE_ERROR: u8 = 0;
pub const DEBUG: u8 = 1;
pub const BREAKPOINT: u8 = 3;
pub const OVERFLOW: u8 = 4;
pub const BOUND: u8 = 5;
pub const INVALID_OPCODE: u8 = 6;
pub const STACK_FAULT: u8 = 12;
pub const GENERAL_PROTECTION: u8 = 13;
pub const FPU_ERROR: u8 = 16;
pub const SIMD_ERROR: u8 = 19;
/// `int 0x7f`, dtrace's fasttrap return: T_DTRACE_RET.
pub const DTRACE_RET: u8 = 0x7f;

/// The signal for `vector`, and the words the report gives it.
pub fn death(vector: u8) -> Death {
    let (sig, why) = match vector {
        DIVIDE_ERROR => (signal::SIGFPE, "divide error"),
        // T_DEBUG and T_INT3: EXC_BREAKPOINT.
        DEBUG | BREAKPOINT => (signal::SIGTRAP, "breakpoint trap"),
        // T_OVERFLOW: EXC_ARITHMETIC.
        OVERFLOW => (signal::SIGFPE, "into with OF set"),
        // T_OUT_OF_BOUNDS: EXC_SOFTWARE / EXC_I386_BOUND.
        BOUND => (signal::SIGTRAP, "bound range exceeded"),
        INVALID_OPCODE => (signal::SIGILL, "invalid opcode"),
        // T_STACK_FAULT: EXC_BAD_INSTRUCTION / EXC_I386_STKFLT.
        STACK_FAULT => (signal::SIGILL, "stack fault"),
        // T_DTRACE_RET outside a dtrace probe: EXC_BAD_INSTRUCTION.
        DTRACE_RET => (signal::SIGILL, "int 0x7f, dtrace's return trap"),
        GENERAL_PROTECTION => (signal::SIGSEGV, "general protection"),
        FPU_ERROR | SIMD_ERROR => (signal::SIGFPE, "floating-point exception"),
        _ => (signal::SIGSEGV, "CPU exception"),
    };
    Death::new(sig, why)
}

/// What `int n` does in user mode. XNU's IDT (osfmk/x86_64/idt_table.h,
/// the same in xnu-4903 and xnu-11417) gives user code (`USER_TRAP`, DPL 3)
/// the breakpoint, overflow and bound traps, dtrace's return trap 0x7f and
/// the system-call gates 0x80-0x82; any other vector, 0x83 included, is #GP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoftwareInt {
    /// One of the gates 0x80-0x82: a kernel entry.
    Gate(u8),
    /// A trap with this vector, reported after the instruction.
    Trap(u8),
    /// #GP, reported on the instruction.
    GeneralProtection,
}

pub fn software_int(n: u8) -> SoftwareInt {
    match n {
        0x80..=0x82 => SoftwareInt::Gate(n),
        BREAKPOINT | OVERFLOW | BOUND | DTRACE_RET => SoftwareInt::Trap(n),
        _ => SoftwareInt::GeneralProtection,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_gates_and_vectors() {
        assert_eq!(software_int(0x80), SoftwareInt::Gate(0x80));
        assert_eq!(software_int(3), SoftwareInt::Trap(3));
        assert_eq!(software_int(0x21), SoftwareInt::GeneralProtection);
        assert_eq!(software_int(0x83), SoftwareInt::GeneralProtection, "not in idt_table.h");
        assert_eq!(software_int(5), SoftwareInt::Trap(5));
        assert_eq!(death(DTRACE_RET).sig, signal::SIGILL);
        assert_eq!(death(STACK_FAULT).sig, signal::SIGILL);
        assert_eq!(death(OVERFLOW).sig, signal::SIGFPE);
        assert_eq!(death(BOUND).sig, signal::SIGTRAP);
        assert_eq!(death(INVALID_OPCODE).sig, signal::SIGILL);
        assert_eq!(death(GENERAL_PROTECTION).sig, signal::SIGSEGV);
    }
}
