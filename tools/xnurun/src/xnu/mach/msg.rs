//! `mach_msg`: a send, a receive, or both in one trap, through
//! `mach_msg2_trap` (47; the header in the trap's packed arguments) or
//! the old `mach_msg_trap` (31; the header read from the message), as
//! osfmk/ipc/mach_msg.c has them. Messages to the thread port go to the
//! kernel's MIG server for `thread_act` ([`thread_act`]); messages to a
//! port the task holds the receive right of wait in its queue.

use super::ports::{Object, Queued, Space};
use super::state::ThreadState;
use super::{thread_act, Reply};
use crate::xnu::memory::Memory;

// osfmk/mach/message.h.
pub const MACH_SEND_MSG: u64 = 0x1;
pub const MACH_RCV_MSG: u64 = 0x2;
pub const MACH_SEND_TIMEOUT: u64 = 0x10;
pub const MACH_RCV_TIMEOUT: u64 = 0x100;
pub const MACH_RCV_LARGE: u64 = 0x4;
pub const MACH64_MSG_VECTOR: u64 = 0x1_0000_0000;
pub const MACH64_SEND_KOBJECT_CALL: u64 = 0x2_0000_0000;
pub const MACH64_SEND_MQ_CALL: u64 = 0x4_0000_0000;
pub const MACH64_SEND_ANY: u64 = 0x8_0000_0000;
const CFI_MASK: u64 = MACH64_SEND_KOBJECT_CALL | MACH64_SEND_MQ_CALL | MACH64_SEND_ANY;
pub const MACH_MSGH_BITS_COMPLEX: u32 = 0x8000_0000;

pub const MACH_MSG_TYPE_MOVE_SEND: u32 = 17;
pub const MACH_MSG_TYPE_MOVE_SEND_ONCE: u32 = 18;
pub const MACH_MSG_TYPE_COPY_SEND: u32 = 19;
pub const MACH_MSG_TYPE_MAKE_SEND: u32 = 20;
pub const MACH_MSG_TYPE_MAKE_SEND_ONCE: u32 = 21;

pub const MACH_MSG_SUCCESS: u32 = 0;
pub const MACH_SEND_INVALID_DATA: u32 = 0x1000_0002;
pub const MACH_SEND_INVALID_DEST: u32 = 0x1000_0003;
pub const MACH_SEND_MSG_TOO_SMALL: u32 = 0x1000_0008;
pub const MACH_SEND_INVALID_REPLY: u32 = 0x1000_0009;
pub const MACH_SEND_TOO_LARGE: u32 = 0x1000_000e;
pub const MACH_SEND_INVALID_HEADER: u32 = 0x1000_0010;
pub const MACH_SEND_INVALID_OPTIONS: u32 = 0x1000_0013;
pub const MACH_RCV_INVALID_NAME: u32 = 0x1000_4002;
pub const MACH_RCV_TIMED_OUT: u32 = 0x1000_4003;
pub const MACH_RCV_TOO_LARGE: u32 = 0x1000_4004;
pub const MACH_RCV_INVALID_DATA: u32 = 0x1000_4008;
pub const MACH_RCV_PORT_DIED: u32 = 0x1000_4009;
pub const KERN_NOT_SUPPORTED: u32 = 46;

/// `mach_msg_header_t` as user space lays it out: bits, size, remote,
/// local, voucher, id.
pub const HEADER: u64 = 24;
/// The trailer every receive appends (`mach_msg_trailer_t`: format 0,
/// 8 bytes; `ipc_kmsg_add_trailer`).
const TRAILER: u64 = 8;
/// The largest message a task may send, `IPC_KMSG_MAX_BODY_SPACE`
/// (osfmk/ipc/ipc_policy.h; `ipc_kmsg_max_body_space` in xnu-4903): three
/// quarters of 64 MiB less `MAX_TRAILER_SIZE`, the 72-byte
/// `mach_msg_mac_trailer_t` of a 64-bit kernel (osfmk/mach/message.h).
const MAX_SEND: u64 = 64 * 1024 * 1024 * 3 / 4 - 72;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    pub bits: u32,
    pub remote: u32,
    pub local: u32,
    pub voucher: u32,
    pub id: i32,
}

/// One `mach_msg` call, whichever trap made it.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    pub trap: &'static str,
    pub options: u64,
    pub msg: u64,
    /// From the trap's arguments (`mach_msg2_trap`), or `None` for the old
    /// trap, which reads it from the message.
    pub header: Option<Header>,
    pub send_size: u64,
    pub rcv_size: u64,
    pub rcv_name: u32,
    pub timeout: u32,
}

impl Call {
    /// `mach_msg2_trap`'s packed arguments, low half and high half
    /// (osfmk/ipc/mach_msg.c): data, options, bits|send_size,
    /// remote|local, voucher|id, desc_count|rcv_name, rcv_size|priority,
    /// timeout.
    pub fn msg2(a: &[u64; 8]) -> (Call, u32) {
        let header = Header { bits: a[2] as u32, remote: a[3] as u32, local: (a[3] >> 32) as u32, voucher: a[4] as u32, id: (a[4] >> 32) as i32 };
        let call = Call {
            trap: "mach_msg2_trap",
            options: a[1],
            msg: a[0],
            header: Some(header),
            send_size: a[2] >> 32,
            rcv_size: a[6] & 0xffff_ffff,
            rcv_name: (a[5] >> 32) as u32,
            timeout: a[7] as u32,
        };
        (call, a[5] as u32)
    }

    /// `mach_msg_trap`: msg, option, send_size, rcv_size, rcv_name,
    /// timeout, notify.
    pub fn msg(a: &[u64; 8]) -> Call {
        Call {
            trap: "mach_msg_trap",
            options: a[1] & 0xffff_ffff,
            msg: a[0],
            header: None,
            send_size: a[2] & 0xffff_ffff,
            rcv_size: a[3] & 0xffff_ffff,
            rcv_name: a[4] as u32,
            timeout: a[5] as u32,
        }
    }
}

/// What a `mach_msg` trap comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// The trap returns this mach_msg_return_t; `what` says what the
    /// kernel did, for the trace.
    Return(u32, String),
    /// A fatal guard exception (`mach_port_guard_exception`,
    /// osfmk/ipc/ipc_policy.c: kGUARD_EXC_INVALID_OPTIONS is below
    /// MAX_FATAL_kGUARD_EXC_CODE): the task is killed, SIGKILL.
    Guard(String),
    /// Something XNU does that xnurun does not.
    Unimplemented(String),
}

/// The task, as far as the IPC policy asks about it.
#[derive(Debug, Clone, Copy)]
pub struct Task {
    /// A 32-bit task, whose map ends below 4 GiB: the old trap is the only
    /// one it has (`ipc_policy_allow_legacy_send_trap`).
    pub is32: bool,
    /// Whether the release has `mach_msg2_trap` and the legacy-send policy
    /// (xnu-8792 on); xnu-4903 has neither.
    pub policy: bool,
    /// `--fault port-died`: the receive's port dies first.
    pub port_dies: bool,
}

/// The bytes a message had on its way: what the sender gave (header and
/// body) and what the receiver got (header, body, trailer), for the trace.
pub type Seen = Vec<(&'static str, Vec<u8>)>;

pub fn mach_msg(call: &Call, task: Task, space: &mut Space, mem: &mut dyn Memory, state: &mut dyn ThreadState, seen: &mut Seen) -> Msg {
    let mut what = String::new();
    if call.options & MACH_SEND_MSG != 0 {
        match send(call, task, space, mem, state, seen) {
            Ok(w) => what = w,
            Err(m @ (Msg::Guard(_) | Msg::Unimplemented(_))) => return m,
            Err(Msg::Return(mr, w)) => return Msg::Return(mr, w),
        }
    }
    if call.options & MACH_RCV_MSG != 0 {
        let (mr, w) = match receive(call, task, space, mem, seen) {
            Ok(r) => r,
            Err(m) => return m,
        };
        if !what.is_empty() && !w.is_empty() {
            what.push_str("; ");
        }
        what.push_str(&w);
        return Msg::Return(mr, what);
    }
    Msg::Return(MACH_MSG_SUCCESS, what)
}

fn fail<T>(mr: u32, what: impl Into<String>) -> Result<T, Msg> {
    Err(Msg::Return(mr, what.into()))
}

fn read_header(mem: &dyn Memory, at: u64) -> Option<(Header, u32)> {
    let mut b = [0u8; HEADER as usize];
    if mem.read(at, &mut b) != b.len() {
        return None;
    }
    let w = |i: usize| u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().unwrap());
    Some((Header { bits: w(0), remote: w(2), local: w(3), voucher: w(4), id: w(5) as i32 }, w(1)))
}

fn send(call: &Call, task: Task, space: &mut Space, mem: &mut dyn Memory, state: &mut dyn ThreadState, seen: &mut Seen) -> Result<String, Msg> {
    if call.header.is_some() {
        // ipc_preflight_msg_option64: a mach_msg2 send names exactly one of
        // the three CFI kinds, or it is a guard exception.
        let cfi = call.options & CFI_MASK;
        if cfi == 0 || cfi & (cfi - 1) != 0 {
            return Err(Msg::Guard(format!("{} options 0x{:x}: a send must name exactly one of KOBJECT_CALL, MQ_CALL, ANY (ipc_preflight_msg_option64)", call.trap, call.options)));
        }
        if call.options & MACH64_MSG_VECTOR != 0 {
            return Err(Msg::Unimplemented(format!("{} with MACH64_MSG_VECTOR", call.trap)));
        }
    }
    if call.send_size < HEADER || call.send_size & 3 != 0 {
        return fail(MACH_SEND_MSG_TOO_SMALL, format!("send size {}", call.send_size));
    }
    if call.send_size > MAX_SEND {
        return fail(MACH_SEND_TOO_LARGE, format!("send size {}", call.send_size));
    }
    let header = match call.header {
        Some(h) => h,
        None => {
            // mach_msg_copyin_user_header, then the legacy-send policy.
            let Some((h, _)) = read_header(mem, call.msg) else { return fail(MACH_SEND_INVALID_DATA, "the header is not readable") };
            if task.policy && !task.is32 {
                return Err(Msg::Guard(format!(
                    "mach_msg_trap sends msgh_id {} from a 64-bit task: ipc_policy_allow_legacy_send_trap allows it only to images built with a macOS SDK up to 12, for five MIG ids",
                    h.id
                )));
            }
            h
        }
    };
    if header.bits & MACH_MSGH_BITS_COMPLEX != 0 {
        return Err(Msg::Unimplemented(format!("{}: a complex message (descriptors)", call.trap)));
    }
    let mut body = vec![0u8; (call.send_size - HEADER) as usize];
    if mem.read(call.msg + HEADER, &mut body) != body.len() {
        return fail(MACH_SEND_INVALID_DATA, "the message body is not readable");
    }
    let mut sent = Vec::with_capacity(call.send_size as usize);
    for w in [header.bits, call.send_size as u32, header.remote, header.local, header.voucher, header.id as u32] {
        sent.extend_from_slice(&w.to_le_bytes());
    }
    sent.extend_from_slice(&body);
    seen.push(("sent", sent));
    // ipc_kmsg_copyin_header: the dispositions first, then the names.
    let (dest_type, reply_type) = (header.bits & 0x1f, (header.bits >> 8) & 0x1f);
    let any_send = |t: u32| (MACH_MSG_TYPE_MOVE_SEND..=MACH_MSG_TYPE_MAKE_SEND_ONCE).contains(&t);
    if !any_send(dest_type) || (reply_type != 0 && !any_send(reply_type)) {
        return fail(MACH_SEND_INVALID_HEADER, format!("bits 0x{:x}", header.bits));
    }
    let dest = match space.lookup(header.remote) {
        Some(o @ Object::Port(_)) if matches!(dest_type, MACH_MSG_TYPE_MAKE_SEND | MACH_MSG_TYPE_MAKE_SEND_ONCE) => o,
        Some(o) if !matches!(o, Object::Port(_)) && space.has_send(header.remote) && matches!(dest_type, MACH_MSG_TYPE_COPY_SEND | MACH_MSG_TYPE_MOVE_SEND) => o,
        _ => return fail(MACH_SEND_INVALID_DEST, format!("to 0x{:x}", header.remote)),
    };
    let reply_port = match (header.local, reply_type) {
        (0, _) => None,
        (name, MACH_MSG_TYPE_MAKE_SEND | MACH_MSG_TYPE_MAKE_SEND_ONCE) if matches!(space.lookup(name), Some(Object::Port(_))) => Some(name),
        (name, _) => return fail(MACH_SEND_INVALID_REPLY, format!("reply port 0x{name:x}")),
    };
    if dest_type == MACH_MSG_TYPE_MOVE_SEND {
        // The right goes into the message: one user reference fewer.
        let _ = space.deallocate(header.remote);
    }
    if call.header.is_some() {
        // ipc_validate_kmsg_dest_from_user: the CFI kind must match the
        // destination (MACH64_SEND_ANY passes on macOS).
        let kobject = !matches!(dest, Object::Port(_));
        let ok = call.options & MACH64_SEND_ANY != 0
            || if kobject {
                call.options & MACH64_SEND_KOBJECT_CALL != 0 && call.options & MACH_RCV_MSG != 0
            } else {
                call.options & MACH64_SEND_MQ_CALL != 0
            };
        if !ok {
            return fail(MACH_SEND_INVALID_OPTIONS, format!("to the {} 0x{:x} with options 0x{:x}", dest.name(), header.remote, call.options));
        }
    }
    match dest {
        Object::Thread => {
            let (reply, what) = thread_act::serve(header, call.send_size, &body, state);
            let Ok(reply) = reply else { return Err(Msg::Unimplemented(format!("{what} to the thread port"))) };
            let what = format!("{}: {what}", describe_dest(header.remote, dest));
            if let Some(port) = reply_port {
                enqueue_reply(space, port, &reply);
            }
            Ok(what)
        }
        Object::Task | Object::Host => {
            Err(Msg::Unimplemented(format!("msgh_id {} to the {}: xnurun serves only thread_get_state and thread_set_state on the thread port", header.id, dest.name())))
        }
        Object::Port(name) => {
            if reply_port.is_some() {
                return Err(Msg::Unimplemented(format!("{}: a reply right carried to a port", call.trap)));
            }
            // The receiver sees the right it was sent by: a send right
            // (made or copied) or a send-once right.
            let local_type = if dest_type == MACH_MSG_TYPE_MAKE_SEND_ONCE || dest_type == MACH_MSG_TYPE_MOVE_SEND_ONCE { MACH_MSG_TYPE_MOVE_SEND_ONCE } else { MACH_MSG_TYPE_MOVE_SEND };
            let size = call.send_size as usize;
            if let Some(q) = space.queue(name) {
                q.push_back(Queued { bits: local_type << 8, reply: 0, id: header.id, body });
            }
            Ok(format!("msgh_id {} ({size} bytes) to port 0x{name:x}", header.id))
        }
    }
}

fn describe_dest(name: u32, o: Object) -> String {
    format!("0x{name:x} {}", o.name())
}

fn enqueue_reply(space: &mut Space, port: u32, r: &Reply) {
    if let Some(q) = space.queue(port) {
        // A kernel reply goes to the send-once right made from the reply
        // port: the receiver's local disposition is MOVE_SEND_ONCE.
        q.push_back(Queued { bits: MACH_MSG_TYPE_MOVE_SEND_ONCE << 8, reply: 0, id: r.id, body: r.body.clone() });
    }
}

fn receive(call: &Call, task: Task, space: &mut Space, mem: &mut dyn Memory, seen: &mut Seen) -> Result<(u32, String), Msg> {
    let name = call.rcv_name;
    if !matches!(space.lookup(name), Some(Object::Port(_))) {
        return Ok((MACH_RCV_INVALID_NAME, format!("receive on 0x{name:x}")));
    }
    if task.port_dies {
        space.destroy_port(name);
        return Ok((MACH_RCV_PORT_DIED, format!("receive on 0x{name:x}: the port died (--fault port-died)")));
    }
    let Some(q) = space.queue(name) else { return Ok((MACH_RCV_INVALID_NAME, format!("receive on 0x{name:x}"))) };
    let Some(m) = q.front().cloned() else {
        if call.options & MACH_RCV_TIMEOUT != 0 {
            // One thread, and nothing else can send to this port: the wait
            // can only time out.
            std::thread::sleep(std::time::Duration::from_millis(u64::from(call.timeout)));
            return Ok((MACH_RCV_TIMED_OUT, format!("receive on 0x{name:x}: empty")));
        }
        return Err(Msg::Unimplemented(format!("a receive on the empty port 0x{name:x} with no timeout: nothing in a one-thread task can ever send to it, so XNU would wait forever")));
    };
    let size = HEADER + m.body.len() as u64;
    if size + TRAILER > call.rcv_size {
        // Without MACH_RCV_LARGE the message is dequeued and destroyed.
        if call.options & MACH_RCV_LARGE == 0 {
            q.pop_front();
        }
        return Ok((MACH_RCV_TOO_LARGE, format!("receive on 0x{name:x}: {size} bytes and the trailer need more than {}", call.rcv_size)));
    }
    q.pop_front();
    let mut out = Vec::with_capacity((size + TRAILER) as usize);
    for w in [m.bits, size as u32, m.reply, name, 0, m.id as u32] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&m.body);
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(TRAILER as u32).to_le_bytes());
    seen.push(("received", out.clone()));
    if mem.write(call.msg, &out) != out.len() {
        return Ok((MACH_RCV_INVALID_DATA, format!("receive on 0x{name:x}: the buffer is not writable")));
    }
    Ok((MACH_MSG_SUCCESS, format!("received msgh_id {} ({size} bytes)", m.id)))
}

/// The names of a mach_msg return, for the trace.
pub fn return_name(mr: u32) -> &'static str {
    match mr {
        MACH_MSG_SUCCESS => "MACH_MSG_SUCCESS",
        MACH_SEND_INVALID_DATA => "MACH_SEND_INVALID_DATA",
        MACH_SEND_INVALID_DEST => "MACH_SEND_INVALID_DEST",
        MACH_SEND_MSG_TOO_SMALL => "MACH_SEND_MSG_TOO_SMALL",
        MACH_SEND_INVALID_REPLY => "MACH_SEND_INVALID_REPLY",
        MACH_SEND_TOO_LARGE => "MACH_SEND_TOO_LARGE",
        MACH_SEND_INVALID_HEADER => "MACH_SEND_INVALID_HEADER",
        MACH_SEND_INVALID_OPTIONS => "MACH_SEND_INVALID_OPTIONS",
        MACH_RCV_INVALID_NAME => "MACH_RCV_INVALID_NAME",
        MACH_RCV_TIMED_OUT => "MACH_RCV_TIMED_OUT",
        MACH_RCV_TOO_LARGE => "MACH_RCV_TOO_LARGE",
        MACH_RCV_INVALID_DATA => "MACH_RCV_INVALID_DATA",
        MACH_RCV_PORT_DIED => "MACH_RCV_PORT_DIED",
        KERN_NOT_SUPPORTED => "KERN_NOT_SUPPORTED",
        _ => "",
    }
}

/// The options, for the trace: SEND|RCV|KOBJECT_CALL and the rest in hex.
pub fn options_name(o: u64) -> String {
    let names = [
        (MACH_SEND_MSG, "SEND"),
        (MACH_RCV_MSG, "RCV"),
        (MACH_RCV_LARGE, "RCV_LARGE"),
        (MACH_SEND_TIMEOUT, "SEND_TIMEOUT"),
        (MACH_RCV_TIMEOUT, "RCV_TIMEOUT"),
        (MACH64_MSG_VECTOR, "VECTOR"),
        (MACH64_SEND_KOBJECT_CALL, "KOBJECT_CALL"),
        (MACH64_SEND_MQ_CALL, "MQ_CALL"),
        (MACH64_SEND_ANY, "ANY"),
    ];
    let mut parts: Vec<String> = names.iter().filter(|(b, _)| o & b != 0).map(|(_, n)| n.to_string()).collect();
    let rest = names.iter().fold(o, |o, (b, _)| o & !b);
    if rest != 0 || parts.is_empty() {
        parts.push(format!("0x{rest:x}"));
    }
    parts.join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trace names each mach_msg_return_t as osfmk/mach/message.h
    /// defines it (the values are the header's, written out here).
    #[test]
    fn return_codes_are_named_as_message_h_names_them() {
        for (v, name) in [
            (0, "MACH_MSG_SUCCESS"),
            (0x1000_0002, "MACH_SEND_INVALID_DATA"),
            (0x1000_0003, "MACH_SEND_INVALID_DEST"),
            (0x1000_0008, "MACH_SEND_MSG_TOO_SMALL"),
            (0x1000_0009, "MACH_SEND_INVALID_REPLY"),
            (0x1000_000e, "MACH_SEND_TOO_LARGE"),
            (0x1000_0010, "MACH_SEND_INVALID_HEADER"),
            (0x1000_0013, "MACH_SEND_INVALID_OPTIONS"),
            (0x1000_4002, "MACH_RCV_INVALID_NAME"),
            (0x1000_4003, "MACH_RCV_TIMED_OUT"),
            (0x1000_4004, "MACH_RCV_TOO_LARGE"),
            (0x1000_4008, "MACH_RCV_INVALID_DATA"),
            (0x1000_4009, "MACH_RCV_PORT_DIED"),
            (46, "KERN_NOT_SUPPORTED"),
        ] {
            assert_eq!(return_name(v), name, "0x{v:x}");
        }
        assert_eq!(return_name(0x1000_4005), "");
    }

    /// Option bits by their message.h names, the rest in hex.
    #[test]
    fn options_are_named_bit_by_bit() {
        assert_eq!(options_name(0x3), "SEND|RCV");
        assert_eq!(options_name(0x114), "RCV_LARGE|SEND_TIMEOUT|RCV_TIMEOUT");
        assert_eq!(options_name(0xf_0000_0000), "VECTOR|KOBJECT_CALL|MQ_CALL|ANY");
        assert_eq!(options_name(0x2_0000_0043), "SEND|RCV|KOBJECT_CALL|0x40");
        assert_eq!(options_name(0), "0x0");
    }
}
