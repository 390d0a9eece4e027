//! Keeps xnurun's own mappings out of the guest's way.
//!
//! The guest lives inside xnurun's forked child, at the addresses XNU would
//! give it: page zero below 4 GiB, `__TEXT` at 0x100000000, the stack just
//! under `USRSTACK64` (0x7ff7c0000000). With Linux's address-space
//! randomization, the runner's own shared libraries can land anywhere in a
//! terabyte below the stack, now and then right on the guest's stack, and
//! the guest could not be mapped. So xnurun runs itself without
//! randomization (the personality flag `setarch -R` sets): its libraries
//! and stack then sit at the very top of the address space, every time.

#[cfg(target_os = "linux")]
use nix::libc;

/// Re-executes xnurun with `ADDR_NO_RANDOMIZE` unless it already has it.
/// Returns only if that is not possible (no /proc, a personality the
/// kernel refuses, as Docker's default seccomp profile does); xnurun then
/// says so once and runs as it is.
#[cfg(target_os = "linux")]
pub fn settle(argv: *const *const std::ffi::c_char) {
    // SAFETY: personality(0xffffffff) only reads the current persona.
    let current = unsafe { libc::personality(0xffff_ffff) };
    if current < 0 || current & libc::ADDR_NO_RANDOMIZE != 0 {
        return;
    }
    // SAFETY: sets a flag of this process's persona; exec below applies it.
    if unsafe { libc::personality((current | libc::ADDR_NO_RANDOMIZE) as libc::c_ulong) } < 0 {
        eprintln!("xnurun: warning: cannot turn off address randomization here; a guest may now and then fail to map");
        return;
    }
    // SAFETY: argv is the NULL-terminated vector the C runtime gave main;
    // environ is this process's environment. Dispositions of ignored
    // signals (SIGPIPE) and open descriptors survive exec unchanged.
    unsafe {
        libc::execve(c"/proc/self/exe".as_ptr(), argv, environ);
    }
    eprintln!("xnurun: warning: cannot re-execute itself without address randomization; a guest may now and then fail to map");
}

#[cfg(target_os = "linux")]
unsafe extern "C" {
    static environ: *const *const std::ffi::c_char;
}
