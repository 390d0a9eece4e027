//! The kernel side of XNU's arm64 convention, `svc #0x80`.
//!
//! - `handle_svc` (osfmk/arm64/sleh.c) ignores the immediate and takes the
//!   call from `x16` as an `int`: 0x80000000 is the platform call, another
//!   negative value a Mach trap, anything else goes to `unix_syscall`
//!   (bsd/dev/arm/systemcalls.c).
//! - `arm_get_syscall_number`: the BSD number is `(unsigned short)x16`, with
//!   no class bits; 0 is the indirect call, whose number is in `x0` and
//!   whose arguments then start at `x1`. `arm_get_u64_syscall_args` takes
//!   the arguments from `x0`-`x7`.
//! - `arm_prepare_u64_syscall_return`: on error `x0` = errno, `x1` = 0 and
//!   the carry flag (PSTATE.C) set; on success the carry clear, `x0` the
//!   first value and `x1` the second, which is 0 for `ssize_t` calls such as
//!   write. On ERESTART the saved pc moves back 4 bytes, onto the `svc`,
//!   and no register changes.

use crate::xnu::outcome::Outcome;

/// PSTATE.C, bit 29 of NZCV/CPSR.
pub const CARRY: u64 = 1 << 29;

/// The registers a call reads and writes, as `ARM_THREAD_STATE64` holds
/// them. `pc` is the address *after* the `svc`, where the CPU reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Regs {
    pub x: [u64; 31],
    pub sp: u64,
    pub pc: u64,
    pub cpsr: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// BSD call `code` (indirect call resolved) with its arguments.
    Bsd { code: u32, args: [u64; 6] },
    /// A Mach trap: `-x16`.
    MachTrap { number: i64 },
    /// `x16` = 0x80000000: `platform_syscall`.
    Platform,
}

pub fn decode(r: &Regs) -> Entry {
    let n = r.x[16] as i32;
    if n as u32 == 0x8000_0000 {
        return Entry::Platform;
    }
    if n < 0 {
        return Entry::MachTrap { number: -i64::from(n) };
    }
    let code = u32::from(r.x[16] as u16);
    if code == 0 {
        return Entry::Bsd { code: r.x[0] as u32, args: [r.x[1], r.x[2], r.x[3], r.x[4], r.x[5], r.x[6]] };
    }
    Entry::Bsd { code, args: [r.x[0], r.x[1], r.x[2], r.x[3], r.x[4], r.x[5]] }
}

/// Applies an outcome to the registers the `svc` left.
pub fn finish(entry: &Regs, out: &Outcome) -> Regs {
    let mut r = *entry;
    match *out {
        Outcome::Ok(v0, v1) => {
            r.x[0] = v0;
            r.x[1] = v1;
            r.cpsr &= !CARRY;
        }
        Outcome::Err(e) => {
            r.x[0] = e as u64;
            r.x[1] = 0;
            r.cpsr |= CARRY;
        }
        Outcome::Restart => r.pc = entry.pc.wrapping_sub(4),
        Outcome::Value(v) => r.x[0] = v,
        Outcome::Unchanged => {}
    }
    r
}

/// The trace's line after the call: where the thread resumes, `x0` and
/// `x1` (which `arm_prepare_u64_syscall_return` writes) and the carry.
pub fn after_line(r: &Regs) -> String {
    format!("-> PC 0x{:x} X0 0x{:x} X1 0x{:x} C {}", r.pc, r.x[0], r.x[1], u64::from(r.cpsr & CARRY != 0))
}

/// The `--trace` register line: PC (the `svc` itself), X16, X0-X7, SP, LR,
/// CPSR, in `ARM_THREAD_STATE64` order after the call number.
pub fn regs_line(r: &Regs) -> String {
    let mut s = format!("PC 0x{:x} X16 0x{:x}", r.pc.wrapping_sub(4), r.x[16]);
    for i in 0..8 {
        s.push_str(&format!(" X{i} 0x{:x}", r.x[i]));
    }
    s.push_str(&format!(" SP 0x{:x} LR 0x{:x} CPSR 0x{:x}", r.sp, r.x[30], r.cpsr));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_come_from_x16_alone() {
        let mut r = Regs::default();
        r.x[16] = 0xdead_0000_7fff_0004; // (int) positive, (unsigned short) 4
        r.x[0] = 1;
        assert_eq!(decode(&r), Entry::Bsd { code: 4, args: [1, 0, 0, 0, 0, 0] });
        r.x[16] = (-31i64) as u64;
        assert_eq!(decode(&r), Entry::MachTrap { number: 31 });
        r.x[16] = 0x8000_0000;
        assert_eq!(decode(&r), Entry::Platform);
        r.x[16] = 0;
        r.x[0] = 1;
        r.x[1] = 7;
        assert_eq!(decode(&r), Entry::Bsd { code: 1, args: [7, 0, 0, 0, 0, 0] });
    }

    #[test]
    fn x1_is_overwritten_and_restart_backs_up_one_instruction() {
        let mut x = [0u64; 31];
        x[1] = 0x5000; // a buffer pointer the caller hoped to keep
        let e = Regs { x, pc: 0x1004, cpsr: CARRY, ..Regs::default() };
        let ok = finish(&e, &Outcome::Ok(14, 0));
        assert_eq!((ok.x[0], ok.x[1], ok.cpsr & CARRY, ok.pc), (14, 0, 0, 0x1004));
        let err = finish(&e, &Outcome::Err(28));
        assert_eq!((err.x[0], err.x[1], err.cpsr & CARRY), (28, 0, CARRY));
        let rs = finish(&e, &Outcome::Restart);
        assert_eq!((rs.pc, rs.x[1]), (0x1000, 0x5000));
    }
}
