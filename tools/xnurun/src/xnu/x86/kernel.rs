//! XNU's x86 kernel entries, answered: what XNU does with the gate (see
//! [`gate`]), which convention reads the call, the call itself, and the
//! registers the guest gets back. Both CPU backends use this one copy.

use super::gate::{self, Gate, Handling};
use super::state::X86State;
use super::thread_state::Saved;
use super::{i386, x86_64};
use crate::xnu::bsd::calls::{self, Calls};
use crate::xnu::end::{Death, End, Next};
use crate::xnu::mach;
use crate::xnu::memory::{read_u32, read_u64, Memory};
use crate::xnu::outcome::Outcome;
use crate::xnu::release::Release;
use crate::xnu::{signal, trace, Arch};

/// Answers `gate`, entered by a task of `task`'s bitness: `entry` are the
/// registers as the trap instruction saw them, `next` the address after
/// it. Returns what the guest resumes with, or how it ends.
pub fn answer(task: Arch, gate: Gate, entry: &X86State, next: u64, calls: &mut Calls, mem: &mut dyn Memory) -> Next<X86State> {
    match gate::handling(task, gate) {
        Handling::X86_64 => on_x86_64(task, entry, next, calls, mem),
        Handling::I386(g) => on_i386(g, entry, next, calls, mem),
        Handling::Sigill(why) => Next::Die(None, Death::new(signal::SIGILL, why)),
    }
}

fn on_x86_64(task: Arch, r: &X86State, next: u64, calls: &mut Calls, mem: &mut dyn Memory) -> Next<X86State> {
    if calls.trace {
        trace::line(&x86_64::regs_line(r));
    }
    let release = Release::of(task);
    let n = match x86_64::decode(r) {
        x86_64::Entry::Bsd { code, args } => calls.bsd_call(mem, code, &args),
        x86_64::Entry::Mach { number } => {
            // mach_call_munger64 (osfmk/i386/bsd_i386.c): six arguments in
            // registers, the rest copied in from above the return address
            // at the user stack pointer.
            let regs = [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9];
            let args = |n: usize, mem: &dyn Memory| {
                let mut a = [0u64; 8];
                a[..6].copy_from_slice(&regs);
                for (i, w) in a.iter_mut().enumerate().take(n).skip(6) {
                    *w = read_u64(mem, r.rsp + 8 + 8 * (i as u64 - 6))?;
                }
                Some(a)
            };
            let mut saved = Saved::at_syscall(r, next);
            let task = mach::Task { release, is32: false, port_dies: calls.injector.port_dies(), space: &mut calls.mach, mem, state: &mut saved };
            let n = mach::answer(task, i64::from(number), args, &format!("rax 0x{:x}", r.rax), calls.trace);
            if saved.replaced {
                // thread_set_state on itself: the thread returns to the new
                // state through iretq (cs is no longer SYSCALL_CS), with
                // the trap's return in rax.
                let n = n.map(|o| match o {
                    Outcome::Value(v) => X86State { rax: v, ..saved.r },
                    _ => saved.r,
                });
                if let (true, Some(after)) = (calls.trace, n.resumed()) {
                    trace::line(&x86_64::after_line(after));
                }
                return n;
            }
            n
        }
        x86_64::Entry::Machdep { number } => machdep(true, i64::from(number), &format!("rax 0x{:x}", r.rax), calls.trace),
        x86_64::Entry::Diag { number } => Next::End(End::Unimplemented(format!(
            "the guest made a diagnostics call (syscall class 4, number {number}, rax 0x{:x}): a real XNU call that xnurun does not implement",
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
    let n = n.map(|o| x86_64::finish(r, next, &o));
    if let (true, Some(after)) = (calls.trace, n.resumed()) {
        trace::line(&x86_64::after_line(after));
    }
    n
}

fn on_i386(gate: i386::Gate, r: &X86State, next: u64, calls: &mut Calls, mem: &mut dyn Memory) -> Next<X86State> {
    if calls.trace {
        trace::line(&i386::regs_line(r));
    }
    let what = format!("eax 0x{:x}", r.rax as u32);
    let n = match i386::decode(gate, r, |a| read_u32(&*mem, a)) {
        i386::Entry::MachTrap { number } => {
            // mach_call_munger: every argument copied in from the user
            // stack pointer + 4 (ecx after sysenter).
            let uesp = if gate == i386::Gate::Sysenter { r.rcx } else { r.rsp } & 0xffff_ffff;
            let args = |n: usize, mem: &dyn Memory| {
                let mut a = [0u64; 8];
                for (i, w) in a.iter_mut().enumerate().take(n) {
                    *w = u64::from(read_u32(mem, uesp + 4 + 4 * i as u64)?);
                }
                Some(a)
            };
            let mut saved = Saved::at_i386(r, gate == i386::Gate::Sysenter, next);
            let task = mach::Task { release: Release::Xnu4903, is32: true, port_dies: calls.injector.port_dies(), space: &mut calls.mach, mem, state: &mut saved };
            mach::answer(task, i64::from(number), args, &what, calls.trace)
        }
        i386::Entry::Machdep { number } => machdep(false, i64::from(number), &what, calls.trace),
        i386::Entry::Bsd { code, params } => {
            // unix_syscall copies in the call's argument words.
            let mut args = [0u64; 6];
            let mut fault = false;
            let words = calls::arg_words(code);
            for (i, a) in args.iter_mut().enumerate().take(words) {
                match read_u32(&*mem, params + 4 * i as u64) {
                    Some(v) => *a = u64::from(v),
                    None => fault = true,
                }
            }
            if calls.trace {
                let uesp = i386::user_sp(gate, r);
                let upto = params + 4 * words as u64;
                trace::line(&i386::stack_line(uesp, (upto - uesp) / 4, |a| read_u32(&*mem, a)));
            }
            if fault { calls.args_fault(code) } else { calls.bsd_call(mem, code, &args) }
        }
    };
    let n = n.map(|o| i386::finish(gate, r, next, &o));
    if let (true, Some(after)) = (calls.trace, n.resumed()) {
        trace::line(&i386::after_line(after));
    }
    n
}

/// A machine-dependent call (`machdep_syscall`, `machdep_syscall64`):
/// past the table or on a `kern_invalid` slot, KERN_INVALID_ARGUMENT and
/// the guest goes on.
fn machdep(is64: bool, number: i64, regs: &str, tracing: bool) -> Next<Outcome> {
    match mach::machdep(is64, number) {
        Some(name) => Next::End(End::Unimplemented(format!(
            "the guest made machine-dependent call {number} ({name}; {regs}): a real XNU call that xnurun does not implement"
        ))),
        None => {
            if tracing {
                trace::line(&format!("machdep call {number} ({regs}) = {} KERN_INVALID_ARGUMENT", mach::KERN_INVALID_ARGUMENT));
            }
            Next::Resume(Outcome::Value(mach::KERN_INVALID_ARGUMENT))
        }
    }
}
