//! The BSD calls xnurun answers, as XNU's kernel would: `exit` (`exit1`,
//! bsd/kern/kern_exit.c), `read` and `write` (`read_nocancel` →
//! `dofileread`, `write_nocancel` → `dofilewrite`, bsd/kern/sys_generic.c),
//! and the `nosys` / `enosys` slots. They see the guest only through
//! [`Memory`], so every CPU backend and architecture shares them.

use super::fault::{Decision, Injector};
use super::table::{self, Kind};
use crate::xnu::outcome::Outcome;
use crate::xnu::end::{Death, End, Next};
use crate::xnu::memory::Memory;
use crate::xnu::{errno, signal, trace};

pub struct Calls {
    pub trace: bool,
    pub injector: Injector,
    /// SIGPIPE was ignored when xnurun started: a broken pipe gives EPIPE
    /// instead of killing the guest.
    pub sigpipe_ignored: bool,
    /// Descriptors xnurun opened for itself (the image file): not the
    /// guest's, whose table is exactly what xnurun inherited.
    pub own_fds: Vec<i32>,
    /// The task's port names, which live as long as its descriptor table.
    pub mach: crate::xnu::mach::ports::Space,
}

/// How many argument words call `code` takes, for the i386 conventions,
/// which copy them in from the user stack (`unix_syscall`).
pub fn arg_words(code: u32) -> usize {
    match table::classify(code) {
        Kind::Write | Kind::Read => 3,
        Kind::Exit => 1,
        _ => 0,
    }
}

#[derive(Clone, Copy)]
enum Access {
    Read,
    Write,
}

/// How many bytes the host says `fd` has ready (`FIONREAD`), 0 where it
/// cannot say.
fn ready_bytes(fd: i32) -> i32 {
    let mut n: nix::libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    let rc = unsafe { nix::libc::ioctl(fd, nix::libc::FIONREAD, &mut n) };
    if rc < 0 { 0 } else { n }
}

/// Whether `fd` has a byte for a read to copy out. With `wait`, first
/// waits as the read itself would block (a pipe with no writer yet): XNU
/// sleeps in the read until data or end of file.
fn ready_after_wait(fd: i32, wait: bool) -> bool {
    if wait {
        let mut p = nix::libc::pollfd { fd, events: nix::libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd on the stack.
        while unsafe { nix::libc::poll(&mut p, 1, -1) } < 0 && last_errno() == EINTR_HOST {}
    }
    ready_bytes(fd) > 0
}

/// Why a call's own signal killed the guest.
const POSTED: &str = "signal posted by the system call";

impl Calls {
    pub fn bsd_call(&mut self, mem: &mut dyn Memory, code: u32, args: &[u64; 6]) -> Next<Outcome> {
        let t = self.trace;
        match table::classify(code) {
            Kind::Exit => {
                let rval = args[0] as i32;
                if t {
                    trace::line(&format!("exit({rval})"));
                }
                // exit1 keeps W_EXITCODE(rval): the low 8 bits.
                Next::End(End::Exit(rval & 0xff))
            }
            Kind::Write => self.write(mem, args[0] as i32, args[1], args[2]),
            Kind::Read => self.read(mem, args[0] as i32, args[1], args[2]),
            Kind::Nosys => {
                if t {
                    trace::line(&format!("nosys[{code}]() {}", trace::result_err(errno::ENOSYS)));
                }
                Next::Die(Some(Outcome::Err(errno::ENOSYS)), Death::new(signal::SIGSYS, POSTED))
            }
            Kind::Enosys => {
                if t {
                    trace::line(&format!("enosys[{code}]() {}", trace::result_err(errno::ENOSYS)));
                }
                Next::Resume(Outcome::Err(errno::ENOSYS))
            }
            Kind::Unimplemented(name) => {
                Next::End(End::Unimplemented(format!("the guest called {name} (BSD system call {code}): a real XNU call that xnurun does not implement")))
            }
        }
    }

    /// `unix_syscall` could not copy the arguments in: EFAULT.
    pub fn args_fault(&self, code: u32) -> Next<Outcome> {
        if self.trace {
            trace::line(&format!("{}(...) {}", table::NAMES.get(code as usize).unwrap_or(&"?"), trace::result_err(errno::EFAULT)));
        }
        Next::Resume(Outcome::Err(errno::EFAULT))
    }

    fn write(&mut self, mem: &mut dyn Memory, fd: i32, buf: u64, nbyte: u64) -> Next<Outcome> {
        // The trace line, read from the guest before the write: only when
        // tracing (a second read of the buffer costs a system call).
        let call = if self.trace {
            let mut b = vec![0u8; (nbyte.min(trace::STRING_LIMIT as u64)) as usize];
            let n = mem.read(buf, &mut b);
            let shown = if n == b.len() { trace::escape(&b, nbyte) } else { format!("0x{buf:x}") };
            format!("write({fd}, {shown}, {nbyte})")
        } else {
            String::new()
        };
        // write_nocancel (bsd/kern/sys_generic.c) refuses counts past INT_MAX.
        if nbyte > i32::MAX as u64 {
            return self.traced(&call, Outcome::Err(errno::EINVAL));
        }
        // fp_lookup and the FWRITE check come before the buffer is touched
        // (write_nocancel → dofilewrite): a bad descriptor is EBADF, a bad
        // buffer too.
        if let Err(e) = self.descriptor(fd, Access::Write) {
            return self.traced(&call, Outcome::Err(e));
        }
        let outcome = match self.injector.on_write(nbyte) {
            Decision::Restart => {
                if self.trace {
                    trace::line(&format!("{call} {}", trace::RESULT_RESTART));
                }
                return Next::Resume(Outcome::Restart);
            }
            Decision::Fail(e) => Outcome::Err(e),
            Decision::Perform(n) => match host_write(mem, fd, buf, n) {
                Ok(done) => Outcome::Ok(done, 0),
                Err(errno::EPIPE) if !self.sigpipe_ignored => {
                    // dofilewrite posts SIGPIPE with EPIPE unless the
                    // process ignores it; its default action kills.
                    if self.trace {
                        trace::line(&format!("{call} {}", trace::result_err(errno::EPIPE)));
                    }
                    return Next::Die(Some(Outcome::Err(errno::EPIPE)), Death::new(signal::SIGPIPE, POSTED));
                }
                Err(e) => Outcome::Err(e),
            },
        };
        self.traced(&call, outcome)
    }

    /// `dofileread`: the descriptor is checked first (EBADF whatever the
    /// buffer), then the data is copied out to the guest as it is read,
    /// up to `nbyte`. XNU's read stops where its source has no more ready
    /// (a pipe returns what it holds) and turns a partial transfer into
    /// success only for ERESTART, EINTR and EWOULDBLOCK: when the buffer
    /// stops being writable while the source still has bytes, it is
    /// EFAULT. xnurun reads no byte it cannot copy out, and asks the host
    /// (`FIONREAD`) whether more were ready.
    fn read(&mut self, mem: &mut dyn Memory, fd: i32, buf: u64, nbyte: u64) -> Next<Outcome> {
        let call = format!("read({fd}, 0x{buf:x}, {nbyte})");
        if nbyte > i32::MAX as u64 {
            return self.traced(&call, Outcome::Err(errno::EINVAL));
        }
        if let Err(e) = self.descriptor(fd, Access::Read) {
            return self.traced(&call, Outcome::Err(e));
        }
        let want = match self.injector.on_read(nbyte) {
            Decision::Restart => {
                if self.trace {
                    trace::line(&format!("{call} {}", trace::RESULT_RESTART));
                }
                return Next::Resume(Outcome::Restart);
            }
            Decision::Fail(e) => return self.traced(&call, Outcome::Err(e)),
            Decision::Perform(n) => n,
        };
        const CHUNK: u64 = 1 << 20;
        let mut done = 0u64;
        let mut shown = Vec::new();
        let mut chunk = Vec::new();
        while done < want {
            let at = buf.wrapping_add(done);
            let room = mem.writable(at, want - done).min(CHUNK);
            if room == 0 {
                // The buffer ends here: copyout would fault on the next
                // byte the source has.
                if ready_after_wait(fd, done == 0) {
                    return self.traced(&call, Outcome::Err(errno::EFAULT));
                }
                break;
            }
            chunk.resize(room as usize, 0);
            let rc = loop {
                // SAFETY: reading into a local buffer of `room` bytes.
                let rc = unsafe { nix::libc::read(fd, chunk.as_mut_ptr().cast(), chunk.len()) };
                if rc < 0 && last_errno() == EINTR_HOST {
                    continue;
                }
                break rc;
            };
            if rc < 0 {
                if done > 0 {
                    break;
                }
                return self.traced(&call, Outcome::Err(errno::from_linux(last_errno())));
            }
            let got = rc as usize;
            if mem.write(at, &chunk[..got]) < got {
                return self.traced(&call, Outcome::Err(errno::EFAULT));
            }
            if self.trace && shown.len() < trace::STRING_LIMIT {
                shown.extend_from_slice(&chunk[..got.min(trace::STRING_LIMIT)]);
            }
            done += got as u64;
            if (got as u64) < room || ready_bytes(fd) == 0 {
                break;
            }
        }
        if self.trace {
            trace::line(&format!("read({fd}, {}, {nbyte}) {}", trace::escape(&shown, done), trace::result_ok(done)));
        }
        Next::Resume(Outcome::Ok(done, 0))
    }

    /// `fp_lookup` and the access check of `dofileread`/`dofilewrite`: the
    /// descriptor must be the guest's, open, and open for this access.
    fn descriptor(&self, fd: i32, access: Access) -> Result<(), i32> {
        if self.own_fds.contains(&fd) {
            return Err(errno::EBADF);
        }
        // SAFETY: F_GETFL only reads the descriptor's flags.
        let fl = unsafe { nix::libc::fcntl(fd, nix::libc::F_GETFL) };
        if fl < 0 || fl & nix::libc::O_PATH != 0 {
            return Err(errno::EBADF);
        }
        let ok = matches!(
            (fl & nix::libc::O_ACCMODE, access),
            (nix::libc::O_RDWR, _) | (nix::libc::O_RDONLY, Access::Read) | (nix::libc::O_WRONLY, Access::Write)
        );
        if ok { Ok(()) } else { Err(errno::EBADF) }
    }

    fn traced(&self, call: &str, o: Outcome) -> Next<Outcome> {
        if self.trace {
            let res = match o {
                Outcome::Ok(v, _) | Outcome::Value(v) => trace::result_ok(v),
                Outcome::Err(e) => trace::result_err(e),
                Outcome::Restart => trace::RESULT_RESTART.to_string(),
                Outcome::Unchanged => "= ?".to_string(),
            };
            trace::line(&format!("{call} {res}"));
        }
        Next::Resume(o)
    }
}

/// Copies the guest's buffer to xnurun's own descriptor `fd` (the one the
/// guest inherited), in chunks, as `dofilewrite` would: a short write ends
/// the call with the count so far; a buffer that stops being readable part
/// way is EFAULT even after some bytes went out, since `dofilewrite` turns
/// a partial transfer into success only for ERESTART, EINTR and
/// EWOULDBLOCK. The bytes before the fault are written, as a file system or
/// pipe that copies in chunks would have taken them.
fn host_write(mem: &mut dyn Memory, fd: i32, buf: u64, n: u64) -> Result<u64, i32> {
    const CHUNK: u64 = 1 << 16;
    let mut done = 0u64;
    let mut chunk = vec![0u8; CHUNK.min(n) as usize];
    if n == 0 {
        // Still let the host judge the descriptor (EBADF for a bad fd).
        // SAFETY: zero-length write from a valid pointer.
        let rc = unsafe { libc_write(fd, chunk.as_ptr(), 0) };
        return if rc < 0 { Err(errno::from_linux(last_errno())) } else { Ok(0) };
    }
    while done < n {
        let want = (n - done).min(CHUNK) as usize;
        let Some(at) = buf.checked_add(done) else { return Err(errno::EFAULT) };
        let got = mem.read(at, &mut chunk[..want]);
        if got > 0 {
            let rc = loop {
                // SAFETY: `got` bytes of `chunk` are initialised.
                let rc = unsafe { libc_write(fd, chunk.as_ptr(), got) };
                if rc < 0 && last_errno() == EINTR_HOST {
                    continue;
                }
                break rc;
            };
            if rc < 0 {
                let e = errno::from_linux(last_errno());
                return if done == 0 { Err(e) } else { Ok(done) };
            }
            done += rc as u64;
            if (rc as usize) < got {
                // A short write: the call ends with what was taken.
                return Ok(done);
            }
        }
        if got < want {
            return Err(errno::EFAULT);
        }
    }
    Ok(done)
}

const EINTR_HOST: i32 = 4;

unsafe fn libc_write(fd: i32, p: *const u8, n: usize) -> isize {
    // SAFETY: the caller passes `n` readable bytes at `p`.
    unsafe { nix::libc::write(fd, p.cast(), n) }
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(5)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem(u64, Vec<u8>);
    impl Memory for Mem {
        fn read(&self, addr: u64, buf: &mut [u8]) -> usize {
            let Some(off) = addr.checked_sub(self.0) else { return 0 };
            let avail = self.1.get(off as usize..).unwrap_or(&[]);
            let n = avail.len().min(buf.len());
            buf[..n].copy_from_slice(&avail[..n]);
            n
        }
        fn write(&mut self, _addr: u64, _data: &[u8]) -> usize {
            0
        }
        fn writable(&self, _addr: u64, _len: u64) -> u64 {
            0
        }
    }

    fn pipe() -> (i32, i32) {
        let mut fds = [0; 2];
        // SAFETY: plain pipe(2).
        assert_eq!(unsafe { nix::libc::pipe(fds.as_mut_ptr()) }, 0);
        (fds[0], fds[1])
    }

    fn drain(fd: i32) -> Vec<u8> {
        let mut b = vec![0u8; 100];
        // SAFETY: reading into a local buffer.
        let n = unsafe { nix::libc::read(fd, b.as_mut_ptr().cast(), 100) };
        b.truncate(n.max(0) as usize);
        b
    }

    #[test]
    fn a_buffer_unmapped_part_way_is_efault_after_the_readable_bytes() {
        let (r, w) = pipe();
        let mut mem = Mem(0x1000, b"abcdef".to_vec());
        assert_eq!(host_write(&mut mem, w, 0x1000, 10), Err(errno::EFAULT));
        // SAFETY: closing our own descriptor.
        unsafe { nix::libc::close(w) };
        assert_eq!(drain(r), b"abcdef");
        let (r, w) = pipe();
        assert_eq!(host_write(&mut mem, w, 0x1000, 6), Ok(6));
        assert_eq!(host_write(&mut mem, w, 0x9000, 6), Err(errno::EFAULT));
        // SAFETY: closing our own descriptor.
        unsafe { nix::libc::close(w) };
        assert_eq!(drain(r), b"abcdef");
    }
}
