//! XNU: the thread asks the kernel for its own registers. Two traps give
//! it names for its thread port (`thread_self_trap`, 27) and for a new
//! port to receive the answer on (`mach_reply_port`, 26); one `mach_msg`
//! trap then sends the MIG request `thread_get_state` (subsystem
//! `thread_act`, osfmk/mach/thread_act.defs: msgh_id 3603) to the thread
//! port and receives the reply (3703) in the same buffer.
//!
//! The 64-bit images meet current XNU, where a 64-bit task may not send
//! with the old `mach_msg_trap` (`ipc_policy_allow_legacy_send_trap`,
//! osfmk/ipc/ipc_policy.c: a fatal guard exception), so they use
//! `mach_msg2_trap` (47) with the header packed into its arguments, as
//! libsyscall's `mach_msg2_internal` passes them. The i386 image meets
//! macOS 10.14 (xnu-4903), which has only `mach_msg_trap` (31).

//!
//! Arguments break one rule on purpose, to see XNU's answer (the tests
//! run each): `flavor=N`, `count=N` (fewer words than the flavor has:
//! KERN_INVALID_ARGUMENT), `id=N` (a msgh_id no routine has: MIG_BAD_ID),
//! `dest=N` (a name that is no port of ours: MACH_SEND_INVALID_DEST),
//! `receive-only` (a receive on the empty reply port with a zero timeout:
//! MACH_RCV_TIMED_OUT), `legacy` (the old trap from a 64-bit task: killed
//! by a guard exception).

use crate::Failure;
use crate::sys;
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// What the arguments changed; `u32::MAX` where they left it alone.
static FLAVOR: AtomicU32 = AtomicU32::new(u32::MAX);
static COUNT: AtomicU32 = AtomicU32::new(u32::MAX);
static ID: AtomicU32 = AtomicU32::new(u32::MAX);
static DEST: AtomicU32 = AtomicU32::new(u32::MAX);
static RECEIVE_ONLY: AtomicU32 = AtomicU32::new(0);
static LEGACY: AtomicU32 = AtomicU32::new(0);

fn number(s: &[u8]) -> Option<u32> {
    let (digits, radix) = match s {
        [b'0', b'x', rest @ ..] => (rest, 16),
        _ => (s, 10),
    };
    let mut n: u32 = 0;
    for &c in digits {
        let d = (c as char).to_digit(radix)?;
        n = n.checked_mul(radix)?.checked_add(d)?;
    }
    (!digits.is_empty()).then_some(n)
}

/// Reads the arguments (see the module's comment).
pub fn options(start: &sys::Start) -> Result<(), Failure> {
    for arg in sys::strings(start.argv).skip(1) {
        let (cell, value) = match arg {
            [b'f', b'l', b'a', b'v', b'o', b'r', b'=', v @ ..] => (&FLAVOR, number(v)),
            [b'c', b'o', b'u', b'n', b't', b'=', v @ ..] => (&COUNT, number(v)),
            [b'i', b'd', b'=', v @ ..] => (&ID, number(v)),
            [b'd', b'e', b's', b't', b'=', v @ ..] => (&DEST, number(v)),
            b"receive-only" => (&RECEIVE_ONLY, Some(1)),
            b"legacy" => (&LEGACY, Some(1)),
            _ => (&FLAVOR, None),
        };
        if let Some(n) = value {
            cell.store(n, Relaxed);
        } else {
            return Err(Failure { call: b"unknown argument", code: 0, hint: b" (flavor=N count=N id=N dest=N receive-only legacy)" });
        }
    }
    Ok(())
}

fn or(cell: &AtomicU32, default: u32) -> u32 {
    match cell.load(Relaxed) {
        u32::MAX => default,
        v => v,
    }
}

const MACH_REPLY_PORT: usize = 26;
const THREAD_SELF_TRAP: usize = 27;
const MACH_MSG_TRAP: usize = 31;
const MACH_MSG2_TRAP: usize = 47;

// osfmk/mach/message.h.
const MACH_SEND_MSG: u64 = 0x1;
const MACH_RCV_MSG: u64 = 0x2;
const MACH_RCV_TIMEOUT: u64 = 0x100;
/// mach_msg2 makes the sender say what the destination is: a kernel
/// object here (`ipc_validate_kmsg_dest_from_user`).
const MACH64_SEND_KOBJECT_CALL: u64 = 0x2_0000_0000;
const MACH_MSG_TYPE_COPY_SEND: u32 = 19;
const MACH_MSG_TYPE_MAKE_SEND_ONCE: u32 = 21;
/// The request's rights: a copy of our send right to the thread port
/// (remote), and a send-once right made from the reply port (local) for
/// the kernel to answer through.
const BITS: u32 = MACH_MSG_TYPE_COPY_SEND | MACH_MSG_TYPE_MAKE_SEND_ONCE << 8;

const THREAD_GET_STATE: u32 = 3603;
/// The request: the 24-byte header, the NDR record, flavor, count.
const REQUEST_SIZE: u32 = 40;

#[cfg(target_arch = "x86_64")]
mod arch {
    /// `x86_THREAD_STATE64` (osfmk/mach/i386/thread_status.h): 21 64-bit
    /// registers, 42 words.
    pub const FLAVOR: u32 = 4;
    pub const COUNT: u32 = 42;
    pub const NAMES: [&str; 21] = [
        "rax", "rbx", "rcx", "rdx", "rdi", "rsi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip",
        "rflags", "cs", "fs", "gs",
    ];
    pub const DIGITS: usize = 16;
    pub const FROM: &[u8] = b"from: thread_get_state(x86_THREAD_STATE64) on this thread's own port, a Mach message through mach_msg2_trap: \
what the syscall entry saved (rip after the syscall, rcx = the user rsp, cs = SYSCALL_CS)";
}

#[cfg(target_arch = "x86")]
mod arch {
    /// `x86_THREAD_STATE32`: 16 32-bit registers.
    pub const FLAVOR: u32 = 1;
    pub const COUNT: u32 = 16;
    pub const NAMES: [&str; 16] = ["eax", "ebx", "ecx", "edx", "edi", "esi", "ebp", "esp", "ss", "eflags", "eip", "cs", "ds", "es", "fs", "gs"];
    pub const DIGITS: usize = 8;
    pub const FROM: &[u8] = b"from: thread_get_state(x86_THREAD_STATE32) on this thread's own port, a Mach message through mach_msg_trap: \
what the sysenter entry saved (eip = edx, esp = ecx, cs = SYSENTER_CS)";
}

#[cfg(target_arch = "aarch64")]
mod arch {
    /// `ARM_THREAD_STATE64` (osfmk/mach/arm/thread_status.h): x0-x28, fp,
    /// lr, sp, pc, then cpsr and a pad word: 68 words.
    pub const FLAVOR: u32 = 6;
    pub const COUNT: u32 = 68;
    pub const NAMES: [&str; 34] = [
        "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16", "x17",
        "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "fp", "lr", "sp", "pc", "cpsr",
    ];
    pub const DIGITS: usize = 16;
    pub const FROM: &[u8] = b"from: thread_get_state(ARM_THREAD_STATE64) on this thread's own port, a Mach message through mach_msg2_trap: \
what the svc saved (pc after the svc, x16 = -47)";
}

pub use arch::{DIGITS, FROM, NAMES};
pub const HEX_ERRORS: bool = true;

/// The message buffer: the request going out, the reply (header, NDR,
/// RetCode, count, the state) and the kernel's trailer coming back.
#[repr(C, align(8))]
struct Buffer([u32; 96]);

fn failed(call: &'static [u8], code: usize, hint: &'static [u8]) -> Failure {
    Failure { call, code: code as u64, hint }
}

/// The one send-and-receive: `mach_msg2_trap` with the header's words
/// packed two to an argument, or `mach_msg_trap`, which reads the header
/// from the buffer.
fn send_and_receive(buf: &mut Buffer, dest: u32, reply: u32, id: u32) -> usize {
    let size = core::mem::size_of::<Buffer>() as u64;
    let data = buf.0.as_mut_ptr() as usize;
    // `receive-only`: no send, and a receive that gives up at once.
    let (send, timeout) = if RECEIVE_ONLY.load(Relaxed) != 0 { (0, MACH_RCV_TIMEOUT) } else { (MACH_SEND_MSG, 0) };
    if cfg!(target_arch = "x86") || LEGACY.load(Relaxed) != 0 {
        let options = (send | MACH_RCV_MSG | timeout) as usize;
        sys::mach_trap(MACH_MSG_TRAP, &[data, options, REQUEST_SIZE as usize, size as usize, reply as usize, 0, 0, 0])
    } else {
        let pack = |lo: u32, hi: u32| (u64::from(lo) | u64::from(hi) << 32) as usize;
        let options = (send | MACH_RCV_MSG | timeout | MACH64_SEND_KOBJECT_CALL) as usize;
        let args = [data, options, pack(BITS, REQUEST_SIZE), pack(dest, reply), pack(0, id), pack(0, reply), pack(size as u32, 0), 0];
        sys::mach_trap(MACH_MSG2_TRAP, &args)
    }
}

pub fn read(out: &mut [u64]) -> Result<(), Failure> {
    let thread = sys::mach_trap0(THREAD_SELF_TRAP) as u32;
    if thread == 0 {
        return Err(failed(b"thread_self_trap", 0, b" (MACH_PORT_NULL)"));
    }
    let reply = sys::mach_trap0(MACH_REPLY_PORT) as u32;
    if reply == 0 {
        return Err(failed(b"mach_reply_port", 0, b" (MACH_PORT_NULL)"));
    }
    let mut buf = Buffer([0; 96]);
    let (dest, id) = (or(&DEST, thread), or(&ID, THREAD_GET_STATE));
    // Header: bits, size, remote, local, voucher, id. NDR_record: little
    // endian (int_rep 1 in its fifth byte). Then the flavor, and the count
    // of words we have room for.
    buf.0[..10].copy_from_slice(&[BITS, REQUEST_SIZE, dest, reply, 0, id, 0, 1, or(&FLAVOR, arch::FLAVOR), or(&COUNT, arch::COUNT)]);
    let mr = send_and_receive(&mut buf, dest, reply, id);
    if mr != 0 {
        return Err(failed(b"mach_msg(thread_get_state)", mr, b""));
    }
    let w = &buf.0;
    // A MIG reply's id is the request's + 100.
    if w[5] != id.wrapping_add(100) {
        return Err(failed(b"thread_get_state: the reply's msgh_id", w[5] as usize, b" (the request's + 100 expected)"));
    }
    if w[8] != 0 {
        return Err(failed(b"thread_get_state", w[8] as usize, b" (the reply's RetCode)"));
    }
    if w[9] != arch::COUNT {
        return Err(failed(b"thread_get_state: the reply's count", w[9] as usize, b""));
    }
    let state = &w[10..10 + arch::COUNT as usize];
    for (i, v) in out.iter_mut().enumerate() {
        *v = if cfg!(target_arch = "x86") {
            u64::from(state[i])
        } else if cfg!(target_arch = "aarch64") && i == 33 {
            // cpsr: one 32-bit word after the 33 registers.
            u64::from(state[66])
        } else {
            u64::from(state[2 * i]) | u64::from(state[2 * i + 1]) << 32
        };
    }
    Ok(())
}
