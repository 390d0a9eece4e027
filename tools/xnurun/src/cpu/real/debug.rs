//! The real CPU under a debugger. A step is ptrace's PTRACE_SINGLESTEP,
//! with the kernel entries decoded before they run and answered by the
//! same code as in a run; a breakpoint is an `int3` written into guest
//! memory only while the guest runs, so that gdb never reads one; an
//! interrupt is a thread that watches gdb's connection and stops the guest
//! with SIGSTOP when gdb has something to say.

use super::guest::{self, Stop as Event};
use super::{killed_from_outside, mode_of, to_state, Runner};
use crate::cpu::debug::{readable, Debuggee, Registers, Stop};
use crate::image::file::ImageFile;
use crate::image::stack::InitialStack;
use crate::image::Image;
use crate::xnu::bsd::calls::Calls;
use crate::xnu::end::End;
use crate::xnu::x86::gate::{self, Gate, Insn, Mode};
use nix::libc;
use nix::sys::ptrace;
use nix::unistd::Pid;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// SIGTRAP's si_code for `int3` (the kernel's, not a step's TRAP_TRACE).
const SI_KERNEL: i32 = 0x80;

pub struct Session {
    r: Runner,
    /// The guest's own mappings, `[start, end)`, whatever their protection
    /// but none.
    mapped: Vec<(u64, u64)>,
}

/// An x86 image on the real CPU, stopped before its first instruction,
/// for a debugger.
pub fn debug_session(image: &Image, file: &ImageFile, stack: &InitialStack, calls: Calls) -> Result<Session, End> {
    let guest = match guest::spawn(image, file, stack) {
        Ok(g) => g,
        Err(guest::SpawnError::Failed(e)) => return Err(End::Runner(e)),
        Err(guest::SpawnError::Killed(sig)) => return Err(killed_from_outside(sig)),
    };
    let mapped = guest.mapped_ranges();
    Ok(Session { r: Runner { guest, calls, step: true, max_steps: u64::MAX }, mapped })
}

/// How many bytes from `addr`, up to `len`, lie in `ranges`.
fn span(ranges: &[(u64, u64)], addr: u64, len: u64) -> u64 {
    let mut n = 0u64;
    while n < len {
        let a = addr.wrapping_add(n);
        let Some(&(_, end)) = ranges.iter().find(|r| a >= r.0 && a < r.1) else { break };
        n += (end - a).min(len - n);
    }
    n
}

impl Session {
    /// One instruction, a kernel entry being one.
    fn step_one(&mut self) -> Result<(), End> {
        let r = &mut self.r;
        let regs = r.guest.regs().map_err(|e| r.runner_error(&e))?;
        let mode = mode_of(&regs);
        // The entries are answered before the CPU runs them, as in
        // --max-steps mode: `sysenter`, because Linux's own entry may lose
        // EAX (see mod.rs); `syscall`, because the CPU would copy the trap
        // flag the step sets into R11, which a run without gdb never has.
        match gate::decode(mode, &r.guest.code_at(regs.rip)) {
            Insn::Sysenter(len) if r.guest.executable(regs.rip, len) => return r.gate(Gate::Sysenter, &regs, regs.rip + len),
            Insn::Syscall(len) if mode == Mode::Long && r.guest.executable(regs.rip, len) => {
                // What the instruction itself does first: the return
                // address in RCX, the flags in R11.
                let entry = libc::user_regs_struct { rcx: regs.rip + len, r11: regs.eflags, ..regs };
                return r.gate(Gate::Syscall64, &entry, regs.rip + len);
            }
            _ => {}
        }
        loop {
            match r.guest.resume(true) {
                Event::Stepped => return Ok(()),
                Event::Syscall { abi32 } => {
                    r.on_syscall(abi32)?;
                    // Linux's report that the call's instruction finished
                    // (user_single_step_report): no new instruction.
                    return match r.guest.resume(true) {
                        Event::Stepped | Event::Signal { signo: libc::SIGTRAP, .. } => Ok(()),
                        Event::Killed(s) => Err(killed_from_outside(s)),
                        Event::Gone(e) => Err(r.runner_error(&e)),
                        Event::Syscall { .. } | Event::Signal { .. } => Err(r.runner_error("the guest did not stop after its system call")),
                    };
                }
                // An interrupt that came after the guest had stopped.
                Event::Signal { signo: libc::SIGSTOP, .. } => continue,
                Event::Signal { signo, code, addr } => return r.on_signal(signo, code, addr),
                Event::Killed(s) => return Err(killed_from_outside(s)),
                Event::Gone(e) => return Err(r.runner_error(&e)),
            }
        }
    }

    fn ended(&mut self, end: End) -> Stop {
        self.r.guest.kill();
        Stop::Ended(end)
    }

    /// The aligned word holding `addr`, through ptrace, which writes code
    /// the guest itself may not.
    fn poke_byte(&self, addr: u64, byte: u8) -> Option<u8> {
        let pid = self.r.guest.pid;
        let word = addr & !7;
        let shift = (addr - word) * 8;
        let old = ptrace::read(pid, word as ptrace::AddressType).ok()? as u64;
        let new = (old & !(0xff << shift)) | (u64::from(byte) << shift);
        ptrace::write(pid, word as ptrace::AddressType, new as libc::c_long).ok()?;
        Some((old >> shift) as u8)
    }
}

/// Stops the guest with SIGSTOP once `fd` has something to read.
struct Watcher {
    done: Arc<AtomicBool>,
    fired: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Watcher {
    fn start(fd: RawFd, pid: Pid) -> Watcher {
        let (done, fired) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (d, f) = (done.clone(), fired.clone());
        let thread = std::thread::spawn(move || {
            while !d.load(Ordering::SeqCst) {
                if readable(fd, 20) {
                    f.store(true, Ordering::SeqCst);
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP);
                    return;
                }
            }
        });
        Watcher { done, fired, thread }
    }
    fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
    fn stop(self) {
        self.done.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
    }
}

impl Debuggee for Session {
    fn registers(&mut self) -> Registers {
        Registers::X86(self.r.guest.regs().map(|r| to_state(&r)).unwrap_or_default())
    }
    fn set_registers(&mut self, regs: &Registers) {
        if let (Registers::X86(s), Ok(base)) = (regs, self.r.guest.regs()) {
            let _ = self.r.resume_with(&base, s);
        }
    }
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> usize {
        let n = span(&self.mapped, addr, buf.len() as u64) as usize;
        // Page by page: process_vm_readv stops at the first page it cannot
        // read.
        let mut done = 0;
        while done < n {
            let at = addr + done as u64;
            let chunk = ((4096 - at % 4096) as usize).min(n - done);
            let got = self.r.guest.read_mem(at, &mut buf[done..done + chunk]);
            done += got;
            if got < chunk {
                break;
            }
        }
        done
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> usize {
        let n = span(&self.mapped, addr, data.len() as u64) as usize;
        for (i, &b) in data[..n].iter().enumerate() {
            if self.poke_byte(addr + i as u64, b).is_none() {
                return i;
            }
        }
        n
    }
    fn step(&mut self) -> Stop {
        match self.step_one() {
            Ok(()) => Stop::Stepped,
            Err(end) => self.ended(end),
        }
    }
    fn resume(&mut self, breakpoints: &[u64], wake: Option<RawFd>) -> Stop {
        // Off the instruction it stands on (a breakpoint's, perhaps)
        // before any `int3` goes in.
        if let Err(end) = self.step_one() {
            return self.ended(end);
        }
        let pc = self.r.guest.regs().map(|r| r.rip).unwrap_or(0);
        if breakpoints.contains(&pc) {
            return Stop::Breakpoint;
        }
        let mut saved: Vec<(u64, u8)> = Vec::new();
        for &at in breakpoints {
            if span(&self.mapped, at, 1) == 1
                && let Some(old) = self.poke_byte(at, 0xcc)
            {
                saved.push((at, old));
            }
        }
        let watcher = wake.map(|fd| Watcher::start(fd, self.r.guest.pid));
        let stop = loop {
            let r = &mut self.r;
            let result = match r.guest.resume(false) {
                Event::Syscall { abi32 } => r.on_syscall(abi32),
                // A breakpoint's `int3` traps after itself: back onto it.
                Event::Signal { signo: libc::SIGTRAP, code: SI_KERNEL, .. } => match r.guest.regs() {
                    Ok(regs) if saved.iter().any(|&(a, _)| a + 1 == regs.rip) => match r.guest.set_regs(&libc::user_regs_struct { rip: regs.rip - 1, ..regs }) {
                        Ok(()) => break Stop::Breakpoint,
                        Err(e) => Err(r.runner_error(&e)),
                    },
                    Ok(_) => r.on_signal(libc::SIGTRAP, SI_KERNEL, 0),
                    Err(e) => Err(r.runner_error(&e)),
                },
                Event::Signal { signo: libc::SIGSTOP, .. } if watcher.as_ref().is_some_and(Watcher::fired) => break Stop::Interrupted,
                Event::Signal { signo: libc::SIGSTOP, .. } => Ok(()),
                Event::Signal { signo, code, addr } => r.on_signal(signo, code, addr),
                Event::Stepped => Ok(()),
                Event::Killed(s) => Err(killed_from_outside(s)),
                Event::Gone(e) => Err(r.runner_error(&e)),
            };
            if let Err(end) = result {
                break Stop::Ended(end);
            }
        };
        if let Some(w) = watcher {
            w.stop();
        }
        if let Stop::Ended(end) = stop {
            return self.ended(end);
        }
        for (at, old) in saved {
            self.poke_byte(at, old);
        }
        stop
    }
    fn kill(&mut self) {
        self.r.guest.kill();
    }
}
