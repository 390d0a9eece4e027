//! Linux x86_64: `syscall`, number in rax (read 0, write 1, exit 60),
//! arguments rdi rsi rdx, result or -errno in rax; the instruction itself
//! overwrites rcx and r11 (`entry_SYSCALL_64`, arch/x86/entry/entry_64.S).

pub const CONVENTION: &str = "Linux x86_64";

// The kernel restores rflags from r11 on the way out (`sysretq`), so the
// flags survive: `preserves_flags`, as rustix's linux_raw/arch/x86_64.rs.

/// A call that may write memory (`read`).
pub fn call3(n: usize, a: usize, b: usize, c: usize) -> Result<usize, i32> {
    let r: isize;
    // SAFETY: a system call that writes only the buffer passed.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") n => r, in("rdi") a, in("rsi") b, in("rdx") c,
            lateout("rcx") _, lateout("r11") _, options(nostack, preserves_flags));
    }
    if r < 0 { Err(-r as i32) } else { Ok(r as usize) }
}

/// A call that only reads memory (`write`).
pub fn call3_readonly(n: usize, a: usize, b: usize, c: usize) -> Result<usize, i32> {
    let r: isize;
    // SAFETY: a system call that only reads the buffer passed.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") n => r, in("rdi") a, in("rsi") b, in("rdx") c,
            lateout("rcx") _, lateout("r11") _, options(nostack, preserves_flags, readonly));
    }
    if r < 0 { Err(-r as i32) } else { Ok(r as usize) }
}

/// A call of four arguments that may write memory (`wait4`'s status,
/// `ptrace`'s register buffer): the fourth goes in r10, not rcx, which the
/// instruction takes for the return address.
pub fn call4(n: usize, a: usize, b: usize, c: usize, d: usize) -> Result<usize, i32> {
    let r: isize;
    // SAFETY: a system call that writes only the memory its arguments name.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") n => r, in("rdi") a, in("rsi") b, in("rdx") c, in("r10") d,
            lateout("rcx") _, lateout("r11") _, options(nostack, preserves_flags));
    }
    if r < 0 { Err(-r as i32) } else { Ok(r as usize) }
}

/// `fork`, which returns twice: the child's pid in the parent, 0 in the
/// child, a copy of the parent that goes on from the same instruction.
pub fn fork() -> Result<usize, i32> {
    let r: isize;
    // SAFETY: the child runs in a copy of this address space; neither
    // process's memory changes under it.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") FORK => r, lateout("rcx") _, lateout("r11") _,
            options(nostack, preserves_flags));
    }
    if r < 0 { Err(-r as i32) } else { Ok(r as usize) }
}

/// A call that only reads memory, always inlined: the trap sits in the
/// caller's own code, so a caller kept out of line (`regs_stop_self`) holds
/// the one trap instruction its name promises.
#[inline(always)]
pub fn call2_inline(n: usize, a: usize, b: usize) -> Result<usize, i32> {
    let r: isize;
    // SAFETY: a system call that only reads its arguments.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") n => r, in("rdi") a, in("rsi") b,
            lateout("rcx") _, lateout("r11") _, options(nostack, preserves_flags, readonly));
    }
    if r < 0 { Err(-r as i32) } else { Ok(r as usize) }
}

pub fn exit(status: usize) -> ! {
    // SAFETY: exit does not return.
    unsafe { core::arch::asm!("syscall", in("rax") EXIT, in("rdi") status, options(noreturn, nostack)) }
}

pub const READ: usize = 0;
pub const WRITE: usize = 1;
pub const EXIT: usize = 60;
pub const GETPID: usize = 39;
pub const FORK: usize = 57;
pub const WAIT4: usize = 61;
pub const KILL: usize = 62;
pub const PTRACE: usize = 101;

/// The kernel's stack pointer to Rust, 16-byte aligned as the ABI wants.
///
/// # Safety
///
/// Only the process's own start may reach this: the kernel starts the process
/// here (`e_entry`) with `rsp` on argc and no return address. It is never
/// called from Rust, hands the kernel's arrays to ordinary Rust, and it never
/// returns: the Rust it calls ends in `exit`.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!("mov rdi, rsp", "and rsp, -16", "call {s}", "ud2", s = sym super::start_from_stack)
}
