//! The x86 registers XNU's conventions read and write, whichever CPU ran
//! the guest: the fields of `x86_thread_state64_t` (osfmk/mach/i386/
//! _structs.h) that matter to a system call, widened to 64 bits for i386.
//! Each backend converts its own register file to and from this.

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
