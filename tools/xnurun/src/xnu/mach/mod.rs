//! XNU's other call class, the Mach traps: which number is which trap in
//! the release an image meets ([`traps`]), and what the kernel does with a
//! number that is no trap.

pub mod traps;

use super::end::{Death, End, Next};
use super::outcome::Outcome;
use super::release::Release;
use super::{signal, trace};

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

/// A Mach trap: one the kernel implements stops the run (xnurun answers
/// none yet); any other number is EXC_SYSCALL, whose effect depends on the
/// release ([`Release::exc_syscall_kills`]).
pub fn answer(release: Release, number: i64, regs: &str, tracing: bool) -> Next<Outcome> {
    match trap(release, number) {
        Trap::Real(name) => Next::End(End::Unimplemented(format!(
            "the guest made Mach trap {number} ({name}; {regs}): a real XNU call that xnurun does not implement"
        ))),
        Trap::Invalid => {
            if tracing {
                trace::line(&format!("mach trap {number} ({regs}) = ? EXC_SYSCALL"));
            }
            if release.exc_syscall_kills() {
                let why = format!("Mach trap {number} is no trap in {}: EXC_SYSCALL, SIGSYS since xnu-8020 (ux_exception)", release.name());
                Next::Die(None, Death::new(signal::SIGSYS, why))
            } else {
                // ux_exception before xnu-8020 has no signal for EXC_SYSCALL.
                Next::Resume(Outcome::Unchanged)
            }
        }
    }
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
