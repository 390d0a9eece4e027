//! XNU's arm64 kernel entries, answered: `svc #0x80` as `handle_svc`
//! (osfmk/arm64/sleh.c) dispatches it, the exceptions a user thread can
//! raise (`sleh_synchronous`), and dyld's return path when `main` returns.
//! The CPU backend only reads and writes the registers.

use super::convention::{self, Entry, Regs};
use super::thread_state::Saved;
use crate::xnu::bsd::calls::Calls;
use crate::xnu::end::{Death, End, Next};
use crate::xnu::memory::Memory;
use crate::xnu::mach;
use crate::xnu::release::Release;
use crate::xnu::{signal, trace, Arch};

/// Answers an `svc`: `regs` as the CPU left them (pc after the `svc`).
pub fn answer(regs: &Regs, calls: &mut Calls, mem: &mut dyn Memory) -> Next<Regs> {
    if calls.trace {
        trace::line(&convention::regs_line(regs));
    }
    let n = match convention::decode(regs) {
        Entry::Bsd { code, args } => calls.bsd_call(mem, code, &args),
        // handle_svc answers the two fast time traps before the table.
        Entry::MachTrap { number: n @ (3 | 4) } => Next::End(End::Unimplemented(format!(
            "the guest made the fast Mach trap {n} (x16 = -{n}, mach_{}_time): a real XNU call that xnurun does not implement",
            if n == 3 { "absolute" } else { "continuous" }
        ))),
        Entry::MachTrap { number } => {
            // mach_syscall (osfmk/arm64/bsd_arm64.c): the arguments are x0-x7.
            let args = |_: usize, _: &dyn Memory| {
                let mut a = [0u64; 8];
                a.copy_from_slice(&regs.x[..8]);
                Some(a)
            };
            let mut saved = Saved { r: *regs, replaced: false };
            let task = mach::Task { release: Release::of(Arch::Arm64), is32: false, port_dies: calls.injector.port_dies(), space: &mut calls.mach, mem, state: &mut saved };
            let n = mach::answer(task, number, args, &format!("x16 = -{number}"), calls.trace);
            if saved.replaced {
                // thread_set_state on itself: the thread returns to the new
                // state, with the trap's return in x0.
                let n = n.map(|o| convention::finish(&saved.r, &o));
                if let (true, Some(after)) = (calls.trace, n.resumed()) {
                    trace::line(&convention::after_line(after));
                }
                return n;
            }
            n
        }
        Entry::Platform => Next::End(End::Unimplemented(
            "the guest made a platform call (x16 = 0x80000000): a real XNU call that xnurun does not implement".into(),
        )),
    };
    let n = n.map(|o| convention::finish(regs, &o));
    if let (true, Some(after)) = (calls.trace, n.resumed()) {
        trace::line(&convention::after_line(after));
    }
    n
}

/// `brk`: EXC_BREAKPOINT, SIGTRAP.
pub fn breakpoint() -> Death {
    Death::new(signal::SIGTRAP, "brk: EXC_BREAKPOINT")
}

/// An undefined instruction: EXC_BAD_INSTRUCTION, SIGILL.
pub fn undefined() -> Death {
    Death::new(signal::SIGILL, "undefined instruction: EXC_BAD_INSTRUCTION")
}

/// `wfi` and `wfe`: hint instructions that a user thread of XNU's traps
/// (SCTLR_EL1.nTWI and nTWE clear), as undefined ones.
pub const WFI: u32 = 0xd503_207f;
pub const WFE: u32 = 0xd503_205f;

/// When `main` returns, dyld's `start` passes its result to `exit()`.
pub fn main_returned(x0: u64, tracing: bool) -> End {
    let status = (x0 as i32) & 0xff;
    if tracing {
        trace::line(&format!("exit({status}) (main returned; dyld calls exit)"));
    }
    End::Exit(status)
}
