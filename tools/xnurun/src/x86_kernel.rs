//! XNU's x86 kernel entries, answered: what XNU does with the gate (see
//! [`trap`]), which convention reads the call, the call itself, and the
//! registers the guest gets back. Both CPU backends use this one copy.

use crate::calls::{self, Calls, Memory, Next, EXIT_UNIMPLEMENTED};
use crate::loader::Arch;
use crate::trace;
use crate::trap::{self, Gate, Handling};
use crate::x86_state::X86State;
use crate::xnu::{self, Outcome};
use crate::{xnu_i386, xnu_x86_64};

/// What happens to the guest after a kernel entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// It resumes with these registers.
    Resume(X86State),
    /// It dies of XNU signal `sig`, after its registers became `resume`
    /// (a call that returned, then posted a signal).
    Kill { resume: Option<X86State>, sig: i32, why: String },
    /// It called exit with this status.
    Exit(i32),
    /// The run stops: a message and xnurun's exit status.
    Stop(String, i32),
}

fn read_u32(mem: &dyn Memory, addr: u64) -> Option<u32> {
    let mut b = [0u8; 4];
    (mem.read(addr, &mut b) == 4).then(|| u32::from_le_bytes(b))
}

/// Answers `gate`, entered by a task of `task`'s bitness: `entry` are the
/// registers as the trap instruction saw them, `next` the address after it.
pub fn answer(task: Arch, gate: Gate, entry: &X86State, next: u64, calls: &mut Calls, mem: &mut dyn Memory) -> Answer {
    match trap::handling(task, gate) {
        Handling::X86_64 => x86_64(entry, next, calls, mem),
        Handling::I386(g) => i386(g, entry, next, calls, mem),
        Handling::Sigill(why) => Answer::Kill { resume: None, sig: xnu::SIGILL, why: why.into() },
        Handling::Unimplemented(what) => {
            if calls.trace {
                trace::line(&xnu_i386::regs_line(entry));
            }
            Answer::Stop(format!("the guest used {what} at 0x{:x}: a real XNU entry that xnurun does not implement", entry.rip), EXIT_UNIMPLEMENTED)
        }
    }
}

fn x86_64(r: &X86State, next: u64, calls: &mut Calls, mem: &mut dyn Memory) -> Answer {
    if calls.trace {
        trace::line(&xnu_x86_64::regs_line(r));
    }
    let n = match xnu_x86_64::decode(r) {
        xnu_x86_64::Entry::Bsd { code, args } => calls.bsd_call(mem, code, &args),
        xnu_x86_64::Entry::Unsupported { class, number } => Next::Stop(
            format!(
                "the guest made a {} (syscall class {class}, number {number}, rax 0x{:x}): a real XNU call that xnurun does not implement",
                xnu_x86_64::class_name(class),
                r.rax
            ),
            EXIT_UNIMPLEMENTED,
        ),
        xnu_x86_64::Entry::ExcSyscall { class } => {
            if calls.trace {
                trace::line(&format!("syscall class {class} (rax 0x{:x}) = ? EXC_SYSCALL", r.rax));
            }
            return Answer::Kill {
                resume: None,
                sig: xnu::SIGSYS,
                why: format!("rax 0x{:x} is syscall class {class}, not an XNU class: EXC_SYSCALL (hndl_syscall, osfmk/x86_64/idt64.s)", r.rax),
            };
        }
    };
    conclude(n, |o| xnu_x86_64::finish(r, next, o))
}

fn i386(gate: xnu_i386::Gate, r: &X86State, next: u64, calls: &mut Calls, mem: &mut dyn Memory) -> Answer {
    if calls.trace {
        trace::line(&xnu_i386::regs_line(r));
    }
    let n = match xnu_i386::decode(gate, r, |a| read_u32(&*mem, a)) {
        xnu_i386::Entry::MachTrap { number } => Next::Stop(
            format!("the guest made Mach trap {number} (sysenter with eax 0x{:x}): a real XNU call that xnurun does not implement", r.rax as u32),
            EXIT_UNIMPLEMENTED,
        ),
        xnu_i386::Entry::Bsd { code, params } => {
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
    conclude(n, |o| xnu_i386::finish(gate, r, next, o))
}

fn conclude(next: Next, finish: impl Fn(&Outcome) -> X86State) -> Answer {
    match next {
        Next::Resume(o) => Answer::Resume(finish(&o)),
        Next::ResumeThenKill(o, sig) => Answer::Kill { resume: Some(finish(&o)), sig, why: "signal posted by the system call".into() },
        Next::Exit(s) => Answer::Exit(s),
        Next::Stop(msg, s) => Answer::Stop(msg, s),
    }
}
