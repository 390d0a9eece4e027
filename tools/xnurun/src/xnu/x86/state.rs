//! The x86 registers XNU's conventions read and write, whichever CPU ran
//! the guest: the fields of `x86_thread_state64_t` (osfmk/mach/i386/
//! _structs.h) that matter to a system call, widened to 64 bits for i386.
//! Each backend converts its own register file to and from this.

/// `x86_THREAD_STATE32` and its count in words (osfmk/mach/i386/thread_status.h).
pub const X86_THREAD_STATE32: u32 = 1;
pub const X86_THREAD_STATE32_COUNT: u32 = 16;
/// `x86_THREAD_STATE64` and its count (same header).
pub const X86_THREAD_STATE64: u32 = 4;
pub const X86_THREAD_STATE64_COUNT: u32 = 42;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct X86State {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub rsp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub eflags: u64,
}

/// The flags a new thread starts with: `set_thread_state64/32`
/// (osfmk/i386/pcb.c) clear IOPL, NT and RF (EFL_USER_CLEAR,
/// osfmk/i386/eflags.h) and set IF (EFL_USER_SET); bit 1 always reads one.
/// VM, VIF and VIP, which XNU's iretq would load as asked, are cleared
/// too: nothing can set them in a Linux thread (PTRACE_SETREGS's FLAG_MASK,
/// arch/x86/kernel/ptrace.c; popf at CPL 3), and both CPUs start the guest
/// alike (docs/limits.md).
pub fn user_eflags(requested: u64) -> u64 {
    const USER_CLEAR: u64 = 0x3000 | 0x4000 | 0x10000 | 0x20000 | 0x80000 | 0x100000;
    (requested & 0x3f_ffff & !USER_CLEAR) | 0x202
}
