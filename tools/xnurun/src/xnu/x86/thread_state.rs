//! An x86 thread's saved state as `thread_get_state` and
//! `thread_set_state` see it while the thread is inside a Mach trap
//! (`machine_thread_get_state`/`machine_thread_set_state`,
//! osfmk/i386/pcb.c): what the trap's entry saved, which is not quite what
//! the registers held.
//!
//! - 64-bit, through `syscall` (`hi64_syscall`, osfmk/x86_64/idt64.s):
//!   `rip` is the return address the instruction put in `rcx`; `rcx` then
//!   holds the user stack pointer, which the entry parks there before it
//!   saves the registers; `r11` the flags; `rax` only its low 32 bits (the
//!   entry shifts it into `r11`'s upper half and back); `cs` is
//!   SYSCALL_CS (7), the pseudo-segment that sends the return through
//!   `sysretq`.
//! - 32-bit, through `sysenter` (`idt64_sysenter`): `eip` = `edx`, `esp` =
//!   `ecx`, `cs` = SYSENTER_CS (0x0b), `ss` = USER_DS (0x23), IF set in
//!   the flags; through `int 0x81`: the address after it, the real `esp`,
//!   USER_CS (0x1b).

use super::state::{user_eflags, X86State};
use crate::xnu::mach::state::{StateError, ThreadState};

pub const X86_THREAD_STATE32: u32 = 1;
pub const X86_THREAD_STATE64: u32 = 4;
pub const X86_THREAD_STATE: u32 = 7;
const COUNT32: u32 = 16;
const COUNT64: u32 = 42;
/// `x86_thread_state_t`: a two-word header and the larger of the two.
const COUNT_ANY: u32 = 44;
const KERN_INVALID_ARGUMENT: u32 = 4;

/// osfmk/i386/seg.h.
pub const SYSCALL_CS: u64 = 0x07;
pub const SYSENTER_CS: u64 = 0x0b;
pub const USER_CS: u64 = 0x1b;
pub const USER_DS: u64 = 0x23;
pub const USER64_CS: u64 = 0x2b;

/// The flavors osfmk/mach/i386/thread_status.h defines, by number, for
/// the trace.
fn flavor(f: u32) -> Option<&'static str> {
    Some(match f {
        0 => "THREAD_STATE_FLAVOR_LIST",
        1 => "x86_THREAD_STATE32",
        2 => "x86_FLOAT_STATE32",
        3 => "x86_EXCEPTION_STATE32",
        4 => "x86_THREAD_STATE64",
        5 => "x86_FLOAT_STATE64",
        6 => "x86_EXCEPTION_STATE64",
        7 => "x86_THREAD_STATE",
        8 => "x86_FLOAT_STATE",
        9 => "x86_EXCEPTION_STATE",
        10 => "x86_DEBUG_STATE32",
        11 => "x86_DEBUG_STATE64",
        12 => "x86_DEBUG_STATE",
        14 => "x86_SAVED_STATE32",
        15 => "x86_SAVED_STATE64",
        16 => "x86_AVX_STATE32",
        17 => "x86_AVX_STATE64",
        18 => "x86_AVX_STATE",
        19 => "x86_AVX512_STATE32",
        20 => "x86_AVX512_STATE64",
        21 => "x86_AVX512_STATE",
        22 => "x86_PAGEIN_STATE",
        23 => "x86_THREAD_FULL_STATE64",
        24 => "x86_INSTRUCTION_STATE",
        25 => "x86_LAST_BRANCH_STATE",
        128 => "THREAD_STATE_FLAVOR_LIST_NEW",
        129 => "THREAD_STATE_FLAVOR_LIST_10_9",
        130 => "THREAD_STATE_FLAVOR_LIST_10_13",
        131 => "THREAD_STATE_FLAVOR_LIST_10_15",
        _ => return None,
    })
}

/// Whether XNU answers `thread_get_state` (`set`: `thread_set_state`) for
/// flavor `f`: the cases of `machine_thread_get_state` and
/// `machine_thread_set_state` (osfmk/i386/pcb.c), in xnu-11417 for 64-bit
/// tasks and in xnu-4903 for i386 ones, which has neither the 10.15 list
/// nor the pagein, instruction and last-branch states. Any other flavor is
/// KERN_INVALID_ARGUMENT; one of these that xnurun does not serve ends the
/// run as unimplemented.
fn served(f: u32, set: bool, xnu_11417: bool) -> bool {
    let both = matches!(f, 1 | 2 | 4 | 5 | 7 | 8 | 10..=12 | 14..=21 | 23);
    let get_only = matches!(f, 0 | 3 | 6 | 9 | 128..=130) || (xnu_11417 && matches!(f, 22 | 24 | 25 | 131));
    both || (!set && get_only)
}

/// XNU's answer for flavor `f`, which xnurun does not serve.
fn not_served(f: u32, set: bool, xnu_11417: bool) -> StateError {
    match flavor(f) {
        Some(name) if served(f, set, xnu_11417) => StateError::Unimplemented(name),
        _ => StateError::Kern(KERN_INVALID_ARGUMENT),
    }
}

/// The saved state of the trapping thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saved {
    pub is64: bool,
    pub r: X86State,
    pub cs: u64,
    pub ss: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
    /// `thread_set_state` replaced it: the thread returns to it.
    pub replaced: bool,
}

impl Saved {
    /// At a 64-bit `syscall`: `entry` are the registers the instruction
    /// saw, `next` the address after it.
    pub fn at_syscall(entry: &X86State, next: u64) -> Saved {
        let r = X86State { rip: next, rcx: entry.rsp, r11: entry.eflags & 0xffff_ffff, rax: entry.rax & 0xffff_ffff, ..*entry };
        Saved { is64: true, r, cs: SYSCALL_CS, ss: USER_DS, ds: 0, es: 0, fs: 0, gs: 0, replaced: false }
    }

    /// At an i386 `sysenter` (`uesp` = ecx, `eip` = edx) or `int 0x81`.
    pub fn at_i386(entry: &X86State, sysenter: bool, next: u64) -> Saved {
        let mut r = *entry;
        // The flags as the entry found them: RF (which a fault's frame
        // sets) and VM never in a saved user state.
        r.eflags &= !(0x1_0000 | 0x2_0000);
        let cs = if sysenter {
            r.rip = entry.rdx & 0xffff_ffff;
            r.rsp = entry.rcx & 0xffff_ffff;
            // idt64_sysenter pushes the flags sysenter left and sets IF.
            r.eflags |= 0x200;
            SYSENTER_CS
        } else {
            r.rip = next;
            USER_CS
        };
        Saved { is64: false, r, cs, ss: USER_DS, ds: USER_DS, es: USER_DS, fs: 0, gs: 0, replaced: false }
    }

    fn words64(&self) -> Vec<u32> {
        let r = &self.r;
        [r.rax, r.rbx, r.rcx, r.rdx, r.rdi, r.rsi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip, r.eflags, self.cs, self.fs, self.gs]
            .iter()
            .flat_map(|v| [*v as u32, (v >> 32) as u32])
            .collect()
    }

    fn words32(&self) -> Vec<u32> {
        let r = &self.r;
        [r.rax, r.rbx, r.rcx, r.rdx, r.rdi, r.rsi, r.rbp, r.rsp, self.ss, r.eflags, r.rip, self.cs, self.ds, self.es, self.fs, self.gs]
            .iter()
            .map(|v| *v as u32)
            .collect()
    }
}

impl ThreadState for Saved {
    fn get(&self, f: u32, count: u32) -> Result<Vec<u32>, StateError> {
        let (need, words) = match f {
            X86_THREAD_STATE64 if self.is64 => (COUNT64, self.words64()),
            X86_THREAD_STATE32 if !self.is64 => (COUNT32, self.words32()),
            X86_THREAD_STATE => {
                let (tf, tc, w) = if self.is64 { (X86_THREAD_STATE64, COUNT64, self.words64()) } else { (X86_THREAD_STATE32, COUNT32, self.words32()) };
                let mut all = vec![tf, tc];
                all.extend(w);
                all.resize(COUNT_ANY as usize, 0);
                (COUNT_ANY, all)
            }
            X86_THREAD_STATE64 | X86_THREAD_STATE32 => return Err(StateError::Kern(KERN_INVALID_ARGUMENT)),
            f => return Err(not_served(f, false, self.is64)),
        };
        if count < need {
            return Err(StateError::Kern(KERN_INVALID_ARGUMENT));
        }
        Ok(words)
    }

    fn set(&mut self, f: u32, w: &[u32]) -> Result<(), StateError> {
        let q = |i: usize| u64::from(w[2 * i]) | u64::from(w[2 * i + 1]) << 32;
        match f {
            X86_THREAD_STATE64 if self.is64 && w.len() == COUNT64 as usize => {
                let canonical = |a: u64| (a as i64) >> 47 == 0 || (a as i64) >> 47 == -1;
                // set_thread_state64: rsp and rip must be canonical; the
                // flags a user may not set are cleared; cs becomes USER64_CS.
                if !canonical(q(7)) || !canonical(q(16)) {
                    return Err(StateError::Kern(KERN_INVALID_ARGUMENT));
                }
                self.r = X86State {
                    rax: q(0), rbx: q(1), rcx: q(2), rdx: q(3), rdi: q(4), rsi: q(5), rbp: q(6), rsp: q(7),
                    r8: q(8), r9: q(9), r10: q(10), r11: q(11), r12: q(12), r13: q(13), r14: q(14), r15: q(15),
                    rip: q(16), eflags: user_eflags(q(17)),
                };
                self.cs = USER64_CS;
                self.fs = q(19) & 0xffff_ffff;
                self.gs = q(20) & 0xffff_ffff;
                self.replaced = true;
                Ok(())
            }
            X86_THREAD_STATE64 => Err(StateError::Kern(KERN_INVALID_ARGUMENT)),
            X86_THREAD_STATE32 if self.is64 => Err(StateError::Kern(KERN_INVALID_ARGUMENT)),
            f => Err(not_served(f, true, self.is64)),
        }
    }

    fn flavor_name(&self, f: u32) -> String {
        flavor(f).map_or_else(|| f.to_string(), str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_a_syscall_rcx_holds_the_stack_pointer_and_cs_is_the_pseudo_segment() {
        let entry = X86State { rax: 0xffff_0000_0100_002f, rbx: 0x1234_5678_9abc_def0, rsp: 0x7ff0, rcx: 0x1234, rip: 0x1000, eflags: 0x246, ..X86State::default() };
        let s = Saved::at_syscall(&entry, 0x1002);
        let w = s.get(X86_THREAD_STATE64, 42).unwrap();
        assert_eq!(w.len(), 42);
        assert_eq!((w[0], w[1]), (0x0100_002f, 0), "rax: the low half");
        assert_eq!((w[2], w[3]), (0x9abc_def0, 0x1234_5678), "rbx: low word first");
        assert_eq!(w[4], 0x7ff0, "rcx = rsp");
        assert_eq!(w[22], 0x246, "r11 = rflags");
        assert_eq!(w[32], 0x1002, "rip after the syscall");
        assert_eq!(w[36], 7, "cs = SYSCALL_CS");
        assert_eq!(s.get(X86_THREAD_STATE64, 41), Err(StateError::Kern(4)));
        assert_eq!(s.get(X86_THREAD_STATE32, 16), Err(StateError::Kern(4)), "a 64-bit thread");
        assert_eq!(s.get(999, 100), Err(StateError::Kern(4)));
        assert_eq!(s.get(5, 1000), Err(StateError::Unimplemented("x86_FLOAT_STATE64")));
        let any = s.get(X86_THREAD_STATE, 44).unwrap();
        assert_eq!((any[0], any[1], any.len()), (4, 42, 44));
        let mut t = s;
        let mut new = w.clone();
        new[32] = 0x2000;
        new[35] = 0xffff;
        assert_eq!(t.set(X86_THREAD_STATE64, &new), Ok(()));
        assert_eq!((t.r.rip, t.cs, t.replaced, t.r.eflags & 0x4000), (0x2000, USER64_CS, true, 0), "NT cleared");
        new[33] = 0x1_0000;
        let mut u = t;
        assert_eq!(u.set(X86_THREAD_STATE64, &new), Err(StateError::Kern(4)), "rip not canonical");
    }

    /// Each flavor XNU serves (the case labels of osfmk/i386/pcb.c in both
    /// releases) and xnurun does not ends the run naming it; the others
    /// are KERN_INVALID_ARGUMENT, as XNU's `default:` returns.
    #[test]
    fn flavors_xnu_serves_are_named_and_the_rest_refused() {
        let s64 = Saved::at_syscall(&X86State::default(), 0);
        let s32 = Saved::at_i386(&X86State::default(), false, 0);
        let get_11417 = [0, 2, 3, 5, 6, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 128, 129, 130, 131];
        let set_11417 = [2, 5, 8, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 23];
        let get_4903 = [0, 2, 3, 5, 6, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 23, 128, 129, 130];
        for f in 0..200 {
            let unimplemented = |e: Option<StateError>| matches!(e, Some(StateError::Unimplemented(n)) if Some(n) == flavor(f));
            let refused = |e: Option<StateError>| e == Some(StateError::Kern(4));
            let g = s64.get(f, 1000);
            assert!(if get_11417.contains(&f) { unimplemented(g.err()) } else { g.is_ok() || refused(g.err()) }, "get {f}, xnu-11417");
            let g = s32.get(f, 1000);
            assert!(if get_4903.contains(&f) { unimplemented(g.err()) } else { g.is_ok() || refused(g.err()) }, "get {f}, xnu-4903");
            if [1, 4, 7].contains(&f) {
                continue; // served, tested above
            }
            let mut t = s64;
            let e = t.set(f, &[0]);
            assert!(if set_11417.contains(&f) { unimplemented(e.err()) } else { refused(e.err()) }, "set {f}, xnu-11417");
        }
    }

    /// `set_thread_state64` (osfmk/i386/pcb.c): 42 words and a 64-bit
    /// thread, or KERN_INVALID_ARGUMENT; rsp and rip canonical (either
    /// half); fs and gs their low halves; a 32-bit state for a 64-bit
    /// thread refused, for a 32-bit one served by XNU but not by xnurun.
    /// The names the trace gives, as osfmk/mach/i386/thread_status.h has
    /// them, served flavors too; an unknown flavor by its number.
    #[test]
    fn flavors_are_named_for_the_trace() {
        let s = Saved::at_syscall(&X86State::default(), 0);
        for (f, name) in [(1, "x86_THREAD_STATE32"), (4, "x86_THREAD_STATE64"), (7, "x86_THREAD_STATE"), (13, "13")] {
            assert_eq!(s.flavor_name(f), name);
        }
    }

    #[test]
    fn set_state_checks_count_thread_and_canonical_addresses() {
        let s64 = Saved::at_syscall(&X86State::default(), 0);
        let s32 = Saved::at_i386(&X86State::default(), false, 0);
        let mut w = vec![0u32; 42];
        w[14] = 0x1000; // rsp
        w[15] = 0xffff_8000; // the lowest canonical address of the upper half
        w[32] = 0x2000; // rip
        w[38] = 0x2b;
        w[39] = 0xdead; // fs, upper half ignored
        w[40] = 0x33; // gs
        let mut t = s64;
        assert_eq!(t.set(X86_THREAD_STATE64, &w), Ok(()));
        assert_eq!((t.r.rsp, t.r.rip, t.fs, t.gs), (0xffff_8000_0000_1000, 0x2000, 0x2b, 0x33));
        let mut t = s64;
        assert_eq!(t.set(X86_THREAD_STATE64, &w[..41]), Err(StateError::Kern(4)), "41 words");
        let mut t = s32;
        assert_eq!(t.set(X86_THREAD_STATE64, &w), Err(StateError::Kern(4)), "a 32-bit thread");
        let mut bad = w.clone();
        bad[15] = 0x0000_8000; // rsp 1 << 47: not canonical
        let mut t = s64;
        assert_eq!(t.set(X86_THREAD_STATE64, &bad), Err(StateError::Kern(4)), "rsp");
        let mut t = s64;
        assert_eq!(t.set(X86_THREAD_STATE32, &[0; 16]), Err(StateError::Kern(4)), "32-bit state, 64-bit thread");
        let mut t = s32;
        assert_eq!(t.set(X86_THREAD_STATE32, &[0; 16]), Err(StateError::Unimplemented("x86_THREAD_STATE32")));
        assert!(!t.replaced);
    }

    #[test]
    fn sysenter_saves_edx_and_ecx() {
        let entry = X86State { rax: (-27i32) as u32 as u64, rcx: 0xbfff_f000, rdx: 0x1f20, rsp: 0xbfff_f000, rip: 0x1f00, eflags: 0x1_0002, ..X86State::default() };
        let s = Saved::at_i386(&entry, true, 0x1f02);
        let w = s.get(X86_THREAD_STATE32, 16).unwrap();
        assert_eq!((w[7], w[9], w[10], w[11], w[8]), (0xbfff_f000, 0x202, 0x1f20, 0x0b, 0x23));
        // IF stays set when the thread had it.
        let s = Saved::at_i386(&X86State { eflags: 0x202, ..entry }, true, 0x1f02);
        assert_eq!(s.get(X86_THREAD_STATE32, 16).unwrap()[9], 0x202);
        assert_eq!(s.get(X86_THREAD_STATE64, 42), Err(StateError::Kern(4)));
    }
}
