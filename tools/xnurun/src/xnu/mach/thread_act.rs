//! What the kernel answers a message to a thread port: `ipc_kobject_server`
//! (osfmk/kern/ipc_kobject.c) finds the MIG routine by `msgh_id` and runs
//! the server stub generated from osfmk/mach/thread_act.defs (subsystem
//! `thread_act`, 3600): `thread_get_state` is routine 3 (3603),
//! `thread_set_state` routine 4 (3604). The reply's id is the request's
//! plus 100.
//!
//! Request bodies, after the 24-byte header: an NDR record (8 bytes), the
//! flavor, the count; `thread_set_state` then the state words. Replies:
//! NDR, RetCode, and on success `thread_get_state`'s count and words. A
//! failed routine answers with `mig_reply_error_t` (NDR and RetCode only).

use super::msg::Header;
use super::state::{StateError, ThreadState};
use super::Reply;

pub const THREAD_GET_STATE: i32 = 3603;
pub const THREAD_SET_STATE: i32 = 3604;
/// `thread_act` has 39 routines and skips (3600-3638).
const THREAD_ACT: std::ops::Range<i32> = 3600..3639;
/// The other subsystems `mig_e` (osfmk/kern/ipc_kobject.c) serves, base and
/// a bound past their last routine (each .defs of this release): an id in
/// one of them is a real routine that xnurun does not serve; any other id
/// is MIG_BAD_ID.
const KERNEL_SUBSYSTEMS: [(i32, i32); 17] = [
    (200, 300),       // mach_host
    (400, 500),       // host_priv
    (1000, 1100),     // clock
    (2400, 2420),     // exc, mach_exc
    (2800, 3000),     // iokit
    (3000, 3100),     // processor
    (3200, 3300),     // mach_port
    (3400, 3500),     // task
    (3800, 3900),     // vm32_map
    (4000, 4100),     // processor_set
    (4800, 4900),     // mach_vm
    (4900, 5000),     // memory_entry
    (5400, 5500),     // mach_voucher
    (6200, 6300),     // UNDReply
    (8000, 8100),     // task_restartable
    (51471, 51472),   // arcade_register
    (716200, 716300), // mach_eventlink
];

pub const KERN_SUCCESS: u32 = 0;
pub const KERN_INVALID_ARGUMENT: u32 = 4;
pub const MIG_BAD_ID: i32 = -303;
pub const MIG_BAD_ARGUMENTS: i32 = -304;
/// `THREAD_STATE_MAX` (osfmk/mach/machine/thread_state.h): the server
/// trims a larger count to it.
const THREAD_STATE_MAX: u32 = 1296;

/// The NDR record of this machine (`NDR_record`, libmig): little-endian
/// integers (int_rep 1), ASCII, IEEE floats.
const NDR: [u8; 8] = [0, 0, 0, 0, 1, 0, 0, 0];

fn words(body: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(body.get(i * 4..i * 4 + 4)?.try_into().ok()?))
}

fn error_reply(id: i32, code: i32) -> Reply {
    let mut body = NDR.to_vec();
    body.extend_from_slice(&code.to_le_bytes());
    Reply { id: id + 100, body }
}

pub fn kern_name(code: i32) -> &'static str {
    match code {
        0 => "KERN_SUCCESS",
        4 => "KERN_INVALID_ARGUMENT",
        MIG_BAD_ID => "MIG_BAD_ID",
        MIG_BAD_ARGUMENTS => "MIG_BAD_ARGUMENTS",
        _ => "",
    }
}

/// Serves one request to the thread port: the reply (to go to the reply
/// port, if the request named one) and what was done, for the trace. An
/// `Err` is a routine or flavor xnurun does not serve.
pub fn serve(h: Header, size: u64, body: &[u8], state: &mut dyn ThreadState) -> (Result<Reply, StateError>, String) {
    let flavor = words(body, 2);
    let count = words(body, 3);
    let named = |name: &str| format!("{name}({}, {})", flavor.map_or("?".into(), |f| state.flavor_name(f)), count.map_or("?".into(), |c| c.to_string()));
    match h.id {
        THREAD_GET_STATE => {
            // __MIG_check__Request__thread_get_state_t: exactly the fixed size.
            let (Some(flavor), Some(count), 40) = (flavor, count, size) else {
                return (Ok(error_reply(h.id, MIG_BAD_ARGUMENTS)), format!("thread_get_state, {size} bytes = MIG_BAD_ARGUMENTS"));
            };
            let what = named("thread_get_state");
            match state.get(flavor, count.min(THREAD_STATE_MAX)) {
                Ok(w) => {
                    let mut b = NDR.to_vec();
                    b.extend_from_slice(&KERN_SUCCESS.to_le_bytes());
                    b.extend_from_slice(&(w.len() as u32).to_le_bytes());
                    for x in &w {
                        b.extend_from_slice(&x.to_le_bytes());
                    }
                    (Ok(Reply { id: h.id + 100, body: b }), format!("{what} = KERN_SUCCESS, {} words", w.len()))
                }
                Err(StateError::Kern(k)) => (Ok(error_reply(h.id, k as i32)), format!("{what} = {}", kern_name(k as i32))),
                Err(e) => (Err(e), what),
            }
        }
        THREAD_SET_STATE => {
            // The count must match the words sent, up to THREAD_STATE_MAX.
            let ok = matches!((flavor, count), (Some(_), Some(c)) if c <= THREAD_STATE_MAX && size == 40 + 4 * u64::from(c));
            let (Some(flavor), Some(count), true) = (flavor, count, ok) else {
                return (Ok(error_reply(h.id, MIG_BAD_ARGUMENTS)), format!("thread_set_state, {size} bytes = MIG_BAD_ARGUMENTS"));
            };
            let new: Vec<u32> = (0..count as usize).filter_map(|i| words(body, 4 + i)).collect();
            let what = named("thread_set_state");
            match state.set(flavor, &new) {
                Ok(()) => (Ok(error_reply(h.id, 0)), format!("{what} = KERN_SUCCESS")),
                Err(StateError::Kern(k)) => (Ok(error_reply(h.id, k as i32)), format!("{what} = {}", kern_name(k as i32))),
                Err(e) => (Err(e), what),
            }
        }
        id if THREAD_ACT.contains(&id) || KERNEL_SUBSYSTEMS.iter().any(|&(a, b)| (a..b).contains(&id)) => {
            (Err(StateError::Unimplemented("a routine")), format!("msgh_id {id}, a kernel routine xnurun does not serve,"))
        }
        id => (Ok(error_reply(id, MIG_BAD_ID)), format!("msgh_id {id} = MIG_BAD_ID")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake([u32; 4]);
    impl ThreadState for Fake {
        fn get(&self, flavor: u32, count: u32) -> Result<Vec<u32>, StateError> {
            match flavor {
                1 if count >= 4 => Ok(self.0.to_vec()),
                1 => Err(StateError::Kern(KERN_INVALID_ARGUMENT)),
                _ => Err(StateError::Kern(KERN_INVALID_ARGUMENT)),
            }
        }
        fn set(&mut self, _: u32, w: &[u32]) -> Result<(), StateError> {
            self.0.copy_from_slice(w);
            Ok(())
        }
        fn flavor_name(&self, f: u32) -> String {
            f.to_string()
        }
    }

    fn request(flavor: u32, count: u32, extra: &[u32]) -> Vec<u8> {
        let mut b = NDR.to_vec();
        for w in [flavor, count].iter().chain(extra) {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b
    }

    #[test]
    fn get_state_replies_with_the_words_or_the_error() {
        let mut s = Fake([1, 2, 3, 4]);
        let h = |id| Header { id, ..Header::default() };
        let (r, _) = serve(h(3603), 40, &request(1, 4, &[]), &mut s);
        let r = r.unwrap();
        assert_eq!(r.id, 3703);
        assert_eq!(r.body.len(), 8 + 4 + 4 + 16);
        assert_eq!(&r.body[8..16], &[0, 0, 0, 0, 4, 0, 0, 0]);
        let (r, _) = serve(h(3603), 40, &request(1, 3, &[]), &mut s);
        assert_eq!(r.unwrap().body, error_reply(3603, 4).body, "a count too small");
        let (r, _) = serve(h(3603), 44, &request(1, 4, &[0]), &mut s);
        assert_eq!(&r.unwrap().body[8..], &(-304i32).to_le_bytes(), "the wrong size: MIG_BAD_ARGUMENTS (osfmk/mach/mig_errors.h)");
        let (r, _) = serve(h(7), 40, &request(1, 4, &[]), &mut s);
        let r = r.unwrap();
        assert_eq!((r.id, &r.body[8..]), (107, &(-303i32).to_le_bytes()[..]), "MIG_BAD_ID (osfmk/mach/mig_errors.h)");
        // The trace's names for the RetCodes.
        assert_eq!([kern_name(0), kern_name(4), kern_name(-303), kern_name(-304), kern_name(5)], ["KERN_SUCCESS", "KERN_INVALID_ARGUMENT", "MIG_BAD_ID", "MIG_BAD_ARGUMENTS", ""]);
        assert!(serve(h(3605), 32, &[], &mut s).0.is_err(), "thread_suspend: real, not served");
        let (r, _) = serve(h(3604), 56, &request(1, 4, &[9, 8, 7, 6]), &mut s);
        assert_eq!(&r.unwrap().body[8..], &0i32.to_le_bytes());
        assert_eq!(s.0, [9, 8, 7, 6]);
    }
}
