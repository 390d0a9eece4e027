//! The emulated CPU under a debugger. Breakpoints are code hooks, not
//! bytes in guest memory, so a read never sees them; a step is a run of
//! one instruction (unicorn's count), through the same hooks that answer
//! kernel entries in a normal run; a resumed guest runs in time slices
//! (unicorn's timeout), so that a debugger's interrupt is seen between
//! them.

use super::{span, Guest, HostMemory};
use crate::cpu::debug::{readable, Debuggee, Registers, Stop};
use std::os::fd::RawFd;
use crate::image::address_space::Layout;
use crate::xnu::end::End;
use unicorn_engine::unicorn_const::uc_error;
use unicorn_engine::{UcHookId, Unicorn};

/// How long a resumed guest runs before the debugger's socket is looked
/// at again, in microseconds.
const SLICE_US: u64 = 50_000;

/// What differs between the x86 and arm64 CPUs.
pub struct Arch {
    pub pc: fn(&Unicorn<Guest>) -> u64,
    /// Where unicorn must stop by itself (arm64: dyld's return path).
    pub until: u64,
    pub registers: fn(&Unicorn<Guest>) -> Registers,
    pub set_registers: fn(&mut Unicorn<'static, Guest>, &Registers),
    pub ended: Ended,
}

/// The end of the run, once `emu_start` returned; `None` while the guest
/// lives.
pub type Ended = fn(&mut Unicorn<'static, Guest>, Result<(), uc_error>, &Layout) -> Option<End>;

/// A guest on the emulated CPU, stopped between instructions. Fields drop
/// in order: the CPU before the host memory behind it.
pub struct Session {
    uc: Unicorn<'static, Guest>,
    layout: Layout,
    _host: HostMemory,
    arch: Arch,
    readable: Vec<(u64, u64)>,
}

impl Session {
    pub fn new(uc: Unicorn<'static, Guest>, layout: Layout, host: HostMemory, arch: Arch) -> Session {
        // Every page the guest has mapped, whatever its protection but
        // none (a debugger reads and writes code the guest itself may only
        // run); the page zero and the gaps are not the guest's.
        let readable = layout.maps.iter().filter(|m| m.prot != 0).map(|m| (m.start, m.start + m.len)).collect();
        Session { uc, layout, _host: host, arch, readable }
    }

    fn run(&mut self, timeout: u64, count: usize) -> Option<End> {
        let pc = (self.arch.pc)(&self.uc);
        let result = self.uc.emu_start(pc, self.arch.until, timeout, count);
        (self.arch.ended)(&mut self.uc, result, &self.layout)
    }
}

impl Debuggee for Session {
    fn registers(&mut self) -> Registers {
        (self.arch.registers)(&self.uc)
    }
    fn set_registers(&mut self, regs: &Registers) {
        (self.arch.set_registers)(&mut self.uc, regs)
    }
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> usize {
        let n = span(&self.readable, addr, buf.len() as u64) as usize;
        if n > 0 && self.uc.mem_read(addr, &mut buf[..n]).is_err() {
            return 0;
        }
        n
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> usize {
        let n = span(&self.readable, addr, data.len() as u64) as usize;
        if n > 0 && self.uc.mem_write(addr, &data[..n]).is_err() {
            return 0;
        }
        n
    }
    fn step(&mut self) -> Stop {
        match self.run(0, 1) {
            Some(end) => Stop::Ended(end),
            None => Stop::Stepped,
        }
    }
    fn resume(&mut self, breakpoints: &[u64], wake: Option<RawFd>) -> Stop {
        let mut hooks: Vec<UcHookId> = Vec::new();
        for &at in breakpoints {
            let hook = self.uc.add_code_hook(at, at, |uc, addr, _size| {
                let g = uc.get_data_mut();
                if g.skip.take() == Some(addr) {
                    return;
                }
                g.hit = Some(addr);
                let _ = uc.emu_stop();
            });
            if let Ok(h) = hook {
                hooks.push(h);
            }
            // A block translated before the hook existed would not call
            // it (unicorn decides at translation time).
            let _ = self.uc.ctl_remove_cache(at, at + 1);
        }
        let pc = (self.arch.pc)(&self.uc);
        let g = self.uc.get_data_mut();
        g.skip = Some(pc);
        g.hit = None;
        let stop = loop {
            if let Some(end) = self.run(SLICE_US, 0) {
                break Stop::Ended(end);
            }
            if self.uc.get_data_mut().hit.take().is_some() {
                break Stop::Breakpoint;
            }
            // The breakpoint stood on is passed once, in the first slice.
            self.uc.get_data_mut().skip = None;
            if wake.is_some_and(|fd| readable(fd, 0)) {
                break Stop::Interrupted;
            }
        };
        for h in hooks {
            let _ = self.uc.remove_hook(h);
        }
        stop
    }
}
