//! An arm64 thread's saved state as `thread_get_state` and
//! `thread_set_state` see it while the thread is inside a Mach trap
//! (`machine_thread_get_state`, osfmk/arm64/status.c): the registers the
//! `svc` saved, `pc` the instruction after it (ELR_EL1 of an SVC), `x16`
//! the trap's negative number, `cpsr` the thread's user PSTATE. Layout:
//! `arm_thread_state64_t` (osfmk/mach/arm/_structs.h): x0-x28, fp, lr,
//! sp, pc as 64-bit words, then cpsr and a pad word: 68 words.

use super::convention::Regs;
use crate::xnu::mach::state::{StateError, ThreadState};

pub const ARM_THREAD_STATE64: u32 = 6;
const COUNT64: u32 = 68;
const KERN_INVALID_ARGUMENT: u32 = 4;
/// The PSTATE bits a user thread may set: NZCV. The mode is forced to
/// EL0, AArch64 (`thread_state64_to_saved_state`).
const USER_PSTATE: u64 = 0xf000_0000;

/// The flavors osfmk/mach/arm/thread_status.h defines, by number, for the
/// trace. (The header gives ARM_SME_ZA_STATE11 and ARM_SME_ZA_STATE12 the
/// same number, 42, and none 43.)
fn flavor(f: u32) -> Option<&'static str> {
    const ZA: [&str; 12] = [
        "ARM_SME_ZA_STATE1", "ARM_SME_ZA_STATE2", "ARM_SME_ZA_STATE3", "ARM_SME_ZA_STATE4", "ARM_SME_ZA_STATE5", "ARM_SME_ZA_STATE6",
        "ARM_SME_ZA_STATE7", "ARM_SME_ZA_STATE8", "ARM_SME_ZA_STATE9", "ARM_SME_ZA_STATE10", "ARM_SME_ZA_STATE11", "ARM_SME_ZA_STATE13",
    ];
    Some(match f {
        0 => "THREAD_STATE_FLAVOR_LIST",
        1 => "ARM_THREAD_STATE",
        2 => "ARM_VFP_STATE",
        3 => "ARM_EXCEPTION_STATE",
        4 => "ARM_DEBUG_STATE",
        6 => "ARM_THREAD_STATE64",
        7 => "ARM_EXCEPTION_STATE64",
        9 => "ARM_THREAD_STATE32",
        10 => "ARM_EXCEPTION_STATE64_V2",
        14 => "ARM_DEBUG_STATE32",
        15 => "ARM_DEBUG_STATE64",
        16 => "ARM_NEON_STATE",
        17 => "ARM_NEON_STATE64",
        18 => "ARM_CPMU_STATE64",
        20 => "ARM_SAVED_STATE32",
        21 => "ARM_SAVED_STATE64",
        22 => "ARM_NEON_SAVED_STATE32",
        23 => "ARM_NEON_SAVED_STATE64",
        27 => "ARM_PAGEIN_STATE",
        28 => "ARM_SME_STATE",
        29 => "ARM_SVE_Z_STATE1",
        30 => "ARM_SVE_Z_STATE2",
        31 => "ARM_SVE_P_STATE",
        32..=42 => ZA[f as usize - 32],
        44..=47 => ["ARM_SME_ZA_STATE13", "ARM_SME_ZA_STATE14", "ARM_SME_ZA_STATE15", "ARM_SME_ZA_STATE16"][f as usize - 44],
        48 => "ARM_SME2_STATE",
        49 => "ARM_SME_SAVED_STATE",
        128 => "THREAD_STATE_FLAVOR_LIST_NEW",
        129 => "THREAD_STATE_FLAVOR_LIST_10_15",
        _ => return None,
    })
}

/// Whether XNU answers `thread_get_state` (`set`: `thread_set_state`) for
/// flavor `f`: the cases of `machine_thread_get_state` and
/// `machine_thread_set_state` (osfmk/arm64/status.c, xnu-11417). The SME
/// flavors are KERN_INVALID_ARGUMENT on a CPU without SME
/// (`handle_get_arm_sme_state`: `arm_sme_version()` is 0), as the emulated
/// CPU is. Any other flavor is KERN_INVALID_ARGUMENT; one of these that
/// xnurun does not serve ends the run as unimplemented.
fn served(f: u32, set: bool) -> bool {
    matches!(f, 1..=4 | 6 | 7 | 9 | 10 | 14..=17) || (!set && matches!(f, 0 | 27 | 128 | 129))
}

/// XNU's answer for flavor `f`, which xnurun does not serve.
fn not_served(f: u32, set: bool) -> StateError {
    match flavor(f) {
        Some(name) if served(f, set) => StateError::Unimplemented(name),
        _ => StateError::Kern(KERN_INVALID_ARGUMENT),
    }
}

pub struct Saved {
    pub r: Regs,
    /// `thread_set_state` replaced it: the thread returns to it.
    pub replaced: bool,
}

impl ThreadState for Saved {
    fn get(&self, f: u32, count: u32) -> Result<Vec<u32>, StateError> {
        match f {
            ARM_THREAD_STATE64 if count >= COUNT64 => {
                let r = &self.r;
                let mut w: Vec<u32> = r.x.iter().chain([r.sp, r.pc].iter()).flat_map(|v| [*v as u32, (v >> 32) as u32]).collect();
                w.push(r.cpsr as u32);
                w.push(0);
                Ok(w)
            }
            ARM_THREAD_STATE64 | 9 => Err(StateError::Kern(KERN_INVALID_ARGUMENT)),
            f => Err(not_served(f, false)),
        }
    }

    fn set(&mut self, f: u32, w: &[u32]) -> Result<(), StateError> {
        match f {
            ARM_THREAD_STATE64 if w.len() == COUNT64 as usize => {
                let q = |i: usize| u64::from(w[2 * i]) | u64::from(w[2 * i + 1]) << 32;
                for (i, x) in self.r.x.iter_mut().enumerate() {
                    *x = q(i);
                }
                self.r.sp = q(31);
                self.r.pc = q(32);
                self.r.cpsr = u64::from(w[66]) & USER_PSTATE;
                self.replaced = true;
                Ok(())
            }
            ARM_THREAD_STATE64 | 9 => Err(StateError::Kern(KERN_INVALID_ARGUMENT)),
            f => Err(not_served(f, true)),
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
    fn the_state_is_68_words_with_pc_after_the_svc() {
        let mut x = [0u64; 31];
        x[16] = (-47i64) as u64;
        x[30] = 0x1_0000_4000;
        let s = Saved { r: Regs { x, sp: 0x16fdff000, pc: 0x1_0000_3f24, cpsr: 0x6000_0000 }, replaced: false };
        let w = s.get(ARM_THREAD_STATE64, 68).unwrap();
        assert_eq!(w.len(), 68);
        assert_eq!((w[32], w[33]), (0xffff_ffd1, 0xffff_ffff), "x16");
        assert_eq!((w[64], w[65], w[66]), (0x0000_3f24, 1, 0x6000_0000), "pc, cpsr");
        assert_eq!(s.get(ARM_THREAD_STATE64, 67), Err(StateError::Kern(4)));
        assert_eq!(s.get(9, 17), Err(StateError::Kern(4)), "a 64-bit thread");
        assert_eq!(s.get(2, 100), Err(StateError::Unimplemented("ARM_VFP_STATE")));
    }

    /// `thread_set_state(ARM_THREAD_STATE64)`: exactly 68 words, x0-x28,
    /// fp, lr, sp and pc as 64-bit words, and of cpsr only NZCV
    /// (`thread_state64_to_saved_state`, osfmk/arm64/status.c: the mode
    /// stays EL0, AArch64).
    #[test]
    fn set_takes_68_words_and_only_the_flags_of_cpsr() {
        let mut s = Saved { r: Regs { x: [0; 31], sp: 0, pc: 0, cpsr: 0 }, replaced: false };
        let mut w = vec![0u32; 68];
        for i in 0..33 {
            w[2 * i] = i as u32 + 1;
            w[2 * i + 1] = 0x100 + i as u32;
        }
        w[66] = 0xffff_ffff;
        assert_eq!(s.set(ARM_THREAD_STATE64, &w[..67]), Err(StateError::Kern(4)));
        assert!(!s.replaced);
        assert_eq!(s.set(ARM_THREAD_STATE64, &w), Ok(()));
        assert_eq!((s.r.x[0], s.r.x[30]), (0x100_0000_0001, 0x11e_0000_001f));
        assert_eq!((s.r.sp, s.r.pc, s.r.cpsr, s.replaced), (0x11f_0000_0020, 0x120_0000_0021, 0xf000_0000, true));
        assert_eq!(s.set(9, &w[..17]), Err(StateError::Kern(4)), "a 64-bit thread");
        assert_eq!((s.flavor_name(6), s.flavor_name(5)), ("ARM_THREAD_STATE64".to_string(), "5".to_string()));
    }

    /// Each flavor XNU serves (the case labels of osfmk/arm64/status.c)
    /// and xnurun does not ends the run naming it; the others, ARM_PAGEIN
    /// for a set and SME's on a CPU without it among them, are
    /// KERN_INVALID_ARGUMENT.
    #[test]
    fn flavors_xnu_serves_are_named_and_the_rest_refused() {
        let s = Saved { r: Regs { x: [0; 31], sp: 0, pc: 0, cpsr: 0 }, replaced: false };
        let get = [0, 1, 2, 3, 4, 7, 10, 14, 15, 16, 17, 27, 128, 129];
        let set = [1, 2, 3, 4, 7, 10, 14, 15, 16, 17];
        for f in (0..200).filter(|f| ![6, 9].contains(f)) {
            let unimplemented = |e: Option<StateError>| matches!(e, Some(StateError::Unimplemented(n)) if Some(n) == flavor(f));
            let refused = |e: Option<StateError>| e == Some(StateError::Kern(4));
            let g = s.get(f, 1000).err();
            assert!(if get.contains(&f) { unimplemented(g) } else { refused(g) }, "get {f}");
            let mut t = Saved { r: s.r, replaced: false };
            let e = t.set(f, &[0]).err();
            assert!(if set.contains(&f) { unimplemented(e) } else { refused(e) }, "set {f}");
        }
        // The names the trace gives, as osfmk/mach/arm/thread_status.h has them.
        for (f, name) in [
            (6, "ARM_THREAD_STATE64"), (9, "ARM_THREAD_STATE32"), (18, "ARM_CPMU_STATE64"), (20, "ARM_SAVED_STATE32"),
            (21, "ARM_SAVED_STATE64"), (22, "ARM_NEON_SAVED_STATE32"), (23, "ARM_NEON_SAVED_STATE64"), (28, "ARM_SME_STATE"),
            (29, "ARM_SVE_Z_STATE1"), (30, "ARM_SVE_Z_STATE2"), (31, "ARM_SVE_P_STATE"), (32, "ARM_SME_ZA_STATE1"),
            (48, "ARM_SME2_STATE"), (49, "ARM_SME_SAVED_STATE"),
        ] {
            assert_eq!(s.flavor_name(f), name);
        }
        assert_eq!(flavor(42), Some("ARM_SME_ZA_STATE11"));
        assert_eq!((flavor(43), flavor(44)), (None, Some("ARM_SME_ZA_STATE13")));
    }
}
