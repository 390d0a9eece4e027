//! XNU's x86 kernel entries, answered: what XNU does with the gate (see
//! [`gate`]), which convention reads the call, the call itself, and the
//! registers the guest gets back. Both CPU backends use this one copy.

use super::gate::{self, Gate, Handling};
use super::state::X86State;
use super::{i386, x86_64};
use crate::xnu::bsd::calls::{self, Calls};
use crate::xnu::end::{Death, End, Next};
use crate::xnu::memory::{read_u32, Memory};
use crate::xnu::{signal, trace, Arch};

/// Answers `gate`, entered by a task of `task`'s bitness: `entry` are the
/// registers as the trap instruction saw them, `next` the address after
/// it. Returns what the guest resumes with, or how it ends.
pub fn answer(task: Arch, gate: Gate, entry: &X86State, next: u64, calls: &mut Calls, mem: &mut dyn Memory) -> Next<X86State> {
    match gate::handling(task, gate) {
        Handling::X86_64 => on_x86_64(entry, next, calls, mem),
        Handling::I386(g) => on_i386(g, entry, next, calls, mem),
        Handling::Sigill(why) => Next::Die(None, Death::new(signal::SIGILL, why)),
        Handling::Unimplemented(what) => {
            if calls.trace {
                trace::line(&i386::regs_line(entry));
            }
            Next::End(End::Unimplemented(format!("the guest used {what} at 0x{:x}: a real XNU entry that xnurun does not implement", entry.rip)))
        }
    }
}

fn on_x86_64(r: &X86State, next: u64, calls: &mut Calls, mem: &mut dyn Memory) -> Next<X86State> {
    if calls.trace {
        trace::line(&x86_64::regs_line(r));
    }
    let n = match x86_64::decode(r) {
        x86_64::Entry::Bsd { code, args } => calls.bsd_call(mem, code, &args),
        x86_64::Entry::Unsupported { class, number } => Next::End(End::Unimplemented(format!(
            "the guest made a {} (syscall class {class}, number {number}, rax 0x{:x}): a real XNU call that xnurun does not implement",
            x86_64::class_name(class),
            r.rax
        ))),
        x86_64::Entry::ExcSyscall { class } => {
            if calls.trace {
                trace::line(&format!("syscall class {class} (rax 0x{:x}) = ? EXC_SYSCALL", r.rax));
            }
            let why = format!("rax 0x{:x} is syscall class {class}, not an XNU class: EXC_SYSCALL (hndl_syscall, osfmk/x86_64/idt64.s)", r.rax);
            return Next::Die(None, Death::new(signal::SIGSYS, why));
        }
    };
    n.map(|o| x86_64::finish(r, next, &o))
}

fn on_i386(gate: i386::Gate, r: &X86State, next: u64, calls: &mut Calls, mem: &mut dyn Memory) -> Next<X86State> {
    if calls.trace {
        trace::line(&i386::regs_line(r));
    }
    let n = match i386::decode(gate, r, |a| read_u32(&*mem, a)) {
        i386::Entry::MachTrap { number } => Next::End(End::Unimplemented(format!(
            "the guest made Mach trap {number} (sysenter with eax 0x{:x}): a real XNU call that xnurun does not implement",
            r.rax as u32
        ))),
        i386::Entry::Bsd { code, params } => {
            // unix_syscall copies in the call's argument words.
            let mut args = [0u64; 6];
            let mut fault = false;
            for (i, a) in args.iter_mut().enumerate().take(calls::arg_words(code)) {
                match read_u32(&*mem, params + 4 * i as u64) {
                    Some(v) => *a = u64::from(v),
                    None => fault = true,
                }
            }
            if fault { calls.args_fault(code) } else { calls.bsd_call(mem, code, &args) }
        }
    };
    n.map(|o| i386::finish(gate, r, next, &o))
}
