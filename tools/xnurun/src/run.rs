//! The run loop: single-step the guest, intercept every trap instruction
//! before it executes, answer it as XNU would, and turn the guest's end
//! into xnurun's exit status.

use crate::bsd::{self, Kind};
use crate::fault::{Decision, Injector};
use crate::guest::{Guest, Step};
use crate::loader::{Arch, Image};
use crate::stack::InitialStack;
use crate::trace;
use crate::xnu;
use crate::xnu_i386::{self, Gate};
use crate::xnu_x86_64;
use nix::libc::{self, user_regs_struct};

pub const EXIT_UNIMPLEMENTED: i32 = 123;
pub const EXIT_STEP_LIMIT: i32 = 124;
pub const EXIT_RUNNER: i32 = 125;

/// Linux's si_code for a fault on a mapped page with the wrong protection
/// (include/uapi/asm-generic/siginfo.h); the libc crate lacks it.
const SEGV_ACCERR: i32 = 2;

/// What a BSD call returns to the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok(u64, u64),
    Err(i32),
    Restart,
}

/// What the runner does after a call.
enum Next {
    Resume(Outcome),
    /// Return the outcome, then the guest dies of this XNU signal.
    ResumeThenKill(Outcome, i32),
    Exit(i32),
    Stop(String, i32),
}

pub struct Options {
    pub trace: bool,
    pub injector: Injector,
    pub max_steps: u64,
    /// SIGPIPE was ignored when xnurun started: a broken pipe gives EPIPE
    /// instead of killing the guest.
    pub sigpipe_ignored: bool,
}

/// The instruction at `rip`, as far as the runner cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Insn {
    Syscall(u64),
    Sysenter(u64),
    Int(u8, u64),
    Int3,
    Icebp,
    Other,
}

fn decode(arch: Arch, code: &[u8]) -> Insn {
    let mut i = 0;
    while let Some(&b) = code.get(i) {
        let prefix = matches!(b, 0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x66 | 0x67 | 0xf0 | 0xf2 | 0xf3)
            || (arch == Arch::X86_64 && (0x40..=0x4f).contains(&b));
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
        (Some(0xcc), _) => Insn::Int3,
        (Some(0xf1), _) => Insn::Icebp,
        _ => Insn::Other,
    }
}

fn hex_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
}

struct Runner<'a> {
    guest: Guest,
    opts: &'a mut Options,
}

/// Runs the image to its end and returns xnurun's exit status.
pub fn run(image: &Image, file: &[u8], stack: &InitialStack, opts: &mut Options) -> i32 {
    let guest = match crate::guest::spawn(image, file, stack) {
        Ok(g) => g,
        Err(e) => {
            trace::line(&format!("xnurun: {e}"));
            return EXIT_RUNNER;
        }
    };
    let mut r = Runner { guest, opts };
    let status = r.main_loop();
    r.guest.kill();
    status
}

impl Runner<'_> {
    fn main_loop(&mut self) -> i32 {
        let arch = self.guest.arch;
        let mut steps: u64 = 0;
        loop {
            let regs = match self.guest.regs() {
                Ok(r) => r,
                Err(e) => return self.runner_error(&e),
            };
            if steps >= self.opts.max_steps {
                trace::line(&format!(
                    "xnurun: step limit reached: the guest ran {steps} instructions without exiting (at {} 0x{:x}; raise it with --max-steps)",
                    if arch == Arch::X86_64 { "rip" } else { "eip" },
                    regs.rip
                ));
                return EXIT_STEP_LIMIT;
            }
            steps += 1;
            let code = self.guest.code_at(regs.rip);
            let insn = decode(arch, &code);
            let handled = match (arch, insn) {
                (Arch::X86_64, Insn::Syscall(len)) => Some(self.x86_64_syscall(&regs, regs.rip + len)),
                (Arch::I386, Insn::Sysenter(len)) => Some(self.i386_call(Gate::Sysenter, &regs, regs.rip + len)),
                (Arch::I386, Insn::Int(0x80, len)) => Some(self.i386_call(Gate::Int80, &regs, regs.rip + len)),
                (_, Insn::Int(n @ 0x80..=0x83, _)) => Some(self.unsupported_trap(
                    &regs,
                    &format!("int 0x{n:x} ({})", match n {
                        0x80 if arch == Arch::X86_64 => "the 32-bit BSD gate, from 64-bit code",
                        0x80 => "BSD",
                        0x81 => "Mach trap gate",
                        0x82 => "machine-dependent call gate",
                        _ => "diagnostics gate",
                    }),
                )),
                (Arch::X86_64, Insn::Sysenter(_)) => Some(self.unsupported_trap(&regs, "sysenter from 64-bit code")),
                // Intel CPUs, the only x86 CPUs XNU ran on, raise #UD for
                // `syscall` outside 64-bit mode: T_INVALID_OPCODE, SIGILL
                // (osfmk/i386/trap.c user_trap). AMD would let it reach Linux.
                (Arch::I386, Insn::Syscall(_)) => Some(self.guest_killed(&regs, xnu::SIGILL, None, &code, "syscall in 32-bit mode is #UD on Intel")),
                // T_INT3 and T_DEBUG: EXC_BREAKPOINT, SIGTRAP. Not executed:
                // the trap would be taken for one of xnurun's own steps.
                (_, Insn::Int3) | (_, Insn::Int(3, _)) | (_, Insn::Icebp) => {
                    Some(self.guest_killed(&regs, xnu::SIGTRAP, None, &code, "breakpoint trap"))
                }
                _ => None,
            };
            if let Some(end) = handled {
                match end {
                    Ok(()) => continue,
                    Err(status) => return status,
                }
            }
            match self.guest.step() {
                Step::Done => {}
                Step::Fault { signo, code: si_code, addr } => {
                    let sig = self.xnu_fault_signal(signo, si_code, addr);
                    let what = format!("fault address 0x{addr:x}");
                    return self.guest_killed(&regs, sig, Some(&what), &code, "").unwrap_err();
                }
                Step::Signal(s) => match xnu::async_from_linux(s) {
                    xnu::Async::Ignore => {}
                    xnu::Async::Kill(sig) => return self.guest_killed(&regs, sig, None, &[], "signal from outside").unwrap_err(),
                },
                Step::Gone(e) => return self.runner_error(&e),
            }
        }
    }

    /// Linux's fault signal and code to what XNU's `user_trap` and
    /// `ux_exception` would deliver: a page fault on memory the task has
    /// mapped is KERN_PROTECTION_FAILURE (SIGBUS), elsewhere
    /// KERN_INVALID_ADDRESS (SIGSEGV); a #GP is SIGSEGV (machine_exception,
    /// bsd/dev/i386/unix_signal.c).
    fn xnu_fault_signal(&self, signo: i32, si_code: i32, addr: u64) -> i32 {
        match signo {
            libc::SIGSEGV if si_code == SEGV_ACCERR && self.guest.xnu_mapped(addr) => xnu::SIGBUS,
            libc::SIGSEGV => xnu::SIGSEGV,
            libc::SIGBUS => xnu::SIGBUS,
            libc::SIGILL => xnu::SIGILL,
            libc::SIGFPE => xnu::SIGFPE,
            other => other,
        }
    }

    fn runner_error(&self, e: &str) -> i32 {
        trace::line(&format!("xnurun: {e}"));
        EXIT_RUNNER
    }

    fn regs_line(&self, r: &user_regs_struct) -> String {
        match self.guest.arch {
            Arch::X86_64 => xnu_x86_64::regs_line(r),
            Arch::I386 => xnu_i386::regs_line(r),
        }
    }

    fn unsupported_trap(&self, r: &user_regs_struct, what: &str) -> Result<(), i32> {
        if self.opts.trace {
            trace::line(&self.regs_line(r));
        }
        trace::line(&format!("xnurun: the guest used {what} at 0x{:x}: a real XNU entry that xnurun does not implement", r.rip));
        Err(EXIT_UNIMPLEMENTED)
    }

    /// Reports the guest's death by XNU signal `sig`; always `Err(status)`.
    fn guest_killed(&self, r: &user_regs_struct, sig: i32, detail: Option<&str>, code: &[u8], why: &str) -> Result<(), i32> {
        if self.opts.trace {
            trace::line(&trace::killed(sig));
        }
        let pc = if self.guest.arch == Arch::X86_64 { "rip" } else { "eip" };
        let mut msg = format!("xnurun: guest killed by {} ({sig}) at {pc} 0x{:x}", xnu::signal_name(sig), r.rip);
        if let Some(d) = detail {
            msg.push_str(&format!(", {d}"));
        }
        if !why.is_empty() {
            msg.push_str(&format!(" ({why})"));
        }
        if !code.is_empty() {
            msg.push_str(&format!(", instruction bytes: {}", hex_bytes(&code[..code.len().min(15)])));
        }
        trace::line(&msg);
        Err(128 + sig)
    }

    fn x86_64_syscall(&mut self, r: &user_regs_struct, next: u64) -> Result<(), i32> {
        if self.opts.trace {
            trace::line(&xnu_x86_64::regs_line(r));
        }
        let next_action = match xnu_x86_64::decode(r) {
            xnu_x86_64::Entry::Bsd { code, args } => self.bsd_call(code, &args),
            xnu_x86_64::Entry::Unsupported { class, number } => Next::Stop(
                format!(
                    "the guest made a {} (syscall class {class}, number {number}, rax 0x{:x}): a real XNU call that xnurun does not implement",
                    xnu_x86_64::class_name(class),
                    r.rax
                ),
                EXIT_UNIMPLEMENTED,
            ),
            xnu_x86_64::Entry::ExcSyscall { class } => {
                if self.opts.trace {
                    trace::line(&format!("syscall class {class} (rax 0x{:x}) = ? EXC_SYSCALL", r.rax));
                }
                return self.guest_killed(
                    r,
                    xnu::SIGSYS,
                    None,
                    &[],
                    &format!("rax 0x{:x} is syscall class {class}, not an XNU class: EXC_SYSCALL (hndl_syscall, osfmk/x86_64/idt64.s)", r.rax),
                );
            }
        };
        self.conclude(r, next_action, |o| xnu_x86_64::finish(r, next, o))
    }

    fn i386_call(&mut self, gate: Gate, r: &user_regs_struct, next: u64) -> Result<(), i32> {
        if self.opts.trace {
            trace::line(&xnu_i386::regs_line(r));
        }
        let entry = xnu_i386::decode(gate, r, |a| self.guest.read_u32(a));
        let next_action = match entry {
            xnu_i386::Entry::MachTrap { number } => Next::Stop(
                format!("the guest made Mach trap {number} (sysenter with eax 0x{:x}): a real XNU call that xnurun does not implement", r.rax as u32),
                EXIT_UNIMPLEMENTED,
            ),
            xnu_i386::Entry::Bsd { code, params } => {
                // unix_syscall copies in the call's argument words; only the
                // calls xnurun answers need them.
                let nargs = match bsd::classify(code) {
                    Kind::Write => 3,
                    Kind::Exit => 1,
                    _ => 0,
                };
                let mut args = [0u64; 6];
                let mut fault = false;
                for (i, a) in args.iter_mut().enumerate().take(nargs) {
                    match self.guest.read_u32(params + 4 * i as u64) {
                        Some(v) => *a = u64::from(v),
                        None => fault = true,
                    }
                }
                if fault {
                    if self.opts.trace {
                        trace::line(&format!("{}(...) {}", bsd::NAMES.get(code as usize).unwrap_or(&"?"), trace::result_err(xnu::EFAULT)));
                    }
                    Next::Resume(Outcome::Err(xnu::EFAULT))
                } else {
                    self.bsd_call(code, &args)
                }
            }
        };
        self.conclude(r, next_action, |o| xnu_i386::finish(gate, r, next, o))
    }

    fn conclude(&mut self, r: &user_regs_struct, next: Next, finish: impl Fn(&Outcome) -> user_regs_struct) -> Result<(), i32> {
        match next {
            Next::Resume(o) => match self.guest.set_regs(&finish(&o)) {
                Ok(()) => Ok(()),
                Err(e) => Err(self.runner_error(&e)),
            },
            Next::ResumeThenKill(o, sig) => {
                let _ = self.guest.set_regs(&finish(&o));
                self.guest_killed(r, sig, None, &[], "signal posted by the system call")
            }
            Next::Exit(status) => Err(status),
            Next::Stop(msg, status) => {
                trace::line(&format!("xnurun: {msg}"));
                Err(status)
            }
        }
    }

    fn bsd_call(&mut self, code: u32, args: &[u64; 6]) -> Next {
        let t = self.opts.trace;
        match bsd::classify(code) {
            Kind::Exit => {
                let rval = args[0] as i32;
                if t {
                    trace::line(&format!("exit({rval})"));
                }
                // exit1 keeps W_EXITCODE(rval): the low 8 bits.
                Next::Exit(rval & 0xff)
            }
            Kind::Write => self.write(args[0] as i32, args[1], args[2]),
            Kind::Nosys => {
                if t {
                    trace::line(&format!("nosys[{code}]() {}", trace::result_err(xnu::ENOSYS)));
                }
                Next::ResumeThenKill(Outcome::Err(xnu::ENOSYS), xnu::SIGSYS)
            }
            Kind::Enosys => {
                if t {
                    trace::line(&format!("enosys[{code}]() {}", trace::result_err(xnu::ENOSYS)));
                }
                Next::Resume(Outcome::Err(xnu::ENOSYS))
            }
            Kind::Unimplemented(name) => Next::Stop(
                format!("the guest called {name} (BSD system call {code}): a real XNU call that xnurun does not implement"),
                EXIT_UNIMPLEMENTED,
            ),
        }
    }

    fn write(&mut self, fd: i32, buf: u64, nbyte: u64) -> Next {
        let shown = {
            let mut b = vec![0u8; (nbyte.min(trace::STRING_LIMIT as u64)) as usize];
            let n = self.guest.read_mem(buf, &mut b);
            if n == b.len() { trace::escape(&b, nbyte) } else { format!("0x{buf:x}") }
        };
        let call = format!("write({fd}, {shown}, {nbyte})");
        // write_nocancel (bsd/kern/sys_generic.c) refuses counts past INT_MAX.
        if nbyte > i32::MAX as u64 {
            return self.traced(&call, Outcome::Err(xnu::EINVAL));
        }
        let outcome = match self.opts.injector.on_write(nbyte) {
            Decision::Restart => {
                if self.opts.trace {
                    trace::line(&format!("{call} {}", trace::RESULT_RESTART));
                }
                return Next::Resume(Outcome::Restart);
            }
            Decision::Fail(e) => Outcome::Err(e),
            Decision::Perform(n) => match self.host_write(fd, buf, n) {
                Ok(done) => Outcome::Ok(done, 0),
                Err(xnu::EPIPE) if !self.opts.sigpipe_ignored => {
                    // dofilewrite posts SIGPIPE with EPIPE unless the
                    // process ignores it; its default action kills.
                    if self.opts.trace {
                        trace::line(&format!("{call} {}", trace::result_err(xnu::EPIPE)));
                    }
                    return Next::ResumeThenKill(Outcome::Err(xnu::EPIPE), xnu::SIGPIPE);
                }
                Err(e) => Outcome::Err(e),
            },
        };
        self.traced(&call, outcome)
    }

    fn traced(&self, call: &str, o: Outcome) -> Next {
        if self.opts.trace {
            let res = match o {
                Outcome::Ok(v, _) => trace::result_ok(v),
                Outcome::Err(e) => trace::result_err(e),
                Outcome::Restart => trace::RESULT_RESTART.to_string(),
            };
            trace::line(&format!("{call} {res}"));
        }
        Next::Resume(o)
    }

    /// Copies the guest's buffer to xnurun's own descriptor `fd` (the one
    /// the guest inherited), in chunks, stopping at the first short write.
    /// Returns the count or an XNU errno, as `dofilewrite` would.
    fn host_write(&self, fd: i32, buf: u64, n: u64) -> Result<u64, i32> {
        const CHUNK: u64 = 1 << 16;
        let mut done = 0u64;
        let mut chunk = vec![0u8; CHUNK.min(n) as usize];
        if n == 0 {
            // Still let the host judge the descriptor (EBADF for a bad fd).
            // SAFETY: zero-length write from a valid pointer.
            let rc = unsafe { libc::write(fd, chunk.as_ptr().cast(), 0) };
            return if rc < 0 { Err(xnu::errno_from_linux(last_errno())) } else { Ok(0) };
        }
        while done < n {
            let want = (n - done).min(CHUNK) as usize;
            let got = self.guest.read_mem(buf.wrapping_add(done), &mut chunk[..want]);
            if got == 0 {
                return if done == 0 { Err(xnu::EFAULT) } else { Ok(done) };
            }
            let rc = loop {
                // SAFETY: `got` bytes of `chunk` are initialised.
                let rc = unsafe { libc::write(fd, chunk.as_ptr().cast(), got) };
                if rc < 0 && last_errno() == libc::EINTR {
                    continue;
                }
                break rc;
            };
            if rc < 0 {
                let e = xnu::errno_from_linux(last_errno());
                return if done == 0 { Err(e) } else { Ok(done) };
            }
            done += rc as u64;
            if (rc as usize) < got || got < want {
                break;
            }
        }
        Ok(done)
    }
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_trap_instructions() {
        assert_eq!(decode(Arch::X86_64, &[0x0f, 0x05]), Insn::Syscall(2));
        assert_eq!(decode(Arch::X86_64, &[0x48, 0x0f, 0x05]), Insn::Syscall(3));
        assert_eq!(decode(Arch::I386, &[0x48, 0x0f, 0x05]), Insn::Other, "0x48 is dec eax in 32-bit mode");
        assert_eq!(decode(Arch::I386, &[0x0f, 0x34]), Insn::Sysenter(2));
        assert_eq!(decode(Arch::I386, &[0xcd, 0x80]), Insn::Int(0x80, 2));
        assert_eq!(decode(Arch::I386, &[0x66, 0xcd, 0x81]), Insn::Int(0x81, 3));
        assert_eq!(decode(Arch::X86_64, &[0xcc]), Insn::Int3);
        assert_eq!(decode(Arch::X86_64, &[0x90, 0x0f, 0x05]), Insn::Other);
        assert_eq!(decode(Arch::X86_64, &[]), Insn::Other);
        assert_eq!(decode(Arch::X86_64, &[0x66; 16]), Insn::Other);
    }
}
