//! What the two emulated CPUs (unicorn, for x86 and arm64 images) share:
//! mapping the planned address space, guest memory as `copyin` sees it,
//! and how a run that unicorn stopped ends. The guest's memory is
//! unicorn's, not a host process's: an emulated guest can reach no host
//! system call.

pub mod arm64;
pub mod debug;
mod lock_int;
pub mod x86;

use crate::image::address_space::Layout;
use crate::image::file::ImageFile;
use crate::xnu::bsd::calls::Calls;
use crate::xnu::end::{Death, End, Next};
use crate::xnu::memory::Memory;
use crate::xnu::{signal, Arch};
use std::rc::Rc;
use unicorn_engine::unicorn_const::{uc_error, Arch as UcArch, HookType, Mode, Prot};
use unicorn_engine::Unicorn;

/// What the CPU's hooks share: the task, the calls, the readable and
/// writable ranges `copyin`/`copyout` honour, how the run ended (once a
/// hook ended it), and the address of the last invalid access.
pub struct Guest {
    pub task: Arch,
    calls: Option<Calls>,
    readable: Rc<[(u64, u64)]>,
    writable: Rc<[(u64, u64)]>,
    end: Option<End>,
    fault: Option<u64>,
    /// Where the current translated block starts, where a block hook
    /// records it.
    block: u64,
    /// Under a debugger: the breakpoint the guest stopped at, before
    /// running its instruction, and the one address a resumed guest runs
    /// past once (the breakpoint it resumes from).
    hit: Option<u64>,
    skip: Option<u64>,
}

/// A new CPU of `arch` in `mode` holding the planned address space, with
/// the guest's memory errors recorded.
pub fn new_cpu(arch: UcArch, mode: Mode, task: Arch, calls: Calls, layout: &Layout, file: &ImageFile) -> Result<(Unicorn<'static, Guest>, HostMemory), String> {
    let guest = Guest { task, calls: Some(calls), readable: layout.ranges(1).into(), writable: layout.ranges(2).into(), end: None, fault: None, block: 0, hit: None, skip: None };
    let mut uc = Unicorn::new_with_data(arch, mode, guest).map_err(|e| uc_err("creating the CPU", e))?;
    let host = map(&mut uc, layout, file)?;
    let x86 = arch == UcArch::X86;
    uc.add_mem_hook(HookType::MEM_INVALID, 1, 0, move |uc, _ty, addr, _size, _value| {
        // unicorn's x86 hands over the address cut to 52 bits; a fault's
        // address is canonical (a non-canonical one is #GP or #SS before
        // any page is looked up), so bit 47 gives the rest back: XNU
        // reports the whole address (`user_trap` takes it from CR2).
        let addr = if x86 { ((addr << 16) as i64 >> 16) as u64 } else { addr };
        uc.get_data_mut().fault = Some(addr);
        false
    })
    .map_err(|e| uc_err("hook", e))?;
    Ok((uc, host))
}

/// Hands a kernel entry to XNU: `answer` gets the calls and the guest's
/// memory. `None` once the run has ended.
pub fn enter_kernel<R>(uc: &mut Unicorn<Guest>, answer: impl FnOnce(&mut Calls, &mut dyn Memory) -> Next<R>) -> Option<Next<R>> {
    if uc.get_data().end.is_some() {
        return None;
    }
    let mut calls = uc.get_data_mut().calls.take()?;
    let (readable, writable) = (uc.get_data().readable.clone(), uc.get_data().writable.clone());
    let next = answer(&mut calls, &mut UcMem { uc, readable: &readable, writable: &writable });
    uc.get_data_mut().calls = Some(calls);
    Some(next)
}

/// Up to `n` bytes at `pc`, fewer where the memory ends: read a page at a
/// time, so that the bytes before an unmapped page are all there.
pub fn code_at<D>(uc: &Unicorn<D>, pc: u64, n: usize) -> Vec<u8> {
    const PAGE: u64 = 4096;
    let mut out = Vec::with_capacity(n);
    let mut at = pc;
    while out.len() < n {
        let want = ((PAGE - at % PAGE) as usize).min(n - out.len());
        match uc.mem_read_as_vec(at, want) {
            Ok(b) => out.extend_from_slice(&b),
            Err(_) => break,
        }
        at = at.wrapping_add(want as u64);
    }
    out
}

/// Ends the run with `end`. The first end stands: unicorn may run to the
/// end of the translated block after a stop request, and what the guest
/// did after its death never happened.
pub fn stop(uc: &mut Unicorn<Guest>, end: End) {
    let g = uc.get_data_mut();
    if g.end.is_none() {
        g.end = Some(end);
    }
    let _ = uc.emu_stop();
}

/// How the run ended, once `emu_start` returned `result` with the program
/// counter at `pc`: `special` may name an end unicorn's error alone does
/// not tell (arm64's return into dyld).
pub fn finish(uc: &mut Unicorn<Guest>, result: Result<(), uc_error>, pc: u64, steps: u64, code: Vec<u8>, layout: &Layout, special: impl FnOnce() -> Option<End>) -> End {
    let g = uc.get_data_mut();
    let recorded = g.end.take().or_else(special);
    // An instruction the CPU cannot run: SIGILL on it, no fault address
    // (x86: #UD, T_INVALID_OPCODE; arm64: EXC_BAD_INSTRUCTION).
    let undefined = match g.task {
        Arch::Arm64 => Death::new(signal::SIGILL, "undefined instruction"),
        _ => crate::xnu::x86::exception::death(crate::xnu::x86::exception::INVALID_OPCODE),
    };
    if recorded.is_none() && result == Err(uc_error::INSN_INVALID) {
        return End::Killed { death: undefined, pc: (g.task.pc_name(), pc), detail: None, code };
    }
    ended(recorded, result, (g.task.pc_name(), pc), steps, g.fault, code, layout)
}

/// The guest's memory through unicorn, honouring the guest's read
/// permission as `copyin` does (unicorn's own reads ignore it).
struct UcMem<'a, 'b, D> {
    uc: &'a mut Unicorn<'b, D>,
    /// Readable and writable ranges, `[start, end)`.
    readable: &'a [(u64, u64)],
    writable: &'a [(u64, u64)],
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

impl<D> Memory for UcMem<'_, '_, D> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> usize {
        let n = span(self.readable, addr, buf.len() as u64) as usize;
        if n > 0 && self.uc.mem_read(addr, &mut buf[..n]).is_err() {
            return 0;
        }
        n
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> usize {
        let n = span(self.writable, addr, data.len() as u64) as usize;
        if n > 0 && self.uc.mem_write(addr, &data[..n]).is_err() {
            return 0;
        }
        n
    }
    fn writable(&self, addr: u64, len: u64) -> u64 {
        span(self.writable, addr, len)
    }
}

/// XNU's signal for a memory error unicorn reported at `addr`.
fn memory_death(err: uc_error, addr: u64, layout: &Layout) -> Option<Death> {
    use uc_error::*;
    let (sig, why) = match err {
        READ_UNMAPPED | WRITE_UNMAPPED | FETCH_UNMAPPED => signal::fault(false, layout.in_stack_zone(addr)),
        READ_PROT | WRITE_PROT | FETCH_PROT => signal::fault(layout.mapped(addr), layout.in_stack_zone(addr)),
        READ_UNALIGNED | WRITE_UNALIGNED | FETCH_UNALIGNED => (signal::SIGBUS, "alignment"),
        _ => return None,
    };
    Some(Death::new(sig, why))
}

/// Host memory behind the guest's: one private mapping per planned
/// mapping, unmapped when dropped (after the CPU that used it).
pub struct HostMemory(Vec<(*mut nix::libc::c_void, usize)>);

impl Drop for HostMemory {
    fn drop(&mut self) {
        for &(p, len) in &self.0 {
            // SAFETY: each pointer is a mapping of `len` bytes this owns.
            unsafe { nix::libc::munmap(p, len) };
        }
    }
}

/// Maps the planned address space into unicorn, each mapping backed by
/// host memory as XNU backs it: zero-fill that costs nothing until written
/// (MAP_NORESERVE), the image file's pages mapped copy-on-write over it,
/// the overlay pages copied in. So the guest's memory costs what it
/// touches, whatever the segments' sizes.
fn map<D>(uc: &mut Unicorn<D>, layout: &Layout, file: &ImageFile) -> Result<HostMemory, String> {
    use nix::libc::{mmap, MAP_ANONYMOUS, MAP_FAILED, MAP_FIXED, MAP_NORESERVE, MAP_PRIVATE, PROT_READ, PROT_WRITE};
    let mut host = HostMemory(Vec::new());
    for m in &layout.maps {
        let len = usize::try_from(m.len).map_err(|_| format!("{}: too large for this host", m.name))?;
        // SAFETY: a fresh anonymous mapping, owned by `host` from here.
        let p = unsafe { mmap(std::ptr::null_mut(), len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) };
        if p == MAP_FAILED {
            return Err(format!("mapping {} ({} bytes): {}", m.name, m.len, std::io::Error::last_os_error()));
        }
        host.0.push((p, len));
        if let Some((offset, flen)) = m.file {
            match file.mappable(offset) {
                Some((fd, at)) => {
                    // SAFETY: over the start of the mapping just made, which
                    // is at least `flen` long (the plan keeps file pages
                    // inside their mapping).
                    let q = unsafe { mmap(p, flen as usize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, at as i64) };
                    if q == MAP_FAILED {
                        return Err(format!("mapping {}'s file pages: {}", m.name, std::io::Error::last_os_error()));
                    }
                }
                None => {
                    // SAFETY: `flen` bytes of the mapping just made.
                    let dst = unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), flen as usize) };
                    let n = file.len.saturating_sub(offset).min(flen) as usize;
                    file.read_at(offset, &mut dst[..n])?;
                }
            }
        }
        for (addr, bytes) in &m.overlay {
            // SAFETY: overlay pages lie inside their mapping.
            let dst = unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>().add((addr - m.start) as usize), bytes.len()) };
            dst.copy_from_slice(bytes);
        }
        let mut prot = Prot::NONE;
        for (bit, q) in [(1, Prot::READ), (2, Prot::WRITE), (4, Prot::EXEC)] {
            if m.prot & bit != 0 {
                prot |= q;
            }
        }
        // SAFETY: `p` is `m.len` bytes of host memory that outlive the CPU
        // (run drops the CPU first).
        unsafe { uc.mem_map_ptr(m.start, m.len, prot, p) }.map_err(|e| uc_err(&format!("mapping {} at 0x{:x}", m.name, m.start), e))?;
    }
    Ok(host)
}

pub fn uc_err(what: &str, e: uc_error) -> String {
    format!("unicorn: {what}: {e:?}")
}

/// How a run ends that `emu_start` returned from: the end a hook
/// recorded, or else the count that ran out, or else unicorn's error at
/// `pc` (the fault address `fault` where there is one), as XNU would have
/// it. `code` are the instruction bytes at `pc`.
fn ended(recorded: Option<End>, result: Result<(), uc_error>, pc: (&'static str, u64), steps: u64, fault: Option<u64>, code: Vec<u8>, layout: &Layout) -> End {
    match (recorded, result) {
        (Some(end), _) => end,
        (None, Ok(())) => End::StepLimit { steps, pc },
        (None, Err(e)) => {
            let addr = fault.unwrap_or(pc.1);
            match memory_death(e, addr, layout) {
                Some(death) => End::Killed { death, pc, detail: Some(format!("fault address 0x{addr:x}")), code },
                None => End::Runner(format!("the emulated CPU stopped: {e:?} at {} 0x{:x}", pc.0, pc.1)),
            }
        }
    }
}
