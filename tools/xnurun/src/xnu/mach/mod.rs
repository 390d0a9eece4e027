//! XNU's other call class, the Mach traps: which number is which trap in
//! the release an image meets ([`traps`]), the traps xnurun answers (port
//! names, [`ports`]; `mach_msg`, [`msg`]; the thread port's MIG server,
//! [`thread_act`]), and what the kernel does with a number that is no
//! trap.

pub mod msg;
pub mod ports;
pub mod state;
pub mod thread_act;
pub mod traps;

use super::end::{Death, End, Next};
use super::memory::Memory;
use super::outcome::Outcome;
use super::release::Release;
use super::{signal, trace};
use ports::{Object, Space};
use state::ThreadState;

/// A MIG reply from the kernel: its id and the bytes after the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub id: i32,
    pub body: Vec<u8>,
}

/// osfmk/mach/kern_return.h.
pub const KERN_INVALID_NAME: u32 = 15;
pub const KERN_INVALID_RIGHT: u32 = 17;

/// What a Mach trap number is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trap {
    /// A trap the kernel implements: its name.
    Real(&'static str),
    /// Negative, past `MACH_TRAP_TABLE_COUNT`, or a `kern_invalid` slot:
    /// `mach_call_munger`/`mach_call_munger64` (osfmk/i386/bsd_i386.c) and
    /// arm64's `mach_syscall` raise EXC_SYSCALL.
    Invalid,
}

pub fn trap(release: Release, number: i64) -> Trap {
    let table = match release {
        Release::Xnu4903 => &traps::XNU_4903,
        Release::Xnu11417 => &traps::XNU_11417,
    };
    match usize::try_from(number).ok().and_then(|n| table.get(n)) {
        Some(Some(name)) => Trap::Real(name),
        _ => Trap::Invalid,
    }
}

/// How many argument words a trap xnurun answers takes
/// (`mach_trap_arg_count` in `mach_trap_table`): past six (x86_64) or all
/// of them (i386), the munger copies them in from the user stack.
pub fn arg_count(name: &str) -> usize {
    match name {
        "mach_msg2_trap" => 8,
        "mach_msg_trap" => 7,
        "_kernelrpc_mach_port_deallocate_trap" => 2,
        _ => 0,
    }
}

/// The task's side of a Mach trap: its release, its bitness, its port
/// names, its memory and its thread's saved state.
pub struct Task<'a> {
    pub release: Release,
    pub is32: bool,
    /// `--fault port-died`.
    pub port_dies: bool,
    pub space: &'a mut Space,
    pub mem: &'a mut dyn Memory,
    pub state: &'a mut dyn ThreadState,
}

/// A Mach trap. `args` are its argument words, or `None` where the munger
/// could not copy them in (it returns KERN_INVALID_ARGUMENT then). A trap
/// xnurun does not answer stops the run; any other number is
/// EXC_SYSCALL, whose effect depends on the release
/// ([`Release::exc_syscall_kills`]).
pub fn answer(task: Task, number: i64, args: impl FnOnce(usize, &dyn Memory) -> Option<[u64; 8]>, regs: &str, tracing: bool) -> Next<Outcome> {
    let release = task.release;
    let name = match trap(release, number) {
        Trap::Real(name) => name,
        Trap::Invalid => {
            if tracing {
                trace::line(&format!("mach trap {number} ({regs}) = ? EXC_SYSCALL"));
            }
            return if release.exc_syscall_kills() {
                let why = format!("Mach trap {number} is no trap in {}: EXC_SYSCALL, SIGSYS since xnu-8020 (ux_exception)", release.name());
                Next::Die(None, Death::new(signal::SIGSYS, why))
            } else {
                // ux_exception before xnu-8020 has no signal for EXC_SYSCALL.
                Next::Resume(Outcome::Unchanged)
            };
        }
    };
    let unimplemented = || Next::End(End::Unimplemented(format!("the guest made Mach trap {number} ({name}; {regs}): a real XNU call that xnurun does not implement")));
    if !matches!(name, "mach_reply_port" | "thread_self_trap" | "task_self_trap" | "host_self_trap" | "mach_msg_trap" | "mach_msg2_trap" | "_kernelrpc_mach_port_deallocate_trap") {
        return unimplemented();
    }
    let Some(a) = args(arg_count(name), &*task.mem) else {
        if tracing {
            trace::line(&format!("{name}(arguments not readable) = {} KERN_INVALID_ARGUMENT", thread_act::KERN_INVALID_ARGUMENT));
        }
        return Next::Resume(Outcome::Value(u64::from(thread_act::KERN_INVALID_ARGUMENT)));
    };
    let Task { space, mem, state, is32, port_dies, .. } = task;
    let (value, line) = match name {
        "mach_reply_port" => {
            let n = space.new_port();
            (n, format!("{name}() = 0x{n:x}"))
        }
        "thread_self_trap" | "task_self_trap" | "host_self_trap" => {
            let object = match name {
                "thread_self_trap" => Object::Thread,
                "task_self_trap" => Object::Task,
                _ => Object::Host,
            };
            let n = space.send_right(object);
            (n, format!("{name}() = 0x{n:x} ({})", object.name()))
        }
        "_kernelrpc_mach_port_deallocate_trap" => {
            let (target, port) = (a[0] as u32, a[1] as u32);
            // port_name_to_current_task_noref: the target must name the
            // task's own port; a name that is no valid port is no right to
            // give up (mach_port_deallocate).
            let r = if space.lookup(target) != Some(Object::Task) || !space.has_send(target) {
                msg::MACH_SEND_INVALID_DEST
            } else if port == 0 || port == u32::MAX {
                0
            } else {
                space.deallocate(port).err().unwrap_or(0)
            };
            (r, format!("{name}(0x{target:x}, 0x{port:x}) = {}", kern_return(r)))
        }
        _ => {
            let (call, desc_count) = if name == "mach_msg2_trap" { msg::Call::msg2(&a) } else { (msg::Call::msg(&a), 0) };
            if desc_count != 0 && call.options & msg::MACH_SEND_MSG != 0 {
                return Next::End(End::Unimplemented(format!("{name} with {desc_count} descriptors")));
            }
            let policy = release == Release::Xnu11417;
            let head = format!("{name}(0x{:x}, {}, {}, rcv 0x{:x} {})", call.msg, msg::options_name(call.options), call.send_size, call.rcv_name, call.rcv_size);
            let mut seen = Vec::new();
            match msg::mach_msg(&call, msg::Task { is32, policy, port_dies }, space, mem, state, &mut seen) {
                msg::Msg::Return(mr, what) => {
                    let name = if mr == 0 { "MACH_MSG_SUCCESS" } else { msg::return_name(mr) };
                    let mut line = format!("{head}: {what} = 0x{mr:x} {name}");
                    // The message's words as they went and came, for a
                    // reader to lay beside the structs.
                    for (how, bytes) in seen {
                        let words: Vec<String> = bytes.chunks(4).map(|c| format!("{:08x}", u32::from_le_bytes(c.try_into().unwrap_or([0; 4])))).collect();
                        line.push_str(&format!("\n  {how} {} bytes: {}", bytes.len(), words.join(" ")));
                    }
                    (mr, line)
                }
                msg::Msg::Guard(why) => {
                    if tracing {
                        trace::line(&format!("{head} = ? EXC_GUARD"));
                    }
                    return Next::Die(None, Death::new(signal::SIGKILL, why));
                }
                msg::Msg::Unimplemented(what) => return Next::End(End::Unimplemented(format!("the guest made Mach trap {number} ({name}): {what}, which xnurun does not implement"))),
            }
        }
    };
    if tracing {
        trace::line(&line);
    }
    Next::Resume(Outcome::Value(u64::from(value)))
}

/// A kern_return_t or mach_msg_return_t with its name.
fn kern_return(r: u32) -> String {
    let name = match r {
        KERN_INVALID_NAME => "KERN_INVALID_NAME",
        KERN_INVALID_RIGHT => "KERN_INVALID_RIGHT",
        _ if r == 0 => "KERN_SUCCESS",
        _ => msg::return_name(r),
    };
    if r < 0x100 { format!("{r} {name}") } else { format!("0x{r:x} {name}") }
}

/// `machdep_call_table` (osfmk/i386/machdep_call.c), the same in both
/// releases for what matters here: `machdep_call_count` is 7, and slots 0,
/// 1, 2 and 4 of the 32-bit table are `kern_invalid` (64-bit: 2 and 4; 0
/// and 1 are the hypervisor's traps on macOS). A number past the table or
/// on such a slot returns KERN_INVALID_ARGUMENT in the return register and
/// the thread goes on (`machdep_syscall`, osfmk/i386/bsd_i386.c).
pub fn machdep(is64: bool, number: i64) -> Option<&'static str> {
    let table: [Option<&'static str>; 7] = if is64 {
        [Some("hv_task_trap"), Some("hv_thread_trap"), None, Some("thread_fast_set_cthread_self64"), None, Some("i386_set_ldt64"), Some("i386_get_ldt64")]
    } else {
        [None, None, None, Some("thread_fast_set_cthread_self"), Some("thread_set_user_ldt"), Some("i386_set_ldt"), Some("i386_get_ldt")]
    };
    usize::try_from(number).ok().and_then(|n| table.get(n).copied().flatten())
}

/// `kern_invalid`'s return (osfmk/kern/syscall_sw.c).
pub const KERN_INVALID_ARGUMENT: u64 = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traps_by_release() {
        assert_eq!(trap(Release::Xnu11417, 31), Trap::Real("mach_msg_trap"));
        assert_eq!(trap(Release::Xnu11417, 47), Trap::Real("mach_msg2_trap"));
        assert_eq!(trap(Release::Xnu4903, 47), Trap::Invalid, "mach_msg2_trap is newer");
        assert_eq!(trap(Release::Xnu4903, 26), Trap::Real("mach_reply_port"));
        assert_eq!(trap(Release::Xnu11417, 0), Trap::Invalid);
        assert_eq!(trap(Release::Xnu11417, 128), Trap::Invalid);
        assert_eq!(trap(Release::Xnu4903, -1), Trap::Invalid);
        assert_eq!(machdep(true, 3), Some("thread_fast_set_cthread_self64"));
        assert_eq!(machdep(true, 2), None);
        assert_eq!(machdep(false, 0), None);
        assert_eq!(machdep(false, 7), None);
    }
}
