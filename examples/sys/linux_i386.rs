//! Linux i386: `int 0x80`, number in eax (read 3, write 4, exit 1),
//! arguments ebx ecx edx, result or -errno in eax (`do_int80_syscall_32`,
//! arch/x86/entry/syscall_32.c). LLVM keeps ebx for itself, so the first
//! argument travels in edi and is swapped in around the trap (esi is
//! LLVM's too).

pub const CONVENTION: &str = "Linux i386";

// `int 0x80` returns through `iret`, which restores eflags:
// `preserves_flags`, as rustix's linux_raw/arch/x86.rs.

/// A call that may write memory (`read`).
pub fn call3(n: usize, a: usize, b: usize, c: usize) -> Result<usize, i32> {
    let r: isize;
    // SAFETY: a system call that writes only the buffer passed; ebx is
    // restored by the second xchg.
    unsafe {
        core::arch::asm!("xchg edi, ebx", "int 0x80", "xchg edi, ebx", inlateout("eax") n => r, in("edi") a, in("ecx") b, in("edx") c,
            options(nostack, preserves_flags));
    }
    if r < 0 { Err(-r as i32) } else { Ok(r as usize) }
}

/// A call that only reads memory (`write`).
pub fn call3_readonly(n: usize, a: usize, b: usize, c: usize) -> Result<usize, i32> {
    let r: isize;
    // SAFETY: a system call that only reads the buffer passed; ebx is
    // restored by the second xchg.
    unsafe {
        core::arch::asm!("xchg edi, ebx", "int 0x80", "xchg edi, ebx", inlateout("eax") n => r, in("edi") a, in("ecx") b, in("edx") c,
            options(nostack, preserves_flags, readonly));
    }
    if r < 0 { Err(-r as i32) } else { Ok(r as usize) }
}

/// A call of four arguments that may write memory (`wait4`'s status,
/// `ptrace`'s register buffer). The fourth belongs in esi, which LLVM will
/// not hand out either: it is swapped in from whatever register the
/// compiler picks (ebx, maybe), before ebx gets the first.
pub fn call4(n: usize, a: usize, b: usize, c: usize, d: usize) -> Result<usize, i32> {
    let r: isize;
    // SAFETY: a system call that writes only the memory its arguments name;
    // the two xchg after the trap undo the two before it, in reverse order,
    // so esi, ebx and the register holding `d` come back as they were.
    unsafe {
        core::arch::asm!("xchg esi, {d}", "xchg edi, ebx", "int 0x80", "xchg edi, ebx", "xchg esi, {d}", d = in(reg) d,
            inlateout("eax") n => r, in("edi") a, in("ecx") b, in("edx") c, options(nostack, preserves_flags));
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
        core::arch::asm!("int 0x80", inlateout("eax") FORK => r, options(nostack, preserves_flags));
    }
    if r < 0 { Err(-r as i32) } else { Ok(r as usize) }
}

/// A call that only reads memory, always inlined: the trap sits in the
/// caller's own code, so a caller kept out of line (`regs_stop_self`) holds
/// the one trap instruction its name promises.
#[inline(always)]
pub fn call2_inline(n: usize, a: usize, b: usize) -> Result<usize, i32> {
    let r: isize;
    // SAFETY: a system call that only reads its arguments; ebx is restored
    // by the second xchg.
    unsafe {
        core::arch::asm!("xchg edi, ebx", "int 0x80", "xchg edi, ebx", inlateout("eax") n => r, in("edi") a, in("ecx") b,
            options(nostack, preserves_flags, readonly));
    }
    if r < 0 { Err(-r as i32) } else { Ok(r as usize) }
}

pub fn exit(status: usize) -> ! {
    // SAFETY: exit does not return; ebx is never needed again.
    unsafe { core::arch::asm!("mov ebx, edi", "int 0x80", in("eax") EXIT, in("edi") status, options(noreturn, nostack)) }
}

pub const READ: usize = 3;
pub const WRITE: usize = 4;
pub const EXIT: usize = 1;
pub const FORK: usize = 2;
pub const GETPID: usize = 20;
pub const PTRACE: usize = 26;
pub const KILL: usize = 37;
pub const WAIT4: usize = 114;

/// cdecl: the stack pointer pushed as the one argument, the stack 16-byte
/// aligned at the call.
///
/// # Safety
///
/// Only the process's own start may reach this: the kernel starts the process
/// here (`e_entry`) with `esp` on argc and no return address. It is never
/// called from Rust, hands the kernel's arrays to ordinary Rust, and it never
/// returns: the Rust it calls ends in `exit`.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!("mov eax, esp", "and esp, -16", "sub esp, 12", "push eax", "call {s}", "ud2", s = sym super::start_from_stack)
}
