//! What the two emulated CPUs (unicorn, for x86 and arm64 images) share:
//! guest memory as `copyin` sees it, how the run ends, and how unicorn's
//! memory errors become XNU's signals. The guest's memory is unicorn's, not
//! a host process's: an emulated guest can reach no host system call.

use crate::calls::Memory;
use crate::xnu;
use unicorn_engine::Unicorn;
use unicorn_engine::unicorn_const::uc_error;

pub const EXIT_STEP_LIMIT: i32 = 124;
pub const EXIT_RUNNER: i32 = 125;

/// How an emulated run ends.
#[derive(Debug)]
pub enum End {
    Exit(i32),
    /// Death by XNU signal `sig` at `pc`; `detail` (a fault address) and
    /// the instruction bytes are reported when there are any.
    Killed { sig: i32, pc: u64, why: String, detail: Option<String>, code: Vec<u8> },
    Stop(String, i32),
}

/// The guest's memory through unicorn, honouring the guest's read
/// permission as `copyin` does (unicorn's own reads ignore it).
pub struct UcMem<'a, 'b, D> {
    pub uc: &'a mut Unicorn<'b, D>,
    /// Readable and writable ranges, `[start, end)`.
    pub readable: &'a [(u64, u64)],
    pub writable: &'a [(u64, u64)],
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

/// XNU's signal for a memory error unicorn reported at `addr`:
/// `mapped` says whether XNU would have mapped that address for the task,
/// `stack_zone` whether it lies in the stack's MAXSSIZ zone.
pub fn memory_signal(err: uc_error, mapped: bool, stack_zone: bool) -> Option<(i32, &'static str)> {
    use uc_error::*;
    Some(match err {
        READ_UNMAPPED | WRITE_UNMAPPED | FETCH_UNMAPPED if stack_zone => (xnu::SIGSEGV, "stack overflow"),
        READ_UNMAPPED | WRITE_UNMAPPED | FETCH_UNMAPPED => (xnu::SIGSEGV, ""),
        READ_PROT | WRITE_PROT | FETCH_PROT => xnu::protection_fault(mapped, stack_zone),
        READ_UNALIGNED | WRITE_UNALIGNED | FETCH_UNALIGNED => (xnu::SIGBUS, "alignment"),
        INSN_INVALID => (xnu::SIGILL, "undefined instruction"),
        _ => return None,
    })
}
