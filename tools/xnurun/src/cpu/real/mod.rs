//! The run loop on the real CPU: let the guest run until the kernel stops
//! it (a system call stopped by seccomp, a fault, a signal), say which XNU
//! entry or exception that was, answer it as XNU would, and turn the
//! guest's end into xnurun's exit status.
//!
//! The guest runs natively between stops. `--max-steps N` single-steps it
//! instead, for exact instruction counts, and looks at each instruction
//! before it runs, so that a `sysenter` is answered with every register as
//! it was (on Intel CPUs Linux's own `sysenter` entry loses EAX when the
//! word at EBP cannot be read: `__do_fast_syscall_32`, arch/x86/entry/
//! common.c; that is why i386 images run on the emulated CPU there by
//! default). Containment does not depend on either: the seccomp filter
//! stops every call in both modes.

mod child;
pub mod debug;
pub mod guest;
pub mod setup_program;
pub mod vendor;

use crate::image::stack::InitialStack;
use crate::image::file::ImageFile;
use crate::image::Image;
use crate::xnu::bsd::calls::Calls;
use crate::xnu::end::{Death, End, Next};
use crate::xnu::memory::Memory;
use crate::xnu::x86::exception::{self, SoftwareInt};
use crate::xnu::x86::gate::{self, Gate, Insn, Mode, TableStore};
use iced_x86::Register;
use crate::xnu::x86::kernel;
use crate::xnu::x86::state::X86State;
use crate::xnu::{signal, Arch};
use guest::{Guest, Stop, USER32_CS, VSYSCALL};
use vendor::Vendor;
use nix::libc::{self, user_regs_struct};

/// Linux's si_code values (include/uapi/asm-generic/siginfo.h): a fault on
/// a mapped page with the wrong protection, and a signal the kernel sent
/// for a trap with no address (#GP, #OF, #BR, int3).
const SEGV_ACCERR: i32 = 2;
const SI_KERNEL: i32 = 0x80;
const EFLAGS_OF: u64 = 0x800;
const EFLAGS_AC: u64 = 0x4_0000;
/// BUS_ADRALN (include/uapi/asm-generic/siginfo.h): an alignment fault.
const BUS_ADRALN: i32 = 1;
/// SIGFPE's codes: #DE is FPE_INTDIV (`DEFINE_IDTENTRY(exc_divide_error)`,
/// arch/x86/kernel/traps.c); x87's #MF and SSE's #XM come through
/// `math_error`, whose codes (`fpu__exception_code`) are FPE_FLTDIV to
/// FPE_FLTSUB.
const FPE_INTDIV: i32 = 1;
const FPE_FLTSUB: i32 = 8;

impl Memory for Guest {
    fn read(&self, addr: u64, buf: &mut [u8]) -> usize {
        self.read_mem(addr, buf)
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> usize {
        self.write_mem(addr, data)
    }
    fn writable(&self, addr: u64, len: u64) -> u64 {
        self.writable_len(addr, len)
    }
}

fn mode_of(r: &user_regs_struct) -> Mode {
    if r.cs == USER32_CS { Mode::Compat } else { Mode::Long }
}

/// Where Linux resumes a 32-bit fast system call: `__do_fast_syscall_32`
/// (arch/x86/entry/common.c) sets `regs->ip` to the vDSO's landing pad,
/// which set-up parked at `VDSO_PARK`, before it reads the word at EBP. A
/// seccomp stop shows that full address. When the read fails, Linux
/// fails the call before any stop and returns by IRET to the 32-bit code
/// segment, and the CPU may then run from the address cut to 32 bits
/// (0xfff005e9 on an Intel Xeon): in 32-bit mode that cut range counts
/// too. No i386 image can map it (it lies past `VM_MAX_ADDRESS32`).
fn in_landing_zone(rip: u64, mode: Mode) -> bool {
    let (start, end) = (setup_program::VDSO_PARK, setup_program::PARK_END);
    (start..end).contains(&rip) || (mode == Mode::Compat && (start & 0xffff_ffff..end & 0xffff_ffff).contains(&rip))
}

/// Whether the real CPU of `vendor`'s kind gives XNU's answers for
/// `image`. On Intel it does not for an i386 image: Linux's `sysenter`
/// entry loses EAX before any stop when the word at EBP cannot be read.
/// Nor for an x86_64 image that maps the landing pad's address cut to 32
/// bits (see `in_landing_zone`): after such a failed `sysenter`, Intel
/// CPUs resume there, in the guest's own code, in 32-bit mode, where XNU
/// gives SIGILL.
pub fn suits(image: &Image, vendor: Vendor) -> bool {
    if vendor != Vendor::Intel {
        return true;
    }
    let (cut_start, cut_end) = (setup_program::VDSO_PARK & 0xffff_ffff, setup_program::PARK_END & 0xffff_ffff);
    image.arch == Arch::X86_64 && !image.segments.iter().any(|s| s.vmaddr < cut_end && cut_start < s.vmaddr.saturating_add(s.vmsize))
}

/// The lowest address of the image's that Linux would have to map, when
/// it lies below `vm.mmap_min_addr` (read from /proc only for an image
/// that maps below 64 KiB, the highest value distributions ship): Linux
/// refuses such a mapping to any process without CAP_SYS_RAWIO
/// (`mmap_min_addr`, security/min_addr.c), though XNU maps it. The i386
/// image's `__TEXT` at 0x1000 is the case.
pub fn below_mmap_min_addr(image: &Image, floor: Option<u64>) -> Option<(u64, u64)> {
    let page = image.page();
    let lowest = image.segments.iter().filter(|s| s.vmsize > 0).map(|s| s.vm_range(page).0).min()?;
    if lowest >= 0x10000 {
        return None;
    }
    let floor = floor.unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/vm/mmap_min_addr").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
    });
    (lowest < floor).then_some((lowest, floor))
}

struct Runner {
    guest: Guest,
    calls: Calls,
    step: bool,
    max_steps: u64,
}

/// Runs the image to its end.
/// `max_steps`: single-step, and stop after this many instructions.
pub fn run(image: &Image, file: &ImageFile, stack: &InitialStack, calls: Calls, max_steps: Option<u64>) -> End {
    let guest = match guest::spawn(image, file, stack) {
        Ok(g) => g,
        Err(guest::SpawnError::Failed(e)) => return End::Runner(e),
        Err(guest::SpawnError::Killed(sig)) => return killed_from_outside(sig),
    };
    let step = max_steps.is_some();
    let mut r = Runner { guest, calls, step, max_steps: max_steps.unwrap_or(u64::MAX) };
    let end = r.main_loop();
    r.guest.kill();
    end
}

impl Runner {
    fn main_loop(&mut self) -> End {
        let mut steps: u64 = 0;
        // In step mode, resuming from a system call ends with one more
        // SIGTRAP, Linux's report that the call's instruction finished
        // (`user_single_step_report`): not a new instruction.
        let mut finishing_call = false;
        loop {
            if self.step && !finishing_call {
                let regs = match self.guest.regs() {
                    Ok(r) => r,
                    Err(e) => return self.runner_error(&e),
                };
                if steps >= self.max_steps {
                    return End::StepLimit { steps, pc: (self.pc_name(), regs.rip) };
                }
                steps += 1;
                // Catch `sysenter` before it runs, with every register as
                // the instruction sees it; only where the CPU would run it
                // (decoded as the CPU decodes it, on an executable page).
                if let Insn::Sysenter(len) = gate::decode(mode_of(&regs), &self.guest.code_at(regs.rip))
                    && self.guest.executable(regs.rip, len)
                {
                    match self.gate(Gate::Sysenter, &regs, regs.rip + len) {
                        Ok(()) => continue,
                        Err(end) => return end,
                    }
                }
            }
            let stop = self.guest.resume(self.step);
            let finished = std::mem::take(&mut finishing_call);
            let result = match stop {
                Stop::Stepped => Ok(()),
                Stop::Signal { signo: libc::SIGTRAP, .. } if finished => Ok(()),
                Stop::Syscall { abi32 } => {
                    finishing_call = self.step;
                    self.on_syscall(abi32)
                }
                Stop::Signal { signo, code, addr } => self.on_signal(signo, code, addr),
                Stop::Killed(s) => Err(killed_from_outside(s)),
                Stop::Gone(e) => Err(self.runner_error(&e)),
            };
            if let Err(end) = result {
                return end;
            }
        }
    }

    fn pc_name(&self) -> &'static str {
        self.guest.arch.pc_name()
    }

    /// A system call the seccomp filter stopped. Linux has already moved
    /// `rip` past the instruction and put -ENOSYS in `rax` (the number is
    /// in `orig_rax`); the entry state is rebuilt from that.
    fn on_syscall(&mut self, abi32: bool) -> Result<(), End> {
        let regs = self.guest.regs().map_err(|e| self.runner_error(&e))?;
        let mut entry = regs;
        if !abi32 {
            entry.rax = regs.orig_rax;
            if regs.rip & !0xfff == VSYSCALL {
                // Linux emulates a call into the vsyscall page; XNU maps
                // nothing there: an invalid address, SIGSEGV.
                let what = format!("fault address 0x{:x} (the vsyscall page: XNU maps nothing there)", regs.rip);
                return self.guest_killed(&entry, signal::SIGSEGV, Some(&what), &[], "");
            }
            entry.rip = regs.rip.wrapping_sub(2);
            return self.gate(Gate::Syscall64, &entry, regs.rip);
        }
        entry.rax = regs.orig_rax & 0xffff_ffff;
        if in_landing_zone(regs.rip, Mode::Compat) {
            // Linux's fast 32-bit entry (`do_fast_syscall_32`, arch/x86/
            // entry) serves both `sysenter` and `syscall` in 32-bit mode:
            // it resumes at its landing pad and replaces EBP with the word
            // at the user stack pointer. Only one of the two reaches it on
            // a given CPU: AMD raises #UD for `sysenter`, Intel for
            // `syscall`.
            if vendor::actual() == Vendor::Amd {
                return self.guest_killed(&entry, signal::SIGILL, None, &[], "syscall in 32-bit mode is #UD on Intel; Linux did not keep its address");
            }
            // `sysenter` (do_SYSENTER_32) took the stack pointer from EBP:
            // EBP comes back from it. XNU itself keeps ECX as the user
            // stack and EDX as the return address, which is what the trace
            // shows for ESP and EIP.
            entry.rbp = regs.rsp & 0xffff_ffff;
            entry.rsp = regs.rcx & 0xffff_ffff;
            entry.rip = regs.rdx & 0xffff_ffff;
            return self.gate(Gate::Sysenter, &entry, entry.rip);
        }
        let at = regs.rip.wrapping_sub(2);
        entry.rip = at;
        let gate = match self.guest.code_at(at).get(..2) {
            Some([0xcd, n]) => Gate::Int(*n),
            Some([0x0f, 0x05]) => Gate::SyscallCompat,
            other => return Err(self.runner_error(&format!("a 32-bit system call from an unknown instruction at 0x{at:x} ({other:?})"))),
        };
        self.gate(gate, &entry, regs.rip)
    }

    /// A signal that stopped the guest: a kernel entry Linux does not
    /// allow (it faults instead), a fault, or a signal from outside.
    fn on_signal(&mut self, signo: i32, si_code: i32, addr: u64) -> Result<(), End> {
        let regs = self.guest.regs().map_err(|e| self.runner_error(&e))?;
        let mode = mode_of(&regs);
        let code = self.guest.code_at(regs.rip);
        let fault = format!("fault address 0x{addr:x}");
        match signo {
            libc::SIGILL => {
                // AMD raises #UD for `sysenter` outside legacy mode; XNU,
                // on Intel, would have taken it.
                if let Insn::Sysenter(len) = gate::decode(mode, &code) {
                    return self.gate(Gate::Sysenter, &regs, regs.rip + len);
                }
                self.died(&regs, exception::death(exception::INVALID_OPCODE), None, &code)
            }
            libc::SIGSEGV if in_landing_zone(regs.rip, mode) => {
                // Linux's fast 32-bit entry could not read the word at the
                // stack pointer and failed the call with EFAULT before any
                // stop: EAX, the call number, is gone. On AMD that was a
                // `syscall` in 32-bit mode, #UD on Intel; on Intel a
                // `sysenter`, which a 64-bit task may not make.
                if vendor::actual() == Vendor::Amd {
                    return self.guest_killed(&regs, signal::SIGILL, None, &[], "syscall in 32-bit mode is #UD on Intel; Linux did not keep its address");
                }
                if self.guest.arch == Arch::X86_64 {
                    let entry = regs;
                    return self.guest_killed(&entry, signal::SIGILL, None, &[], "sysenter from a 64-bit task (L_64bit_entry_reject, osfmk/x86_64/idt64.s)");
                }
                Err(self.runner_error(
                    "the guest ran sysenter with EBP pointing at unreadable memory: on Intel CPUs Linux then loses EAX, the call number, before xnurun sees the call; without --cpu real (the emulated CPU, Intel's choice for i386 images), or with --max-steps N (single-stepped), xnurun sees it first",
                ))
            }
            libc::SIGSEGV if si_code == SI_KERNEL && self.table_store(&regs, mode, &code)? => Ok(()),
            libc::SIGSEGV if si_code == SI_KERNEL => {
                // #GP, and the traps Linux sends as SIGSEGV. Linux gives user
                // code only `int3`, `int 4` and `int 0x80`; every other
                // `int n` is #GP on the instruction, so XNU's own user gates
                // and traps are told apart here (exception::software_int).
                if let Insn::Int(n, len) = gate::decode(mode, &code) {
                    return match exception::software_int(n) {
                        SoftwareInt::Gate(g) => self.gate(Gate::Int(g), &regs, regs.rip + len),
                        // A trap reports the address after the instruction.
                        SoftwareInt::Trap(v) => {
                            let after = user_regs_struct { rip: regs.rip + len, ..regs };
                            self.died(&after, exception::death(v), None, &self.guest.code_at(after.rip))
                        }
                        SoftwareInt::GeneralProtection => self.died(&regs, exception::death(exception::GENERAL_PROTECTION), None, &code),
                    };
                }
                // `int 4` and `into` (0xce, 32-bit mode only) trap after
                // themselves when OF is set: #OF, T_OVERFLOW, EXC_ARITHMETIC:
                // SIGFPE (user_trap, osfmk/i386/trap.c).
                let before = self.guest.code_at(regs.rip.wrapping_sub(2));
                if before.get(..2) == Some(&[0xcd, exception::OVERFLOW]) {
                    return self.died(&regs, exception::death(exception::OVERFLOW), None, &code);
                }
                if mode == Mode::Compat && before.get(1) == Some(&0xce) && regs.eflags & EFLAGS_OF != 0 {
                    return self.died(&regs, exception::death(exception::OVERFLOW), None, &code);
                }
                // `bound` (0x62, 32-bit mode) faults on itself: #BR,
                // T_OUT_OF_BOUNDS, EXC_SOFTWARE / EXC_I386_BOUND: SIGTRAP.
                if mode == Mode::Compat && code.iter().find(|b| !matches!(b, 0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x66 | 0x67 | 0xf2 | 0xf3)) == Some(&0x62) {
                    return self.died(&regs, exception::death(exception::BOUND), None, &code);
                }
                self.died(&regs, exception::death(exception::GENERAL_PROTECTION), None, &code)
            }
            libc::SIGSEGV => {
                // A page fault: SEGV_ACCERR is a protection failure.
                let (sig, why) = if si_code == SEGV_ACCERR {
                    signal::fault(self.guest.xnu_mapped(addr), self.guest.in_stack_zone(addr))
                } else {
                    (signal::SIGSEGV, "")
                };
                self.guest_killed(&regs, sig, Some(&fault), &code, why)
            }
            // Linux turns on CR0.AM, so a guest that sets EFLAGS.AC takes
            // #AC on an unaligned access; XNU never turns AM on and the
            // access just happens. Clearing AC lets the CPU do it.
            libc::SIGBUS if si_code == BUS_ADRALN => {
                let mut r = regs;
                r.eflags &= !EFLAGS_AC;
                self.guest.set_regs(&r).map_err(|e| self.runner_error(&e))
            }
            // #SS (a non-canonical stack reference): Linux's SIGBUS,
            // XNU's T_STACK_FAULT.
            libc::SIGBUS if si_code == SI_KERNEL => self.died(&regs, exception::death(exception::STACK_FAULT), None, &code),
            libc::SIGBUS => self.guest_killed(&regs, signal::SIGBUS, Some(&fault), &code, ""),
            libc::SIGFPE if si_code == FPE_INTDIV => self.died(&regs, exception::death(exception::DIVIDE_ERROR), None, &code),
            libc::SIGFPE if (FPE_INTDIV..=FPE_FLTSUB).contains(&si_code) => self.died(&regs, exception::death(exception::FPU_ERROR), None, &code),
            libc::SIGFPE => self.guest_killed(&regs, signal::SIGFPE, Some(&fault), &code, ""),
            // int3, icebp, or a trace flag the guest set itself: T_INT3 /
            // T_DEBUG, EXC_BREAKPOINT, SIGTRAP.
            libc::SIGTRAP => self.died(&regs, exception::death(exception::BREAKPOINT), None, &code),
            s => match signal::async_from_linux(s) {
                signal::Async::Ignore => Ok(()),
                signal::Async::Kill(sig) => self.guest_killed(&regs, sig, None, &[], "signal from outside"),
            },
        }
    }

    /// `sgdt`, `sidt`, `smsw`, `sldt` and `str` run in user mode on XNU,
    /// which never sets CR4.UMIP; Linux sets it where the CPU has it, and
    /// emulates only some of them. xnurun performs the store (zeros: the
    /// kernel's own table addresses are no use to a guest) and goes on.
    /// `Ok(false)` when the instruction is not one of them.
    fn table_store(&mut self, regs: &user_regs_struct, mode: Mode, code: &[u8]) -> Result<bool, End> {
        let value = |r: Register| register(regs, r);
        let Some((dest, len)) = gate::table_store(mode, code, regs.rip, value) else { return Ok(false) };
        let mut r = *regs;
        match dest {
            TableStore::Memory(at, n) => {
                let at = if mode == Mode::Compat { at & 0xffff_ffff } else { at };
                if self.guest.write_mem(at, &vec![0; n as usize]) < n as usize {
                    // A store to memory it may not write: the page fault
                    // the CPU would take.
                    let (sig, why) = signal::fault(self.guest.xnu_mapped(at), self.guest.in_stack_zone(at));
                    self.died(regs, Death::new(sig, why), Some(&format!("fault address 0x{at:x}")), code)?;
                }
            }
            TableStore::Register(reg) => set_register(&mut r, reg, 0),
        }
        r.rip = regs.rip + len;
        r.orig_rax = u64::MAX;
        self.guest.set_regs(&r).map_err(|e| self.runner_error(&e))?;
        Ok(true)
    }


    /// Answers kernel entry `gate`; `entry` are the registers as the trap
    /// instruction saw them, `next` the address after it.
    fn gate(&mut self, gate: Gate, entry: &user_regs_struct, next: u64) -> Result<(), End> {
        let state = to_state(entry);
        match kernel::answer(self.guest.arch, gate, &state, next, &mut self.calls, &mut self.guest) {
            Next::Resume(s) => self.resume_with(entry, &s),
            Next::Die(resume, death) => {
                if let Some(s) = resume {
                    let _ = self.resume_with(entry, &s);
                }
                let code = if death.sig == signal::SIGILL { self.guest.code_at(entry.rip) } else { Vec::new() };
                self.died(entry, death, None, &code)
            }
            Next::End(end) => Err(end),
        }
    }

    /// Sets the guest's registers to `s`, keeping the rest of `base`
    /// (segments). Whatever stopped the guest, Linux must not run or
    /// restart a call of its own when it resumes: `orig_rax` = -1.
    fn resume_with(&self, base: &user_regs_struct, s: &X86State) -> Result<(), End> {
        let mut r = *base;
        [r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp] = [s.rax, s.rbx, s.rcx, s.rdx, s.rsi, s.rdi, s.rbp, s.rsp];
        [r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15] = [s.r8, s.r9, s.r10, s.r11, s.r12, s.r13, s.r14, s.r15];
        (r.rip, r.eflags) = (s.rip, s.eflags);
        r.orig_rax = u64::MAX;
        self.guest.set_regs(&r).map_err(|e| self.runner_error(&e))
    }

    /// xnurun could not go on: a runner failure, unless the guest was
    /// killed from outside meanwhile, which made the request fail.
    fn runner_error(&self, e: &str) -> End {
        match self.guest.killed_by() {
            Some(sig) => killed_from_outside(sig),
            None => End::Runner(e.to_string()),
        }
    }

    /// The guest dies of XNU signal `sig`; always `Err`.
    fn guest_killed(&self, r: &user_regs_struct, sig: i32, detail: Option<&str>, code: &[u8], why: &str) -> Result<(), End> {
        self.died(r, Death::new(sig, why), detail, code)
    }

    /// The guest dies as `death` says, at the instruction in `r`; always
    /// `Err`.
    fn died(&self, r: &user_regs_struct, death: Death, detail: Option<&str>, code: &[u8]) -> Result<(), End> {
        Err(End::Killed { death, pc: (self.pc_name(), r.rip), detail: detail.map(String::from), code: code.to_vec() })
    }
}

/// The guest was killed by host signal `host_sig` from outside.
fn killed_from_outside(host_sig: i32) -> End {
    let sig = match signal::async_from_linux(host_sig) {
        signal::Async::Kill(s) => s,
        signal::Async::Ignore => host_sig,
    };
    End::KilledFromOutside(sig)
}

/// A general register's value in `r`, for address arithmetic.
fn register(r: &user_regs_struct, reg: Register) -> Option<u64> {
    Some(match reg.full_register() {
        Register::RAX => r.rax,
        Register::RBX => r.rbx,
        Register::RCX => r.rcx,
        Register::RDX => r.rdx,
        Register::RSI => r.rsi,
        Register::RDI => r.rdi,
        Register::RBP => r.rbp,
        Register::RSP => r.rsp,
        Register::R8 => r.r8,
        Register::R9 => r.r9,
        Register::R10 => r.r10,
        Register::R11 => r.r11,
        Register::R12 => r.r12,
        Register::R13 => r.r13,
        Register::R14 => r.r14,
        Register::R15 => r.r15,
        Register::RIP => r.rip,
        Register::ES | Register::CS | Register::SS | Register::DS => 0,
        Register::FS => r.fs_base,
        Register::GS => r.gs_base,
        _ => return None,
    })
}

fn set_register(r: &mut user_regs_struct, reg: Register, v: u64) {
    let slot = match reg.full_register() {
        Register::RAX => &mut r.rax,
        Register::RBX => &mut r.rbx,
        Register::RCX => &mut r.rcx,
        Register::RDX => &mut r.rdx,
        Register::RSI => &mut r.rsi,
        Register::RDI => &mut r.rdi,
        Register::RBP => &mut r.rbp,
        Register::RSP => &mut r.rsp,
        Register::R8 => &mut r.r8,
        Register::R9 => &mut r.r9,
        Register::R10 => &mut r.r10,
        Register::R11 => &mut r.r11,
        Register::R12 => &mut r.r12,
        Register::R13 => &mut r.r13,
        Register::R14 => &mut r.r14,
        Register::R15 => &mut r.r15,
        _ => return,
    };
    *slot = v;
}

fn to_state(r: &user_regs_struct) -> X86State {
    X86State {
        rax: r.rax,
        rbx: r.rbx,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        rbp: r.rbp,
        rsp: r.rsp,
        r8: r.r8,
        r9: r.r9,
        r10: r.r10,
        r11: r.r11,
        r12: r.r12,
        r13: r.r13,
        r14: r.r14,
        r15: r.r15,
        rip: r.rip,
        eflags: r.eflags,
    }
}
