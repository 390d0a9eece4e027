//! `xnurun --gdb ADDR:PORT`: the guest, loaded as for a run and stopped
//! before its first instruction, served to one gdb over TCP. The protocol
//! is the `gdbstub` crate's, the register layouts `gdbstub_arch`'s; what
//! runs the guest is a CPU's [`Debuggee`], whose kernel entries XNU's code
//! answers as in any run.

use crate::cpu::debug::{Debuggee, Registers, Stop};
use crate::xnu::arm64::convention::Regs as Arm64Regs;
use crate::xnu::end::End;
use crate::xnu::x86::state::X86State;
use crate::xnu::{trace, Arch};
use gdbstub::common::Signal;
use gdbstub::conn::ConnectionExt;
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStub, SingleThreadStopReason};
use gdbstub::target::ext::base::singlethread::{SingleThreadBase, SingleThreadResume, SingleThreadResumeOps, SingleThreadSingleStep, SingleThreadSingleStepOps};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::exec_file::{ExecFile, ExecFileOps};
use gdbstub::target::ext::host_io::{
    HostIo, HostIoClose, HostIoCloseOps, HostIoErrno, HostIoError, HostIoFstat, HostIoFstatOps, HostIoOpen, HostIoOpenFlags, HostIoOpenMode, HostIoOpenOps, HostIoOps, HostIoPread, HostIoPreadOps, HostIoResult, HostIoStat,
};
use gdbstub::target::ext::extended_mode::{Args, AttachKind, ExtendedMode, ExtendedModeOps, ShouldTerminate};
use gdbstub::common::Pid;
use gdbstub::target::ext::breakpoints::{Breakpoints, BreakpointsOps, SwBreakpoint, SwBreakpointOps};
use gdbstub::target::{Target, TargetError, TargetResult};
use gdbstub_arch::aarch64::AArch64;
use gdbstub_arch::x86::{X86_64_SSE, X86_SSE};
use std::marker::PhantomData;
use super::gdb_symbols::SymbolFile;
use std::os::fd::AsRawFd;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};

/// Where `--gdb SPEC` listens: `PORT` or `:PORT` is the loopback address;
/// a host name must name only loopback addresses (`localhost`); an
/// address given as numbers is taken as the user's explicit choice, the
/// only way to listen beyond this machine. Port 0 lets the kernel choose
/// (xnurun says which).
pub fn listen_address(spec: &str) -> Result<SocketAddr, String> {
    let (host, port) = spec.rsplit_once(':').unwrap_or(("", spec));
    let port: u16 = port.parse().map_err(|_| format!("--gdb {spec}: expected ADDR:PORT with a port from 0 to 65535"))?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() {
        return Ok((Ipv4Addr::LOCALHOST, port).into());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((ip, port).into());
    }
    let found: Vec<SocketAddr> = (host, port).to_socket_addrs().map_err(|e| format!("--gdb {spec}: {host}: {e}"))?.collect();
    loopback_only(spec, host, port, &found)
}

/// A host name is taken only when every address it names is a loopback
/// one: a name is no explicit choice of the network it reaches.
fn loopback_only(spec: &str, host: &str, port: u16, found: &[SocketAddr]) -> Result<SocketAddr, String> {
    match found.first() {
        Some(a) if found.iter().all(|a| a.ip().is_loopback()) => Ok(*a),
        _ => Err(format!("--gdb {spec}: {host} is not a loopback name; to let other machines connect, give the address itself (such as 0.0.0.0:{port})")),
    }
}

/// Listens on `addr`, before the guest is set up, so that a port in use is
/// said at once.
pub fn listen(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr).map_err(|e| format!("--gdb {addr}: cannot listen there: {e}"))
}

/// Waits for one gdb on `listener` and serves it the stopped guest `d` of
/// `arch`, with its `symbols` file, until the guest's run ends or gdb goes
/// away.
pub fn serve(listener: TcpListener, arch: Arch, symbols: Option<&SymbolFile>, d: Box<dyn Debuggee>) -> End {
    let shown = listener.local_addr().map_or_else(|_| "?".into(), |a| a.to_string());
    trace::line(&format!("xnurun: waiting for gdb on {shown} (in gdb: target remote {shown})"));
    let stream = match listener.accept() {
        Ok((s, _)) => s,
        Err(e) => return End::Runner(format!("--gdb {shown}: accepting gdb's connection: {e}")),
    };
    drop(listener);
    let _ = stream.set_nodelay(true);
    match arch {
        Arch::X86_64 => session::<X86_64_SSE>(stream, d, symbols),
        Arch::I386 => session::<X86_SSE>(stream, d, symbols),
        Arch::Arm64 => session::<AArch64>(stream, d, symbols),
    }
}

fn session<A: Layout>(stream: TcpStream, d: Box<dyn Debuggee>, symbols: Option<&SymbolFile>) -> End {
    let mut t = Gdb::<'_, A> { d, symbols, breakpoints: Vec::new(), action: Action::Step, end: None, _arch: PhantomData };
    let stub = GdbStub::new(stream);
    let result = stub.run_blocking::<EventLoop<'_, A>>(&mut t);
    if let Some(end) = t.end.take() {
        return end;
    }
    match result {
        // gdb's `detach`: the guest goes on without it.
        Ok(DisconnectReason::Disconnect) => loop {
            if let Stop::Ended(end) = t.d.resume(&[], None) {
                break end;
            }
        },
        Ok(_) => {
            t.d.kill();
            End::Runner("gdb killed the guest".into())
        }
        Err(e) => {
            t.d.kill();
            End::Runner(format!("the gdb connection was lost ({e}): the guest is killed"))
        }
    }
}

/// What gdb asked the guest to do last.
#[derive(Clone, Copy)]
enum Action {
    Step,
    Continue,
}

struct Gdb<'s, A> {
    d: Box<dyn Debuggee>,
    /// The symbol file offered to gdb as the program's.
    symbols: Option<&'s SymbolFile>,
    breakpoints: Vec<u64>,
    action: Action,
    /// The run's end, once the guest exited or died.
    end: Option<End>,
    _arch: PhantomData<A>,
}

/// The stop gdb is told of when the run ended. gdb's own signal numbers
/// (include/gdb/signals.def, binutils-gdb) are the BSD ones XNU keeps
/// (bsd/sys/signal.h) from 1 to 31 but 29 (gdb's SIGLOST, XNU's SIGINFO,
/// which kills no one): an XNU signal is sent as it is.
fn stop_reason<U>(end: &End) -> SingleThreadStopReason<U> {
    match end {
        End::Exit(s) => SingleThreadStopReason::Exited((s & 0xff) as u8),
        End::Killed { death, .. } => SingleThreadStopReason::Terminated(Signal(death.sig as u8)),
        End::KilledFromOutside(sig) => SingleThreadStopReason::Terminated(Signal(*sig as u8)),
        // Runs xnurun cannot go on with: killed, as far as gdb can tell;
        // xnurun's own line says why.
        _ => SingleThreadStopReason::Terminated(Signal::SIGKILL),
    }
}

struct EventLoop<'s, A>(PhantomData<&'s A>);

impl<'s, A: Layout> BlockingEventLoop for EventLoop<'s, A> {
    type Target = Gdb<'s, A>;
    type Connection = TcpStream;
    type StopReason = SingleThreadStopReason<A::Usize>;

    fn wait_for_stop_reason(t: &mut Gdb<'s, A>, conn: &mut TcpStream) -> Result<Event<Self::StopReason>, WaitForStopReasonError<String, std::io::Error>> {
        let stop = match t.action {
            Action::Step => t.d.step(),
            Action::Continue => {
                let breakpoints = t.breakpoints.clone();
                t.d.resume(&breakpoints, Some(conn.as_raw_fd()))
            }
        };
        Ok(match stop {
            Stop::Stepped => Event::TargetStopped(SingleThreadStopReason::DoneStep),
            Stop::Breakpoint => Event::TargetStopped(SingleThreadStopReason::SwBreak(())),
            // gdb's Ctrl-C is the byte 0x03, for which gdbstub asks
            // on_interrupt; a closed connection is a read error.
            Stop::Interrupted => match conn.read() {
                Ok(byte) => Event::IncomingData(byte),
                Err(e) => return Err(WaitForStopReasonError::Connection(e)),
            },
            Stop::Ended(end) => {
                let reason = stop_reason(&end);
                t.end = Some(end);
                Event::TargetStopped(reason)
            }
        })
    }

    fn on_interrupt(_t: &mut Gdb<'s, A>) -> Result<Option<Self::StopReason>, String> {
        Ok(Some(SingleThreadStopReason::Signal(Signal::SIGINT)))
    }
}

/// An architecture's registers as gdb lays them out (`gdbstub_arch`), from
/// and to the CPU's.
trait Layout: gdbstub::arch::Arch<BreakpointKind = usize> {
    fn to_gdb(r: &Registers, out: &mut Self::Registers);
    fn from_gdb(regs: &Self::Registers, r: &mut Registers);
    fn address(u: Self::Usize) -> u64;
}

/// Linux's user selectors, which both CPUs run the guest with
/// (docs/limits.md): 64-bit code, 32-bit code, data.
const USER64_CS: u32 = 0x33;
const USER32_CS: u32 = 0x23;
const USER_DS: u32 = 0x2b;

fn x86(r: &Registers) -> X86State {
    match r {
        Registers::X86(s) => *s,
        Registers::Arm64(_) => X86State::default(),
    }
}

impl Layout for X86_64_SSE {
    fn to_gdb(r: &Registers, out: &mut Self::Registers) {
        let s = x86(r);
        out.regs = [s.rax, s.rbx, s.rcx, s.rdx, s.rsi, s.rdi, s.rbp, s.rsp, s.r8, s.r9, s.r10, s.r11, s.r12, s.r13, s.r14, s.r15];
        out.rip = s.rip;
        out.eflags = s.eflags as u32;
        out.segments.cs = USER64_CS;
        out.segments.ss = USER_DS;
    }
    fn from_gdb(g: &Self::Registers, r: &mut Registers) {
        let v = g.regs;
        let s = X86State {
            rax: v[0], rbx: v[1], rcx: v[2], rdx: v[3], rsi: v[4], rdi: v[5], rbp: v[6], rsp: v[7],
            r8: v[8], r9: v[9], r10: v[10], r11: v[11], r12: v[12], r13: v[13], r14: v[14], r15: v[15],
            rip: g.rip, eflags: u64::from(g.eflags),
        };
        *r = Registers::X86(s);
    }
    fn address(u: u64) -> u64 {
        u
    }
}

impl Layout for X86_SSE {
    fn to_gdb(r: &Registers, out: &mut Self::Registers) {
        let s = x86(r);
        (out.eax, out.ecx, out.edx, out.ebx) = (s.rax as u32, s.rcx as u32, s.rdx as u32, s.rbx as u32);
        (out.esp, out.ebp, out.esi, out.edi) = (s.rsp as u32, s.rbp as u32, s.rsi as u32, s.rdi as u32);
        out.eip = s.rip as u32;
        out.eflags = s.eflags as u32;
        out.segments.cs = USER32_CS;
        (out.segments.ss, out.segments.ds, out.segments.es) = (USER_DS, USER_DS, USER_DS);
    }
    fn from_gdb(g: &Self::Registers, r: &mut Registers) {
        let mut s = x86(r);
        (s.rax, s.rcx, s.rdx, s.rbx) = (g.eax.into(), g.ecx.into(), g.edx.into(), g.ebx.into());
        (s.rsp, s.rbp, s.rsi, s.rdi) = (g.esp.into(), g.ebp.into(), g.esi.into(), g.edi.into());
        s.rip = g.eip.into();
        s.eflags = g.eflags.into();
        *r = Registers::X86(s);
    }
    fn address(u: u32) -> u64 {
        u.into()
    }
}

impl Layout for AArch64 {
    fn to_gdb(r: &Registers, out: &mut Self::Registers) {
        if let Registers::Arm64(a) = r {
            out.x = a.x;
            out.sp = a.sp;
            out.pc = a.pc;
            out.cpsr = a.cpsr as u32;
        }
    }
    fn from_gdb(g: &Self::Registers, r: &mut Registers) {
        *r = Registers::Arm64(Arm64Regs { x: g.x, sp: g.sp, pc: g.pc, cpsr: g.cpsr.into() });
    }
    fn address(u: u64) -> u64 {
        u
    }
}

impl<A: Layout> Target for Gdb<'_, A> {
    type Arch = A;
    type Error = String;

    fn base_ops(&mut self) -> BaseOps<'_, A, String> {
        BaseOps::SingleThread(self)
    }
    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }
    fn support_host_io(&mut self) -> Option<HostIoOps<'_, Self>> {
        if self.symbols.is_some() { Some(self) } else { None }
    }
    fn support_extended_mode(&mut self) -> Option<ExtendedModeOps<'_, Self>> {
        Some(self)
    }
    fn support_exec_file(&mut self) -> Option<ExecFileOps<'_, Self>> {
        if self.symbols.is_some() { Some(self) } else { None }
    }
}

/// Only for gdb's `kill`: without extended mode gdbstub answers its
/// `vKill` with nothing, and gdb reports the connection closed. There is
/// one guest, loaded before gdb came: nothing else to run or attach to.
impl<A: Layout> ExtendedMode for Gdb<'_, A> {
    fn run(&mut self, _filename: Option<&[u8]>, _args: Args<'_, '_>) -> TargetResult<Pid, Self> {
        Err(TargetError::NonFatal)
    }
    fn attach(&mut self, _pid: Pid) -> TargetResult<(), Self> {
        Err(TargetError::NonFatal)
    }
    fn query_if_attached(&mut self, _pid: Pid) -> TargetResult<AttachKind, Self> {
        Ok(AttachKind::Run)
    }
    fn kill(&mut self, _pid: Option<Pid>) -> TargetResult<ShouldTerminate, Self> {
        Ok(ShouldTerminate::Yes)
    }
    fn restart(&mut self) -> Result<(), String> {
        Err("xnurun runs its one guest once".into())
    }
}

/// The program's file, as gdb asks for it after `target remote`: the
/// symbol file's name, which gdb then opens through the connection.
impl<A: Layout> ExecFile for Gdb<'_, A> {
    fn get_exec_file(&self, _pid: Option<Pid>, offset: u64, length: usize, buf: &mut [u8]) -> TargetResult<usize, Self> {
        let path = self.symbols.map(|f| f.path.as_os_str().as_encoded_bytes()).unwrap_or_default();
        Ok(slice_at(path, offset, length, buf))
    }
}

/// Up to `length` bytes of `data` from `offset` into `buf`.
fn slice_at(data: &[u8], offset: u64, length: usize, buf: &mut [u8]) -> usize {
    let from = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
    let n = length.min(buf.len()).min(data.len() - from);
    buf[..n].copy_from_slice(&data[from..from + n]);
    n
}

/// gdb's file access through the connection (vFile), for the symbol file
/// alone: gdb on another machine reads it too, and no other file of this
/// machine can be opened this way.
impl<A: Layout> HostIo for Gdb<'_, A> {
    fn support_open(&mut self) -> Option<HostIoOpenOps<'_, Self>> {
        Some(self)
    }
    fn support_close(&mut self) -> Option<HostIoCloseOps<'_, Self>> {
        Some(self)
    }
    fn support_pread(&mut self) -> Option<HostIoPreadOps<'_, Self>> {
        Some(self)
    }
    fn support_fstat(&mut self) -> Option<HostIoFstatOps<'_, Self>> {
        Some(self)
    }
}

/// The one file descriptor: the symbol file's.
const SYMBOLS_FD: u32 = 1;

impl<A: Layout> HostIoOpen for Gdb<'_, A> {
    fn open(&mut self, filename: &[u8], _flags: HostIoOpenFlags, _mode: HostIoOpenMode) -> HostIoResult<u32, Self> {
        match self.symbols {
            Some(f) if f.path.as_os_str().as_encoded_bytes() == filename => Ok(SYMBOLS_FD),
            _ => Err(HostIoError::Errno(HostIoErrno::ENOENT)),
        }
    }
}

impl<A: Layout> HostIoClose for Gdb<'_, A> {
    fn close(&mut self, _fd: u32) -> HostIoResult<(), Self> {
        Ok(())
    }
}

impl<A: Layout> HostIoPread for Gdb<'_, A> {
    fn pread(&mut self, fd: u32, count: usize, offset: u64, buf: &mut [u8]) -> HostIoResult<usize, Self> {
        match self.symbols {
            Some(f) if fd == SYMBOLS_FD => Ok(slice_at(&f.bytes, offset, count, buf)),
            _ => Err(HostIoError::Errno(HostIoErrno::EBADF)),
        }
    }
}

impl<A: Layout> HostIoFstat for Gdb<'_, A> {
    fn fstat(&mut self, fd: u32) -> HostIoResult<HostIoStat, Self> {
        match self.symbols {
            Some(f) if fd == SYMBOLS_FD => Ok(HostIoStat {
                st_dev: 0,
                st_ino: 0,
                st_mode: HostIoOpenMode::S_IFREG | HostIoOpenMode::S_IRUSR,
                st_nlink: 1,
                st_uid: 0,
                st_gid: 0,
                st_rdev: 0,
                st_size: f.bytes.len() as u64,
                st_blksize: 4096,
                st_blocks: f.bytes.len().div_ceil(512) as u64,
                st_atime: 0,
                st_mtime: 0,
                st_ctime: 0,
            }),
            _ => Err(HostIoError::Errno(HostIoErrno::EBADF)),
        }
    }
}

impl<A: Layout> SingleThreadBase for Gdb<'_, A> {
    fn read_registers(&mut self, regs: &mut A::Registers) -> TargetResult<(), Self> {
        A::to_gdb(&self.d.registers(), regs);
        Ok(())
    }
    fn write_registers(&mut self, regs: &A::Registers) -> TargetResult<(), Self> {
        let mut r = self.d.registers();
        A::from_gdb(regs, &mut r);
        self.d.set_registers(&r);
        Ok(())
    }
    /// Only the guest's own mappings: anything else (the page zero, a gap,
    /// xnurun's own memory) is an error reply.
    fn read_addrs(&mut self, start: A::Usize, data: &mut [u8]) -> TargetResult<usize, Self> {
        match self.d.read(A::address(start), data) {
            0 if !data.is_empty() => Err(TargetError::NonFatal),
            n => Ok(n),
        }
    }
    fn write_addrs(&mut self, start: A::Usize, data: &[u8]) -> TargetResult<(), Self> {
        if self.d.write(A::address(start), data) == data.len() { Ok(()) } else { Err(TargetError::NonFatal) }
    }
    fn support_resume(&mut self) -> Option<SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl<A: Layout> SingleThreadResume for Gdb<'_, A> {
    // A signal gdb passes on is not delivered: xnurun's guests have no
    // handlers (XNU would deliver it; the run goes on without it).
    fn resume(&mut self, _signal: Option<Signal>) -> Result<(), String> {
        self.action = Action::Continue;
        Ok(())
    }
    fn support_single_step(&mut self) -> Option<SingleThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl<A: Layout> SingleThreadSingleStep for Gdb<'_, A> {
    fn step(&mut self, _signal: Option<Signal>) -> Result<(), String> {
        self.action = Action::Step;
        Ok(())
    }
}

impl<A: Layout> Breakpoints for Gdb<'_, A> {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }
}

impl<A: Layout> SwBreakpoint for Gdb<'_, A> {
    fn add_sw_breakpoint(&mut self, addr: A::Usize, _kind: usize) -> TargetResult<bool, Self> {
        let a = A::address(addr);
        if !self.breakpoints.contains(&a) {
            self.breakpoints.push(a);
        }
        Ok(true)
    }
    fn remove_sw_breakpoint(&mut self, addr: A::Usize, _kind: usize) -> TargetResult<bool, Self> {
        let a = A::address(addr);
        let had = self.breakpoints.contains(&a);
        self.breakpoints.retain(|&b| b != a);
        Ok(had)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let ok = |s: &str| listen_address(s).unwrap().to_string();
        assert_eq!(ok("1234"), "127.0.0.1:1234");
        assert_eq!(ok(":0"), "127.0.0.1:0");
        assert_eq!(ok("[::1]:5"), "[::1]:5");
        assert_eq!(ok("0.0.0.0:7"), "0.0.0.0:7");
        for bad in ["", "x", "1:2:x", "127.0.0.1:65536", "127.0.0.1:-1"] {
            assert!(listen_address(bad).unwrap_err().contains("expected ADDR:PORT"), "{bad}");
        }
        let lo: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let out: SocketAddr = "192.0.2.1:9".parse().unwrap();
        assert_eq!(loopback_only("h:9", "h", 9, &[lo]), Ok(lo));
        assert!(loopback_only("h:9", "h", 9, &[lo, out]).unwrap_err().contains("h is not a loopback name"));
        assert!(loopback_only("h:9", "h", 9, &[]).is_err());
    }
}
