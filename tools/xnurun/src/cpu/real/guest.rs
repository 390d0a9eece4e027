//! The guest process: the real-CPU backend. A child of xnurun that holds
//! only what XNU would map, runs on the CPU, and cannot make a Linux system
//! call: the kernel stops every call it attempts before running it.
//!
//! Set-up, before the guest's first instruction:
//! 1. The child, once xnurun traces it (PTRACE_SEIZE), execs
//!    `setup_program.rs`'s set-up program, written for this image, from a
//!    memfd, with address randomization off and no file descriptor but
//!    that memfd and the image's: nothing of xnurun's (code, libc, heap,
//!    descriptors) survives the exec.
//! 2. The program, from its entry, moves the vDSO out of XNU's range (so
//!    Linux's 32-bit landing pad, taken from the vDSO's address, can never
//!    be guest memory), unmaps everything Linux gave it (stack, vvar,
//!    vDSO) and maps what XNU would: the image's segments and the stack,
//!    their bytes mapped privately from the memfd, which holds them after
//!    the program; then it closes the memfd.
//! 3. It sets PR_SET_NO_NEW_PRIVS and installs the seccomp filter. From
//!    then on every system call stops for xnurun first
//!    (PTRACE_O_TRACESECCOMP); the one xnurun lets through is the last call
//!    of set-up, which unmaps the set-up program itself.
//! 4. xnurun gives the registers XNU's `LC_UNIXTHREAD` handling would, with
//!    `orig_rax` = -1 so that Linux never "restarts" anything into a call.
//!
//! What remains that XNU would not map: the vsyscall page, which no process
//! can unmap. Calling into it enters Linux's vsyscall emulation, which
//! seccomp stops like any other call; reading it faults.

use super::child::{child, ChildArg, CHILD_NO_EXEC, CHILD_NO_FCNTL, CHILD_ORPHANED};
use super::setup_program as stub;
use crate::image::address_space::{self, Layout, Mapping};
use crate::image::stack::InitialStack;
use crate::image::file::ImageFile;
use crate::image::{Image, Start};
use crate::xnu::x86::state::user_eflags;
use crate::xnu::Arch;
use nix::libc::{self, user_regs_struct};
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::uio::{process_vm_readv, RemoteIoVec};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::borrow::Cow;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU32, Ordering};

/// Linux's 32-bit user code selector (`__USER32_CS`) and user data selector
/// (`__USER_DS`): with CS = 0x23 a 64-bit task runs 32-bit code.
pub const USER32_CS: u64 = 0x23;
pub const USER64_CS: u64 = 0x33;
const USER_DS: u64 = 0x2b;

/// The vsyscall page (arch/x86/entry/vsyscall): the one Linux mapping no
/// process can remove.
pub const VSYSCALL: u64 = 0xffff_ffff_ff60_0000;

const EFLAGS_ID: u64 = 0x20_0000;

pub struct Guest {
    pub pid: Pid,
    pub arch: Arch,
    /// What XNU mapped (the bytes dropped once in the guest): which
    /// faults are protection failures, and where the stack zone is.
    layout: Layout,
}

/// Why the guest stopped.
pub enum Stop {
    /// The seccomp filter stopped a system call before Linux ran it;
    /// `abi32` when it entered by a 32-bit gate (`int 0x80`, `sysenter`,
    /// `syscall` in compatibility mode).
    Syscall { abi32: bool },
    /// One single-step finished.
    Stepped,
    /// A signal for the guest: Linux signal, si_code, fault address.
    Signal { signo: i32, code: i32, addr: u64 },
    /// The guest process was killed from outside (host signal number).
    Killed(i32),
    /// The child is gone or ptrace failed: a runner failure.
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

const PAGE: u64 = address_space::HOST_PAGE;

/// Where each piece of a mapping comes from, for the set-up program: the
/// image file's pages are mapped from the image's own descriptor
/// (copy-on-write: only what the guest touches costs memory), anything
/// else that is not zero from the set-up file (`memfd`) at `offset`.
enum Source {
    Image { fd: i32, offset: u64 },
    Memfd { offset: u64 },
}

/// One mmap of the set-up program: `len` bytes at `addr` from `source`.
struct Piece {
    addr: u64,
    len: u64,
    source: Source,
}

/// Bytes to write into the set-up file at an offset: the overlay pages
/// as the layout holds them, or bytes copied out of the image.
type Blobs<'a> = Vec<(u64, Cow<'a, [u8]>)>;

/// The file-backed pieces of every mapping, in the order they must be
/// mapped (the file pages first, then the overlay pages over them), and
/// the set-up file's bytes past `from` that they need.
fn pieces<'a>(maps: &'a [Mapping], file: &ImageFile, from: u64) -> Result<(Vec<Vec<Piece>>, Blobs<'a>), String> {
    let mut next = from.next_multiple_of(PAGE);
    let mut blobs = Vec::new();
    let mut out = Vec::new();
    for m in maps {
        let mut ps = Vec::new();
        if let Some((offset, len)) = m.file {
            match file.mappable(offset) {
                Some((fd, offset)) => ps.push(Piece { addr: m.start, len, source: Source::Image { fd, offset } }),
                None => {
                    // Not page-aligned in the file (a universal file's
                    // slice): the bytes are copied into the set-up file.
                    let mut b = vec![0u8; len as usize];
                    let n = file.len.saturating_sub(offset).min(len) as usize;
                    file.read_at(offset, &mut b[..n])?;
                    ps.push(Piece { addr: m.start, len, source: Source::Memfd { offset: next } });
                    blobs.push((next, Cow::Owned(b)));
                    next += len;
                }
            }
        }
        // Runs of consecutive overlay pages, one mmap each.
        let mut i = 0;
        while i < m.overlay.len() {
            let start = m.overlay[i].0;
            let mut j = i;
            while j + 1 < m.overlay.len() && m.overlay[j + 1].0 == m.overlay[j].0 + PAGE {
                j += 1;
            }
            ps.push(Piece { addr: start, len: (j + 1 - i) as u64 * PAGE, source: Source::Memfd { offset: next } });
            for (_, bytes) in &m.overlay[i..=j] {
                blobs.push((next, Cow::Borrowed(bytes.as_slice())));
                next += PAGE;
            }
            i = j + 1;
        }
        out.push(ps);
    }
    Ok((out, blobs))
}

/// What one call of the set-up program does, in words for an error
/// message; written out only when a call fails.
enum Step {
    Text(&'static str),
    /// "mapping {what}{how}{name} at {start}-{end}"
    Map { what: &'static str, how: &'static str, name: String, start: u64, end: u64 },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Step::Text(s) => f.write_str(s),
            Step::Map { what, how, name, start, end } => write!(f, "mapping {what}{how}{name} at 0x{start:x}-0x{end:x}"),
        }
    }
}

/// The set-up program for these mappings, whose bytes come as `pieces`
/// says (`memfd` and `image_fd` are the descriptors it maps them from),
/// and what each of its calls does, for error messages.
fn set_up_program(maps: &[Mapping], pieces: &[Vec<Piece>], memfd: i32, image_fd: i32, set_id: bool) -> (stub::Program, Vec<Step>) {
    let call = |nr: i64, args: [u64; 6]| stub::Call { nr: nr as u64, args };
    let mut steps = Vec::new();
    // The vDSO goes first, out of XNU's range: Linux's 32-bit landing pad
    // follows it there (vdso_mremap, arch/x86/entry/vdso/vma.c), so it can
    // never be guest memory; the program then unmaps it with everything
    // else. The guest's vDSO is the same image as xnurun's own.
    let vdso = vdso_len();
    if vdso.is_some() {
        steps.push(Step::Text("moving the vDSO"));
    }
    // Everything below the set-up page goes now; everything above it (the
    // parked vDSO, Linux's stack) goes with it in the program's last call.
    let mut calls = vec![call(SYS_MUNMAP, [0, stub::BASE, 0, 0, 0, 0])];
    steps.push(Step::Text("unmapping what Linux mapped below the set-up page"));
    // Each mapping is zero-fill at exactly the address XNU uses; its file
    // pages map the image privately over it, as map_segment maps the image
    // file (bsd/kern/mach_loader.c), and the overlay pages go over those.
    let anon = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE | libc::MAP_NORESERVE) as u64;
    let over = (libc::MAP_PRIVATE | libc::MAP_FIXED) as u64;
    let source = |p: &Piece| match p.source {
        Source::Image { fd, offset } => (fd as u64, offset, "the image's pages "),
        Source::Memfd { offset } => (memfd as u64, offset, "pages of its own "),
    };
    for (m, ps) in maps.iter().zip(pieces) {
        let prot = prot_of(m.prot) as u64;
        // A mapping its file pages cover whole needs no zero-fill below
        // them: one call, still refusing to overlap anything.
        let whole = ps.first().filter(|p| p.addr == m.start && p.len == m.len);
        if let Some(p) = whole {
            let (fd, offset, what) = source(p);
            calls.push(call(SYS_MMAP, [m.start, m.len, prot, anon & !(libc::MAP_ANONYMOUS as u64), fd, offset]));
            steps.push(Step::Map { what, how: "as ", name: m.name.clone(), start: m.start, end: m.start + m.len });
        } else {
            calls.push(call(SYS_MMAP, [m.start, m.len, prot, anon, u64::MAX, 0]));
            steps.push(Step::Map { what: "", how: "", name: m.name.clone(), start: m.start, end: m.start + m.len });
        }
        for p in &ps[usize::from(whole.is_some())..] {
            let (fd, offset, what) = source(p);
            calls.push(call(SYS_MMAP, [p.addr, p.len, prot, over, fd, offset]));
            steps.push(Step::Map { what, how: "over ", name: m.name.clone(), start: p.addr, end: p.addr + p.len });
        }
    }
    for (fd, what) in [(memfd, "closing the set-up file"), (image_fd, "closing the image file")] {
        calls.push(call(SYS_CLOSE, [fd as u64, 0, 0, 0, 0, 0]));
        steps.push(Step::Text(what));
    }
    const SECCOMP_SET_MODE_FILTER: u64 = 1;
    calls.push(call(SYS_PRCTL, [libc::PR_SET_NO_NEW_PRIVS as u64, 1, 0, 0, 0, 0]));
    calls.push(call(SYS_SECCOMP, [SECCOMP_SET_MODE_FILTER, 0, stub::fprog_addr(), 0, 0, 0]));
    steps.push(Step::Text("prctl(PR_SET_NO_NEW_PRIVS)"));
    steps.push(Step::Text("installing the seccomp filter (this kernel needs CONFIG_SECCOMP_FILTER)"));
    (stub::program(set_id, vdso, &calls), steps)
}

/// The size of the vDSO's mapping, from xnurun's own: vdso2c makes it the
/// image file's length rounded up to a page (`image->size`, which
/// `map_vdso` maps), and the section headers end the file. None when this
/// kernel maps no vDSO.
fn vdso_len() -> Option<u64> {
    // SAFETY: getauxval only reads the auxiliary vector.
    let at = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) } as usize;
    if at == 0 {
        return None;
    }
    // SAFETY: AT_SYSINFO_EHDR is the address of the vDSO's ELF header,
    // mapped readable for this process's whole life.
    let (shoff, shentsize, shnum) = unsafe {
        let e = at as *const u8;
        (e.add(0x28).cast::<u64>().read_unaligned(), e.add(0x3a).cast::<u16>().read_unaligned(), e.add(0x3c).cast::<u16>().read_unaligned())
    };
    Some((shoff + u64::from(shentsize) * u64::from(shnum)).next_multiple_of(4096))
}

/// Linux's x86_64 system call numbers used during set-up.
const SYS_CLOSE: i64 = 3;
const SYS_MMAP: i64 = 9;
const SYS_MUNMAP: i64 = 11;
const SYS_PRCTL: i64 = 157;
const SYS_SECCOMP: i64 = 317;

/// Why the guest could not be started.
pub enum SpawnError {
    /// One line for the user.
    Failed(String),
    /// A signal from outside killed it during set-up (the host's number).
    Killed(i32),
}

impl From<String> for SpawnError {
    fn from(e: String) -> SpawnError {
        SpawnError::Failed(e)
    }
}

/// Forks the guest, maps it and stops it at its entry point with the
/// registers XNU would give it.
pub fn spawn(image: &Image, file: &ImageFile, stack: &InitialStack) -> Result<Guest, SpawnError> {
    let read_at = |off: u64, buf: &mut [u8]| file.read_at(off, buf);
    let layout = address_space::plan(image, &read_at, stack, 0)?;
    let maps = &layout.maps;
    share_one_cpu();
    // One file holds the set-up program and, after it, the pages that are
    // neither the image's nor zero. It and the image file are open in the
    // child across the exec, and closed by the program.
    // SAFETY: plain memfd_create with a NUL-terminated name.
    // Not close-on-exec: the one exec xnurun makes is the guest's, which
    // needs it.
    let memfd = unsafe { libc::memfd_create(c"xnurun-guest".as_ptr(), 0) };
    if memfd < 0 {
        return Err(format!("memfd_create: {}", std::io::Error::last_os_error()).into());
    }
    // SAFETY: memfd is a fresh descriptor that nothing else owns.
    let memfd = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(memfd) });
    // The pages start where the set-up program's room ends: it may take no
    // more than [BASE, VDSO_PARK), which the vDSO's move would otherwise
    // overwrite.
    let room = stub::VDSO_PARK - stub::BASE;
    let (pieces, blobs) = pieces(maps, file, room)?;
    // EFLAGS.ID as the thread state asks (set_thread_state64 keeps it).
    let set_id = matches!(&image.start, Start::UnixThread(t) if user_eflags(t.eflags) & EFLAGS_ID != 0);
    let (program, steps) = set_up_program(maps, &pieces, memfd.as_raw_fd(), file.fd(), set_id);
    if program.elf.len() as u64 > room {
        return Err(format!("the image needs {} set-up calls, more than the set-up program has room for", steps.len()).into());
    }
    let write = || -> std::io::Result<()> {
        memfd.write_all_at(&program.elf, 0)?;
        for (offset, bytes) in &blobs {
            memfd.write_all_at(bytes, *offset)?;
        }
        Ok(())
    };
    write().map_err(|e| format!("writing the set-up file: {e}"))?;

    // The child shares xnurun's memory until it execs (CLONE_VM, as
    // posix_spawn's vfork does), so no page table is copied. Unlike a
    // vfork, xnurun runs on meanwhile: it attaches with PTRACE_SEIZE, which
    // sets the trace options at once (a PTRACE_TRACEME child stops at its
    // exec for them: one stop and three ptrace calls more a run), and only
    // then lets the child exec (`seized`). The child runs on a stack in
    // this frame, which xnurun leaves only once the child has exec'd or
    // ended, and makes its calls without the C library, whose errno is
    // xnurun's too.
    let seized = AtomicU32::new(0);
    let mut arg = ChildArg { memfd: memfd.as_raw_fd(), image_fd: file.fd(), parent: std::process::id() as libc::pid_t, seized: &seized };
    // On xnurun's own stack, as posix_spawn does it: pages this deep are
    // already in, so the child's calls cost no fault.
    let mut child_stack = [std::mem::MaybeUninit::<u8>::uninit(); 8 * 1024];
    // SAFETY: the stack and `arg` outlive the child's use of them: this
    // function returns only after the child's first stop, which comes
    // after its exec, or after its end (`set_up`, `kill`).
    let pid = unsafe {
        let top = child_stack.as_mut_ptr().add(child_stack.len()).cast::<libc::c_void>();
        libc::clone(child, top, libc::CLONE_VM | libc::SIGCHLD, (&raw mut arg).cast())
    };
    drop(memfd);
    if pid < 0 {
        return Err(format!("clone failed: {}", std::io::Error::last_os_error()).into());
    }
    let mut g = Guest { pid: Pid::from_raw(pid), arch: image.arch, layout };
    let opts = ptrace::Options::PTRACE_O_EXITKILL | ptrace::Options::PTRACE_O_TRACESECCOMP | ptrace::Options::PTRACE_O_TRACESYSGOOD;
    if let Err(e) = ptrace::seize(g.pid, opts) {
        // Killed from outside before it could be traced (EPERM: exiting).
        if let Some(sig) = g.killed_by() {
            return Err(SpawnError::Killed(sig));
        }
        g.kill();
        return Err(format!("xnurun could not trace the guest process (ptrace(PTRACE_SEIZE): {e}; a container's seccomp profile, or kernel.yama.ptrace_scope 3?)").into());
    }
    seized.store(1, Ordering::Release);
    // SAFETY: wakes the child's wait on `seized`, if it waits.
    unsafe { libc::syscall(libc::SYS_futex, seized.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, 1) };
    for m in &mut g.layout.maps {
        m.overlay = Vec::new();
    }
    match g.set_up(image, &program, &steps, stack.sp) {
        Ok(()) => Ok(g),
        // A SIGKILL from outside during the set-up makes the next request
        // fail: the guest's death is the answer then.
        Err(SpawnError::Failed(e)) => match g.killed_by() {
            Some(sig) => Err(SpawnError::Killed(sig)),
            None => {
                g.kill();
                Err(SpawnError::Failed(e))
            }
        },
        Err(e) => {
            g.kill();
            Err(e)
        }
    }
}

/// Keeps xnurun, and the guest it is about to fork, on the CPU xnurun is
/// running on. The two never run at once: each stop hands the CPU from one
/// to the other. On one CPU that hand-off is a plain context switch; across
/// two it is a wake-up by interrupt, which on the VMs this project is
/// measured on costs more than the guest's whole hello (bench/results.md).
/// The set it narrows is the one xnurun was given (taskset, cpusets); if
/// the kernel refuses, both stay where the scheduler puts them.
fn share_one_cpu() {
    // SAFETY: getcpu and sched_setaffinity only read and set this
    // thread's CPU and affinity; `cpu` and `set` are plain data.
    unsafe {
        // The call itself, not sched_getcpu: musl's looks the vDSO's
        // symbol table up first, two page faults more than the call.
        let mut cpu: libc::c_uint = 0;
        if libc::syscall(libc::SYS_getcpu, &raw mut cpu, std::ptr::null_mut::<libc::c_uint>(), std::ptr::null_mut::<libc::c_void>()) != 0 {
            return;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// What the child's exit status says went wrong before its exec.
fn child_failure(status: i32) -> String {
    match status {
        CHILD_ORPHANED => "the guest process could not tie its life to xnurun's (prctl(PR_SET_PDEATHSIG))".into(),
        CHILD_NO_FCNTL => "the guest process could not keep the set-up file open across its exec (fcntl)".into(),
        s if s > CHILD_NO_EXEC => {
            let e = s - CHILD_NO_EXEC;
            let hint = if e == libc::EACCES || e == libc::EPERM { " (the set-up program runs from a memfd: is vm.memfd_noexec 0?)" } else { "" };
            format!("could not exec the set-up program: {}{hint}", errno_text(e))
        }
        s => format!("the guest process exited with {s} before its exec"),
    }
}

fn is_err(rax: u64) -> Option<i32> {
    let v = rax as i64;
    (-4095..0).contains(&v).then_some(-v as i32)
}

fn errno_text(e: i32) -> String {
    std::io::Error::from_raw_os_error(e).to_string()
}

impl Guest {
    fn set_up(&mut self, image: &Image, program: &stub::Program, steps: &[Step], sp: u64) -> Result<(), SpawnError> {
        // The program runs from its entry to its last call, which removes
        // the set-up page: the filter now stops it like any other, and
        // xnurun lets it run.
        match waitpid(self.pid, None) {
            Ok(WaitStatus::PtraceEvent(_, _, libc::PTRACE_EVENT_SECCOMP)) => {}
            Ok(WaitStatus::Exited(_, status)) => return Err(child_failure(status).into()),
            Ok(WaitStatus::Stopped(_, Signal::SIGTRAP)) => return Err(self.program_failure(program, steps).into()),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Err(SpawnError::Killed(sig as i32)),
            Ok(other) => return Err(format!("the guest's set-up stopped unexpectedly ({other:?})").into()),
            Err(e) => return Err(format!("waitpid: {e}").into()),
        }
        ptrace::syscall(self.pid, None).map_err(|e| format!("ptrace(SYSCALL): {e}"))?;
        match waitpid(self.pid, None) {
            Ok(WaitStatus::PtraceSyscall(_)) => {}
            Ok(WaitStatus::Signaled(_, sig, _)) => return Err(SpawnError::Killed(sig as i32)),
            other => return Err(format!("unexpected stop after the last set-up call ({other:?})").into()),
        }
        let regs = self.regs()?;
        if let Some(e) = is_err(regs.rax) {
            return Err(format!("unmapping the set-up page: {}", errno_text(e)).into());
        }
        Ok(self.set_initial_regs(regs, image, sp)?)
    }

    /// The message for a set-up call that failed: which, and its errno.
    fn program_failure(&self, program: &stub::Program, steps: &[Step]) -> String {
        let Ok(r) = self.regs() else { return "the guest's set-up failed".into() };
        let which = program.failed.iter().position(|&f| f == r.rip).and_then(|i| steps.get(i)).map_or("a set-up call".to_string(), Step::to_string);
        let e = is_err(r.rax).unwrap_or(0);
        if which == "moving the vDSO" {
            return format!("{which}: {} (its size, {} bytes, read from xnurun's own vDSO, does not match the guest's)", errno_text(e), vdso_len().unwrap_or(0));
        }
        if (e == libc::EPERM || e == libc::EACCES) && which.starts_with("mapping") {
            return format!("{which}: {} (below vm.mmap_min_addr? allow it with: sysctl -w vm.mmap_min_addr=4096)", errno_text(e));
        }
        format!("{which}: {}", errno_text(e))
    }

    /// `r`: the registers after the last set-up call.
    fn set_initial_regs(&self, mut r: user_regs_struct, image: &Image, sp: u64) -> Result<(), String> {
        let Start::UnixThread(t) = &image.start else { return Err("an x86 image starts from LC_UNIXTHREAD".into()) };
        [r.rax, r.rbx, r.rcx, r.rdx, r.rdi, r.rsi, r.rbp] = [t.rax, t.rbx, t.rcx, t.rdx, t.rdi, t.rsi, t.rbp];
        [r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15] = [t.r8, t.r9, t.r10, t.r11, t.r12, t.r13, t.r14, t.r15];
        r.rip = image.entry;
        r.rsp = sp;
        // Not in a system call: nothing for Linux to restart, whatever rax
        // the thread state holds (-513 ERESTARTNOINTR would otherwise send
        // the guest back 2 bytes into a call).
        r.orig_rax = u64::MAX;
        r.eflags = user_eflags(t.eflags);
        r.fs_base = 0;
        r.gs_base = 0;
        r.ss = USER_DS;
        r.ds = 0;
        r.es = 0;
        r.fs = 0;
        r.gs = 0;
        r.cs = USER64_CS;
        if image.arch == Arch::I386 {
            r.cs = USER32_CS;
            r.ds = USER_DS;
            r.es = USER_DS;
        }
        self.set_regs(&r)
    }

    pub fn regs(&self) -> Result<user_regs_struct, String> {
        ptrace::getregs(self.pid).map_err(|e| format!("ptrace(GETREGS): {e}"))
    }

    pub fn set_regs(&self, r: &user_regs_struct) -> Result<(), String> {
        ptrace::setregs(self.pid, *r).map_err(|e| format!("ptrace(SETREGS): {e}"))
    }

    /// Up to 16 instruction bytes at `addr`, read as the CPU would fetch
    /// them (PEEKTEXT ignores protections, so execute-only pages work);
    /// fewer where the memory ends.
    pub fn code_at(&self, addr: u64) -> Vec<u8> {
        // Aligned words: an aligned 8-byte read never crosses into the
        // next page, so the last bytes before an unmapped page are read.
        let mut out = Vec::with_capacity(16);
        let mut a = addr;
        while out.len() < 16 {
            let Ok(w) = ptrace::read(self.pid, (a & !7) as ptrace::AddressType) else { break };
            out.extend_from_slice(&w.to_le_bytes()[(a & 7) as usize..]);
            match (a & !7).checked_add(8) {
                Some(next) => a = next,
                None => break,
            }
        }
        out.truncate(16);
        out
    }

    /// Reads guest memory as `copyin` would: honouring the guest's page
    /// protections. Returns how many bytes were readable from the start.
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

    /// Writes guest memory as `copyout` would: honouring the guest's page
    /// protections (process_vm_writev does). Returns how many bytes, from
    /// the start, were written.
    pub fn write_mem(&self, addr: u64, data: &[u8]) -> usize {
        if data.is_empty() || (self.arch == Arch::I386 && addr.checked_add(data.len() as u64).is_none_or(|e| e > 1 << 32)) {
            return 0;
        }
        let remote = [RemoteIoVec { base: addr as usize, len: data.len() }];
        nix::sys::uio::process_vm_writev(self.pid, &[std::io::IoSlice::new(data)], &remote).unwrap_or_default()
    }

    /// How many bytes from `addr`, up to `len`, the guest can write, from
    /// its own mappings as /proc/PID/maps lists them.
    pub fn writable_len(&self, addr: u64, len: u64) -> u64 {
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", self.pid)).unwrap_or_default();
        let ranges: Vec<(u64, u64)> = maps
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (a, b) = f.next()?.split_once('-')?;
                f.next()?.contains('w').then_some(())?;
                Some((u64::from_str_radix(a, 16).ok()?, u64::from_str_radix(b, 16).ok()?))
            })
            .collect();
        let mut n = 0u64;
        while n < len {
            let a = addr.wrapping_add(n);
            let Some(&(_, end)) = ranges.iter().find(|r| a >= r.0 && a < r.1) else { break };
            n += (end - a).min(len - n);
        }
        n
    }

    /// Lets the guest run, natively or for one instruction, and reports
    /// why it stopped. Any signal that stopped it before is not delivered:
    /// xnurun decides what every signal does.
    pub fn resume(&self, step: bool) -> Stop {
        let r = if step { ptrace::step(self.pid, None) } else { ptrace::cont(self.pid, None) };
        match r {
            // Not in a stop: a SIGKILL from outside ended the stop (ptrace(2):
            // ESRCH), and its death is the next thing to wait for.
            Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => return Stop::Gone(format!("ptrace({}): {e}", if step { "SINGLESTEP" } else { "CONT" })),
            Ok(()) => {}
        }
        self.wait(step)
    }

    /// The signal the guest died of, reaped here, if it is dying or dead:
    /// a SIGKILL from outside ends a guest even in a stop, and every
    /// ptrace request xnurun makes after it fails. Asked only once a
    /// request has failed; waits at most 100 ms for the exit to finish (a
    /// guest still alive then is left in its stop, for `kill`).
    pub fn killed_by(&self) -> Option<i32> {
        use nix::sys::wait::WaitPidFlag;
        for _ in 0..100 {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
                Ok(WaitStatus::Signaled(_, s, _)) => return Some(s as i32),
                Ok(WaitStatus::StillAlive) => {}
                _ => return None,
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        None
    }

    fn wait(&self, step: bool) -> Stop {
        match waitpid(self.pid, None) {
            Ok(WaitStatus::PtraceEvent(_, _, libc::PTRACE_EVENT_SECCOMP)) => match ptrace::getevent(self.pid) {
                Ok(data) => Stop::Syscall { abi32: data as u64 == stub::ABI_32 },
                Err(e) => Stop::Gone(format!("ptrace(GETEVENTMSG): {e}")),
            },
            Ok(WaitStatus::Stopped(_, sig)) => {
                let signo = sig as i32;
                let (code, addr) = match ptrace::getsiginfo(self.pid) {
                    // SAFETY: si_addr is defined for the fault signals and
                    // read only for them.
                    Ok(si) => (si.si_code, if matches!(signo, libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE) { (unsafe { si.si_addr() }) as u64 } else { 0 }),
                    Err(_) => (0, 0),
                };
                // A finished single-step is SIGTRAP with TRAP_TRACE; a
                // breakpoint of the guest's own has another code.
                const TRAP_TRACE: i32 = 2;
                if step && signo == libc::SIGTRAP && code == TRAP_TRACE {
                    return Stop::Stepped;
                }
                Stop::Signal { signo, code, addr }
            }
            Ok(WaitStatus::Signaled(_, s, _)) => Stop::Killed(s as i32),
            Ok(WaitStatus::Exited(_, c)) => Stop::Gone(format!("the guest process exited by itself ({c})")),
            Ok(other) => Stop::Gone(format!("unexpected wait status {other:?}")),
            Err(e) => Stop::Gone(format!("waitpid: {e}")),
        }
    }

    /// `[start, end)` of every mapping the guest has, whatever its
    /// protection but none.
    pub fn mapped_ranges(&self) -> Vec<(u64, u64)> {
        self.layout.maps.iter().filter(|m| m.prot != 0).map(|m| (m.start, m.start + m.len)).collect()
    }

    /// Whether `addr` lies in memory XNU would have mapped for this image.
    pub fn xnu_mapped(&self, addr: u64) -> bool {
        self.layout.mapped(addr)
    }

    /// Whether the CPU may fetch `len` bytes at `addr`: mapped with
    /// execute permission (the guest cannot change its mappings).
    pub fn executable(&self, addr: u64, len: u64) -> bool {
        let Some(end) = addr.checked_add(len) else { return false };
        self.layout.maps.iter().any(|m| m.prot & 4 != 0 && addr >= m.start && end <= m.start + m.len)
    }

    /// Whether `addr` is in the zone `handle_ux_exception` treats as the
    /// stack (bsd/uxkern/ux_exception.c).
    pub fn in_stack_zone(&self, addr: u64) -> bool {
        self.layout.in_stack_zone(addr)
    }

    /// Kills the guest and reaps it: a zombie left behind would be handed
    /// to whoever adopts xnurun's orphans, which need not reap it (a
    /// container's first process, a subreaper). The wait costs the guest's
    /// exit, about 60 µs here (bench/results.md).
    pub fn kill(&self) {
        let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
        loop {
            match waitpid(self.pid, Some(nix::sys::wait::WaitPidFlag::__WALL)) {
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;


    #[test]
    fn a_child_that_failed_before_its_exec_says_which_step() {
        let exec = child_failure(CHILD_NO_EXEC + libc::EACCES);
        assert!(exec.starts_with("could not exec the set-up program: Permission denied"), "{exec}");
        assert!(exec.contains("vm.memfd_noexec"), "{exec}");
        assert!(!child_failure(CHILD_NO_EXEC + libc::ENOMEM).contains("memfd_noexec"));
        assert!(child_failure(CHILD_ORPHANED).contains("PR_SET_PDEATHSIG"));
        assert!(child_failure(CHILD_NO_FCNTL).contains("fcntl"));
    }

    #[test]
    fn the_vdso_size_read_from_its_headers_is_the_size_linux_mapped() {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let mapped = maps.lines().filter(|l| l.ends_with("[vdso]")).find_map(|l| {
            let (a, b) = l.split_once(' ')?.0.split_once('-')?;
            Some(u64::from_str_radix(b, 16).ok()? - u64::from_str_radix(a, 16).ok()?)
        });
        // Both absent would prove nothing: a kernel here maps a vDSO.
        assert!(mapped.is_some(), "no [vdso] in {maps}");
        assert_eq!(vdso_len(), mapped, "{maps}");
    }

    /// Every call of the set-up program has its words for the error
    /// message, in call order: a mapping its file pages cover whole is one
    /// call, any other a zero-fill and what goes over it.
    #[test]
    fn each_set_up_call_is_described_in_call_order() {
        let page = |a: u64| (a, vec![7u8; PAGE as usize]);
        let maps = [
            Mapping { start: 0x1000, len: 0x1000, prot: 5, name: "__TEXT".into(), file: Some((0, 0x1000)), overlay: vec![] },
            Mapping { start: 0x8000, len: 0x2000, prot: 3, name: "stack".into(), file: None, overlay: vec![page(0x9000)] },
        ];
        let pieces = vec![
            vec![Piece { addr: 0x1000, len: 0x1000, source: Source::Image { fd: 3, offset: 0 } }],
            vec![Piece { addr: 0x9000, len: 0x1000, source: Source::Memfd { offset: 0x10_0000 } }],
        ];
        let (program, steps) = set_up_program(&maps, &pieces, 4, 3, false);
        let words: Vec<String> = steps.iter().map(Step::to_string).collect();
        let mut expected = vec![];
        if vdso_len().is_some() {
            expected.push("moving the vDSO");
        }
        expected.extend([
            "unmapping what Linux mapped below the set-up page",
            "mapping the image's pages as __TEXT at 0x1000-0x2000",
            "mapping stack at 0x8000-0xa000",
            "mapping pages of its own over stack at 0x9000-0xa000",
            "closing the set-up file",
            "closing the image file",
            "prctl(PR_SET_NO_NEW_PRIVS)",
            "installing the seccomp filter (this kernel needs CONFIG_SECCOMP_FILTER)",
        ]);
        assert_eq!(words, expected);
        // One failure int3 per described call: a failing call's rip names
        // its step.
        assert_eq!(program.failed.len(), steps.len());
    }

    #[test]
    fn file_pages_come_from_the_image_and_overlay_runs_from_the_set_up_file() {
        let path = std::env::temp_dir().join(format!("xnurun-pieces-{}", std::process::id()));
        std::fs::write(&path, vec![0u8; 0x4000]).unwrap();
        let file = match crate::image::file::open(path.as_os_str()) {
            Ok(f) => f,
            Err(_) => panic!("open"),
        };
        let page = |a: u64| (a, vec![7u8; PAGE as usize]);
        let maps = [
            Mapping { start: 0x1000, len: 0x3000, prot: 5, name: "text".into(), file: Some((0x1000, 0x2000)), overlay: vec![page(0x2000), page(0x3000), page(0x5000)] },
            Mapping { start: 0x9000, len: 0x1000, prot: 3, name: "zero".into(), file: None, overlay: vec![] },
        ];
        let (ps, blobs) = pieces(&maps, &file, 0x1800).unwrap();
        let shown: Vec<Vec<(u64, u64, String)>> = ps
            .iter()
            .map(|v| {
                v.iter()
                    .map(|p| match p.source {
                        Source::Image { offset, .. } => (p.addr, p.len, format!("image {offset:#x}")),
                        Source::Memfd { offset } => (p.addr, p.len, format!("memfd {offset:#x}")),
                    })
                    .collect()
            })
            .collect();
        // The file pages map the image itself; two adjacent overlay pages
        // are one piece; the set-up file's pages start on a page.
        assert_eq!(shown[0], vec![(0x1000, 0x2000, "image 0x1000".to_string()), (0x2000, 0x2000, "memfd 0x2000".into()), (0x5000, 0x1000, "memfd 0x4000".into())]);
        assert!(shown[1].is_empty());
        // Each overlay page is written where its piece maps it from.
        assert_eq!(blobs.iter().map(|(o, b)| (*o, b.len())).collect::<Vec<_>>(), vec![(0x2000, 0x1000), (0x3000, 0x1000), (0x4000, 0x1000)]);
        std::fs::remove_file(&path).unwrap();
    }
}
