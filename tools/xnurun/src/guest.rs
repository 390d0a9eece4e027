//! The guest process: a forked child that maps the image where XNU would,
//! stops itself, and is then driven one instruction at a time with ptrace.
//!
//! The child is a copy of xnurun, so xnurun's own mappings stay in its
//! address space; they all sit above 4 GiB (a PIE, its libraries, its
//! stack), where a 64-bit image's hard page zero ends and an i386 guest in
//! 32-bit mode cannot reach. A 64-bit guest that jumps into them is not
//! caught: that is the one way this process differs from an XNU task.

use crate::loader::{Arch, Image, DFLSSIZ, MAXSSIZ, PAGE};
use crate::stack::InitialStack;
use nix::libc;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::uio::{process_vm_readv, RemoteIoVec};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use std::io::IoSliceMut;

/// Linux's 32-bit user code selector (`__USER32_CS`) and user data selector
/// (`__USER_DS`): with CS = 0x23 a 64-bit task runs 32-bit code.
const USER32_CS: u64 = 0x23;
const USER_DS: u64 = 0x2b;

/// One range of the guest's address space, for telling a fault on memory
/// XNU would have mapped (protection failure: SIGBUS) from one on memory
/// it would not have (invalid address: SIGSEGV).
#[derive(Debug, Clone, Copy)]
struct Region {
    start: u64,
    end: u64,
    xnu_mapped: bool,
}

/// Everything the child maps, prepared before fork so that the child only
/// calls mmap, copies and mprotect.
struct Mapping {
    start: u64,
    len: u64,
    prot: i32,
    /// Bytes to copy at `start + at`.
    data: Vec<u8>,
    at: u64,
    name: String,
}

pub struct Guest {
    pub pid: Pid,
    pub arch: Arch,
    regions: Vec<Region>,
}

/// What one single-step produced.
pub enum Step {
    Done,
    /// A synchronous fault: Linux signal, si_code, fault address.
    Fault { signo: i32, code: i32, addr: u64 },
    /// Some other signal arrived for the guest.
    Signal(i32),
    /// The child is gone (it should never leave by itself).
    Gone(String),
}

fn prot_of(vmprot: u32) -> i32 {
    let mut p = libc::PROT_NONE;
    if vmprot & 1 != 0 {
        p |= libc::PROT_READ;
    }
    if vmprot & 2 != 0 {
        p |= libc::PROT_WRITE;
    }
    if vmprot & 4 != 0 {
        p |= libc::PROT_EXEC;
    }
    p
}

fn mmap_min_addr() -> u64 {
    std::fs::read_to_string("/proc/sys/vm/mmap_min_addr")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65536)
}

/// Forks the guest, maps it and stops it at its entry point with the
/// registers XNU would give it. Errors are one line for the user.
pub fn spawn(image: &Image, file: &[u8], stack: &InitialStack) -> Result<Guest, String> {
    let min = mmap_min_addr();
    let mut maps = Vec::new();
    let mut regions = Vec::new();

    // Page zero: on XNU nothing can ever be mapped there. Reserving it
    // inaccessible here keeps stray pointers faulting as they would.
    let pz_start = min.max(PAGE).next_multiple_of(PAGE);
    if image.pagezero_end > pz_start {
        maps.push(Mapping {
            start: pz_start,
            len: image.pagezero_end - pz_start,
            prot: libc::PROT_NONE,
            data: Vec::new(),
            at: 0,
            name: "__PAGEZERO".into(),
        });
        regions.push(Region { start: 0, end: image.pagezero_end, xnu_mapped: false });
    }
    for seg in &image.segments {
        let (start, end) = seg.vm_range();
        if start < min {
            return Err(format!(
                "the image maps {} at 0x{start:x}, below this host's vm.mmap_min_addr ({min}); allow it with: sysctl -w vm.mmap_min_addr={start}",
                seg.name
            ));
        }
        // map_segment (mach_loader.c) maps the file's pages, from
        // trunc_page(fileoff) to round_page(fileoff + filesize), at
        // trunc_page(vmaddr): whole pages, not just filesize bytes at vmaddr.
        let lo = seg.fileoff as usize;
        let hi = (lo as u64).saturating_add(crate::loader::round_page(seg.filesize)).min(file.len() as u64) as usize;
        let mut data = file.get(lo..hi).unwrap_or(&[]).to_vec();
        // The loader refused file pages past the segment's own (see
        // loader.rs); never copy more than the mapping holds.
        data.truncate((end - start) as usize);
        maps.push(Mapping { start, len: end - start, prot: prot_of(seg.initprot), data, at: 0, name: seg.name.clone() });
        regions.push(Region { start, end, xnu_mapped: true });
    }
    if image.custom_stack {
        // The strings go into the segment that holds the stack pointer:
        // merge them into that segment's bytes before it is mapped.
        let m = maps
            .iter_mut()
            .find(|m| {
                m.prot & libc::PROT_WRITE != 0
                    && stack.sp >= m.start
                    && stack.sp.checked_add(stack.bytes.len() as u64).is_some_and(|end| end <= m.start + m.len)
            })
            .ok_or_else(|| "the initial stack does not fit below the custom stack pointer in its segment: exec_copyout_strings would fail".to_string())?;
        let need = (stack.sp - m.start - m.at) as usize + stack.bytes.len();
        if m.data.len() < need {
            m.data.resize(need, 0);
        }
        let off = (stack.sp - m.start - m.at) as usize;
        m.data[off..off + stack.bytes.len()].copy_from_slice(&stack.bytes);
    } else {
        // create_unix_stack: MAXSSIZ reserved below the top, only the
        // RLIMIT_STACK part (DFLSSIZ) accessible.
        let top = image.user_stack;
        let base = top - MAXSSIZ;
        maps.push(Mapping { start: base, len: MAXSSIZ - DFLSSIZ, prot: libc::PROT_NONE, data: Vec::new(), at: 0, name: "stack guard".into() });
        maps.push(Mapping {
            start: top - DFLSSIZ,
            len: DFLSSIZ,
            prot: libc::PROT_READ | libc::PROT_WRITE,
            at: stack.sp - (top - DFLSSIZ),
            data: stack.bytes.clone(),
            name: "stack".into(),
        });
        regions.push(Region { start: base, end: top, xnu_mapped: true });
        if stack.bytes.len() as u64 > DFLSSIZ {
            return Err("the initial stack is larger than the stack".into());
        }
    }

    // SAFETY: xnurun is single-threaded, so the child may allocate and use
    // anything the parent could.
    let parent = std::process::id() as libc::pid_t;
    match unsafe { fork() } {
        Err(e) => Err(format!("fork failed: {e}")),
        Ok(ForkResult::Child) => child(&maps, parent),
        Ok(ForkResult::Parent { child }) => {
            let guest = Guest { pid: child, arch: image.arch, regions };
            match waitpid(child, None) {
                Ok(WaitStatus::Stopped(_, Signal::SIGSTOP)) => {}
                Ok(WaitStatus::Exited(_, _)) => return Err("could not set up the guest's memory (see above)".into()),
                Ok(other) => return Err(format!("guest set-up ended unexpectedly: {other:?}")),
                Err(e) => return Err(format!("waitpid: {e}")),
            }
            // If xnurun dies, the guest must not run on untraced.
            ptrace::setoptions(child, ptrace::Options::PTRACE_O_EXITKILL).map_err(|e| format!("ptrace(SETOPTIONS): {e}"))?;
            guest.set_initial_regs(image, stack.sp)?;
            Ok(guest)
        }
    }
}

fn child(maps: &[Mapping], parent: libc::pid_t) -> ! {
    let fail = |msg: String| -> ! {
        crate::trace::line(&format!("xnurun: {msg}"));
        // SAFETY: leaving the forked child without running the parent's
        // atexit handlers or flushing its buffers twice.
        unsafe { libc::_exit(125) }
    };
    // Until the parent sets PTRACE_O_EXITKILL, nothing ties the guest's
    // life to xnurun's: if xnurun dies during set-up, the guest must not
    // linger, stopped, holding xnurun's descriptors open. Checked after
    // setting, in case the parent died before.
    // SAFETY: plain prctl and getppid calls.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 || libc::getppid() != parent {
            libc::_exit(125);
        }
    }
    for m in maps {
        // SAFETY: a fresh anonymous mapping at a fixed address that the
        // kernel refuses to place over an existing one.
        let p = unsafe {
            libc::mmap(
                m.start as *mut libc::c_void,
                m.len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED || p as u64 != m.start {
            let err = std::io::Error::last_os_error();
            fail(format!(
                "cannot map {} at 0x{:x}-0x{:x}: {err} (xnurun's own process may already use that range)",
                m.name,
                m.start,
                m.start + m.len
            ));
        }
        if !m.data.is_empty() {
            // SAFETY: `at + data.len()` lies inside the mapping just made
            // (checked by the loader and by spawn).
            unsafe { std::ptr::copy_nonoverlapping(m.data.as_ptr(), (m.start + m.at) as *mut u8, m.data.len()) };
        }
        // SAFETY: the range was mapped above.
        if unsafe { libc::mprotect(m.start as *mut libc::c_void, m.len as usize, m.prot) } != 0 {
            fail(format!("mprotect {}: {}", m.name, std::io::Error::last_os_error()));
        }
    }
    if let Err(e) = ptrace::traceme() {
        fail(format!("ptrace(TRACEME): {e}"));
    }
    // SAFETY: plain libc call; the parent takes over at this stop.
    unsafe {
        libc::raise(libc::SIGSTOP);
        // Only reached if the parent let the child run on by mistake.
        libc::_exit(125)
    }
}

impl Guest {
    fn set_initial_regs(&self, image: &Image, sp: u64) -> Result<(), String> {
        let mut r = self.regs()?;
        let t = &image.thread;
        r.rax = t.rax;
        r.rbx = t.rbx;
        r.rcx = t.rcx;
        r.rdx = t.rdx;
        r.rdi = t.rdi;
        r.rsi = t.rsi;
        r.rbp = t.rbp;
        r.r8 = t.r8;
        r.r9 = t.r9;
        r.r10 = t.r10;
        r.r11 = t.r11;
        r.r12 = t.r12;
        r.r13 = t.r13;
        r.r14 = t.r14;
        r.r15 = t.r15;
        r.rip = image.entry;
        r.rsp = sp;
        // set_thread_state64/32 (osfmk/i386/pcb.c) keep only the flags a
        // user may set and force IF and bit 1 (EFL_USER_SET); TF is dropped
        // here as well, since xnurun itself single-steps the guest.
        const USER_CLEAR: u64 = 0x3000 | 0x4000 | 0x10000 | 0x20000 | 0x80000 | 0x100000 | 0x100;
        r.eflags = (t.rflags & 0x3f_ffff & !USER_CLEAR) | 0x202;
        r.fs_base = 0;
        r.gs_base = 0;
        if image.arch == Arch::I386 {
            r.cs = USER32_CS;
            r.ss = USER_DS;
            r.ds = USER_DS;
            r.es = USER_DS;
            r.fs = 0;
            r.gs = 0;
        }
        self.set_regs(&r)
    }

    pub fn regs(&self) -> Result<libc::user_regs_struct, String> {
        ptrace::getregs(self.pid).map_err(|e| format!("ptrace(GETREGS): {e}"))
    }

    pub fn set_regs(&self, r: &libc::user_regs_struct) -> Result<(), String> {
        ptrace::setregs(self.pid, *r).map_err(|e| format!("ptrace(SETREGS): {e}"))
    }

    /// Up to 16 instruction bytes at `addr`, read as the CPU would fetch
    /// them (PEEKTEXT ignores protections, so execute-only pages work);
    /// fewer where the memory ends.
    pub fn code_at(&self, addr: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        let mut a = addr;
        while out.len() < 16 {
            match ptrace::read(self.pid, a as ptrace::AddressType) {
                Ok(w) => out.extend_from_slice(&w.to_le_bytes()),
                Err(_) => {
                    // The word straddles the end of mapped memory: take the
                    // bytes before it one by one.
                    for b in 0..8u64 {
                        let Some(x) = a.checked_add(b) else { break };
                        match ptrace::read(self.pid, x as ptrace::AddressType) {
                            Ok(w) => out.push(w.to_le_bytes()[0]),
                            Err(_) => break,
                        }
                    }
                    break;
                }
            }
            a = a.wrapping_add(8);
        }
        out.truncate(16);
        out
    }

    /// Reads guest memory as `copyin` would: honouring the guest's page
    /// protections. Returns how many bytes were readable.
    pub fn read_mem(&self, addr: u64, buf: &mut [u8]) -> usize {
        if buf.is_empty() {
            return 0;
        }
        if self.arch == Arch::I386 && addr.checked_add(buf.len() as u64).is_none_or(|e| e > 1 << 32) {
            return 0;
        }
        let len = buf.len();
        let remote = [RemoteIoVec { base: addr as usize, len }];
        let mut local = [IoSliceMut::new(buf)];
        process_vm_readv(self.pid, &mut local, &remote).unwrap_or_default()
    }

    pub fn read_u32(&self, addr: u64) -> Option<u32> {
        let mut b = [0u8; 4];
        (self.read_mem(addr, &mut b) == 4).then(|| u32::from_le_bytes(b))
    }

    pub fn step(&self) -> Step {
        if let Err(e) = ptrace::step(self.pid, None) {
            return Step::Gone(format!("ptrace(SINGLESTEP): {e}"));
        }
        self.wait()
    }

    fn wait(&self) -> Step {
        match waitpid(self.pid, None) {
            Ok(WaitStatus::Stopped(_, Signal::SIGTRAP)) => Step::Done,
            Ok(WaitStatus::Stopped(_, sig)) => {
                let signo = sig as i32;
                match signo {
                    libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE => match ptrace::getsiginfo(self.pid) {
                        // SAFETY: si_addr is valid for these fault signals.
                        Ok(si) => Step::Fault { signo, code: si.si_code, addr: unsafe { si.si_addr() } as u64 },
                        Err(_) => Step::Fault { signo, code: 0, addr: 0 },
                    },
                    _ => Step::Signal(signo),
                }
            }
            Ok(WaitStatus::Exited(_, c)) => Step::Gone(format!("the guest process exited by itself ({c})")),
            Ok(WaitStatus::Signaled(_, s, _)) => Step::Gone(format!("the guest process was killed by host signal {s}")),
            Ok(other) => Step::Gone(format!("unexpected wait status {other:?}")),
            Err(e) => Step::Gone(format!("waitpid: {e}")),
        }
    }

    /// Whether `addr` lies in memory XNU would have mapped for this image.
    pub fn xnu_mapped(&self, addr: u64) -> bool {
        self.regions.iter().any(|r| r.xnu_mapped && addr >= r.start && addr < r.end)
    }

    pub fn kill(&self) {
        let _ = ptrace::kill(self.pid);
        let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
        let _ = waitpid(self.pid, None);
    }
}
