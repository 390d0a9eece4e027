//! The guest's process between its `clone` and its exec: it closes
//! xnurun's descriptors, fixes its persona, waits until xnurun traces it
//! and execs the set-up program (`guest.rs`, `spawn`). It shares xnurun's
//! memory meanwhile, errno included, so it calls the kernel directly.

use nix::libc;
use std::sync::atomic::{AtomicU32, Ordering};

/// What the child needs of xnurun's, read once it runs.
pub(super) struct ChildArg<'a> {
    pub(super) memfd: i32,
    pub(super) image_fd: i32,
    pub(super) parent: libc::pid_t,
    /// Set (and woken) once xnurun traces the child.
    pub(super) seized: &'a AtomicU32,
}

/// The child's entry, from `clone`; `arg` is a `ChildArg`.
pub(super) extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` points at the parent's ChildArg, alive until this
    // child has exec'd or ended.
    let ChildArg { memfd, image_fd, parent, seized } = unsafe { std::ptr::read(arg.cast::<ChildArg>()) };
    child_exec(memfd, image_fd, parent, seized)
}

/// One Linux system call, made directly: the child must not write the
/// errno it shares with xnurun. Returns the kernel's value, -errno on
/// failure.
///
/// # Safety
/// As for the call made.
unsafe fn sys(nr: libc::c_long, a: [usize; 5]) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 system-call convention; `syscall` itself
    // overwrites RCX and R11.
    unsafe {
        std::arch::asm!("syscall", inlateout("rax") nr as isize => ret, in("rdi") a[0], in("rsi") a[1], in("rdx") a[2], in("r10") a[3], in("r8") a[4], lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// How the child tells xnurun which step before the exec failed: its exit
/// status (it has nothing else to say it with).
pub(super) const CHILD_ORPHANED: i32 = 1;
pub(super) const CHILD_NO_FCNTL: i32 = 3;
/// Plus the errno of the exec.
pub(super) const CHILD_NO_EXEC: i32 = 64;

fn child_exec(memfd: i32, image_fd: i32, parent: libc::pid_t, seized: &AtomicU32) -> ! {
    let leave = |status: i32| -> ! {
        // SAFETY: ends this process, which holds nothing of its own.
        unsafe { sys(libc::SYS_exit_group, [status as usize, 0, 0, 0, 0]) };
        unreachable!("exit_group returned")
    };
    // SAFETY: raw calls only, on the child's own descriptors, persona and
    // life; on any failure the child leaves with a status saying which
    // (the CHILD_ constants).
    unsafe {
        // Until xnurun's PTRACE_O_EXITKILL, nothing ties the child's life
        // to xnurun's; checked after setting, in case xnurun died before.
        if sys(libc::SYS_prctl, [libc::PR_SET_PDEATHSIG as usize, libc::SIGKILL as usize, 0, 0, 0]) != 0 || sys(libc::SYS_getppid, [0; 5]) != parent as isize {
            leave(CHILD_ORPHANED);
        }
        // The guest holds no descriptor of xnurun's: everything it writes
        // goes through xnurun. The memfd and the image file stay open
        // across the exec, for the program to map pages from and then
        // close.
        let (lo, hi) = (memfd.min(image_fd), memfd.max(image_fd));
        for (from, to) in [(0, lo - 1), (lo + 1, hi - 1), (hi + 1, i32::MAX)] {
            if from <= to {
                sys(libc::SYS_close_range, [from as usize, to as usize, 0, 0, 0]);
            }
        }
        // A fixed layout: Linux's stack at the very top, clear of the
        // set-up page (a container may refuse this; the page is then
        // still far from where a random stack lands, almost always).
        // Linux's own persona otherwise: no flag xnurun was started with
        // (`setarch`) reaches the guest's address space.
        const PER_LINUX: usize = 0;
        sys(libc::SYS_personality, [PER_LINUX | libc::ADDR_NO_RANDOMIZE as usize, 0, 0, 0, 0]);
        if sys(libc::SYS_fcntl, [image_fd as usize, libc::F_SETFD as usize, 0, 0, 0]) != 0 {
            leave(CHILD_NO_FCNTL);
        }
        // The set-up program's last call must stop for xnurun: exec only
        // once it traces this process.
        while seized.load(Ordering::Acquire) == 0 {
            sys(libc::SYS_futex, [seized.as_ptr() as usize, (libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as usize, 0, 0, 0]);
        }
        let argv = [c"xnurun-guest".as_ptr(), std::ptr::null()];
        let envp: [*const libc::c_char; 1] = [std::ptr::null()];
        let e = sys(libc::SYS_execveat, [memfd as usize, c"".as_ptr() as usize, argv.as_ptr() as usize, envp.as_ptr() as usize, libc::AT_EMPTY_PATH as usize]);
        leave(CHILD_NO_EXEC + (-e) as i32)
    }
}
