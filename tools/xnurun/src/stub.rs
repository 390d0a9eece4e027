//! The set-up program: a one-page static ELF that the guest process execs
//! so that it starts with an address space holding nothing of xnurun's.
//!
//! Its code is the set-up itself, written for this image: a straight run
//! of system calls with their arguments in place (unmap what Linux mapped,
//! map the image's pages; then no new privileges, the seccomp filter, and
//! unmapping itself), stopping at an `int3` after the first group, so that
//! xnurun can write the image's bytes, or at the failing call's own `int3`.
//! A lone `syscall; int3` at the start serves the one call whose arguments
//! are known only after exec (moving the vDSO). Driving each call by
//! ptrace instead would cost a stop and four ptrace requests per call. The
//! page also carries the seccomp filter.
//!
//! It is loaded in the one range that no XNU image can use and that Linux
//! still gives a 64-bit process: from `VM_MAX_PAGE_ADDRESS64`
//! (osfmk/mach/i386/vm_param.h, the end of an XNU 64-bit user map; the
//! loader refuses segments past it) up to Linux's stack at the top. A
//! 32-bit guest cannot address it at all.

/// Where the set-up page is loaded: XNU's `VM_MAX_PAGE_ADDRESS64`.
pub const BASE: u64 = crate::loader::VM_MAX_PAGE_ADDRESS64;
/// Where the vDSO is moved before it is unmapped (see `guest.rs`).
pub const VDSO_PARK: u64 = BASE + 0x10_0000;
/// The end of the range: what the vDSO may occupy there, well below the
/// stack, which Linux puts at the very top (0x7ffffffff000) when
/// randomization is off.
pub const PARK_END: u64 = BASE + 0x18_0000;

const EHDR: usize = 64;
const PHDR: usize = 56;
/// `syscall; int3`, right after the headers.
const CODE: [u8; 3] = [0x0f, 0x05, 0xcc];
pub const CODE_ADDR: u64 = BASE + (EHDR + PHDR) as u64;
/// The address `rip` holds after the `int3` that ends each call.
pub const AFTER_CODE: u64 = CODE_ADDR + CODE.len() as u64;
const FILTER_OFF: usize = 128;

/// `AUDIT_ARCH_X86_64` and `AUDIT_ARCH_I386` (include/uapi/linux/audit.h):
/// the ABI a call entered by, as `seccomp_data.arch` reports it.
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// `SECCOMP_RET_TRACE` and `SECCOMP_RET_KILL_PROCESS`
/// (include/uapi/linux/seccomp.h).
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
/// The data the filter attaches to a trace stop, read back with
/// PTRACE_GETEVENTMSG: which entry ABI the call used.
pub const ABI_64: u64 = 1;
pub const ABI_32: u64 = 2;

/// The classic BPF program: every call, whatever its number, stops for the
/// tracer, tagged with its ABI (`syscall` in 64-bit mode gives X86_64;
/// `int 0x80`, `sysenter` and `syscall` in compatibility mode give I386,
/// from either mode). Any other ABI kills the process. With no tracer
/// attached, SECCOMP_RET_TRACE fails the call with ENOSYS without running
/// it (`__seccomp_filter`, kernel/seccomp.c), so the filter alone already
/// keeps every call from Linux.
fn filter() -> Vec<[u8; 8]> {
    let insn = |code: u16, jt: u8, jf: u8, k: u32| {
        let mut b = [0u8; 8];
        b[..2].copy_from_slice(&code.to_le_bytes());
        b[2] = jt;
        b[3] = jf;
        b[4..].copy_from_slice(&k.to_le_bytes());
        b
    };
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    vec![
        insn(LD_W_ABS, 0, 0, 4), // A = seccomp_data.arch
        insn(JEQ_K, 0, 1, AUDIT_ARCH_X86_64),
        insn(RET_K, 0, 0, RET_TRACE | ABI_64 as u32),
        insn(JEQ_K, 0, 1, AUDIT_ARCH_I386),
        insn(RET_K, 0, 0, RET_TRACE | ABI_32 as u32),
        insn(RET_K, 0, 0, RET_KILL_PROCESS),
    ]
}

/// The address of the `struct sock_fprog` that `seccomp()` takes.
pub fn fprog_addr() -> u64 {
    BASE + (FILTER_OFF + filter().len() * 8) as u64
}

/// One system call: Linux x86_64 number and arguments.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    pub nr: u64,
    pub args: [u64; 6],
}

/// The set-up program for one image.
pub struct Program {
    pub elf: Vec<u8>,
    /// Where the first group of calls starts.
    pub start: u64,
    /// `rip` after the `int3` that ends the first group.
    pub first_done: u64,
    /// `rip` after each call's failure `int3`, in call order (first group,
    /// then second).
    pub failed: Vec<u64>,
}

const PROGRAM_OFF: usize = 256;

/// Machine code for one call; returns where its `jae` offset goes.
fn emit(code: &mut Vec<u8>, c: &Call) -> usize {
    let mov = |code: &mut Vec<u8>, op: &[u8], v: u64| {
        code.extend_from_slice(op);
        code.extend_from_slice(&v.to_le_bytes());
    };
    mov(code, &[0x48, 0xb8], c.nr); // mov rax, imm64
    for (op, v) in [([0x48, 0xbf], c.args[0]), ([0x48, 0xbe], c.args[1]), ([0x48, 0xba], c.args[2]), ([0x49, 0xba], c.args[3]), ([0x49, 0xb8], c.args[4]), ([0x49, 0xb9], c.args[5])] {
        mov(code, &op, v); // rdi rsi rdx r10 r8 r9
    }
    code.extend_from_slice(&[0x0f, 0x05]); // syscall
    code.extend_from_slice(&[0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff]); // cmp rax, -4095
    code.extend_from_slice(&[0x0f, 0x83]); // jae fail
    code.extend_from_slice(&[0; 4]);
    code.len() - 4
}

/// Builds the file: `first` runs, then an `int3`; then `second`, then the
/// unmapping of the set-up program itself.
pub fn program(first: &[Call], second: &[Call]) -> Program {
    let mut f = elf();
    f.resize(PROGRAM_OFF, 0);
    let base = BASE + PROGRAM_OFF as u64;
    let mut code = Vec::new();
    let mut jumps = Vec::new();
    for c in first {
        jumps.push(emit(&mut code, c));
    }
    code.push(0xcc);
    let first_done = base + code.len() as u64;
    for c in second {
        jumps.push(emit(&mut code, c));
    }
    // The last call: its own pages gone, the guest's registers come next.
    // Its own code (84 bytes), its int3, and one int3 per call follow.
    let total = (PROGRAM_OFF + code.len() + 84 + 1 + jumps.len() + 1) as u64;
    let me = Call { nr: 11, args: [BASE, total.next_multiple_of(4096), 0, 0, 0, 0] };
    let last = emit(&mut code, &me);
    code.push(0xcc);
    let mut failed = Vec::new();
    for &at in jumps.iter().chain([&last]) {
        let target = code.len();
        code.push(0xcc);
        let rel = target as i64 - (at as i64 + 4);
        code[at..at + 4].copy_from_slice(&(rel as i32).to_le_bytes());
        failed.push(base + target as u64 + 1);
    }
    failed.pop();
    f.extend_from_slice(&code);
    let size = f.len() as u64;
    f[EHDR + 32..EHDR + 40].copy_from_slice(&size.to_le_bytes()); // p_filesz
    f[EHDR + 40..EHDR + 48].copy_from_slice(&size.to_le_bytes()); // p_memsz
    Program { elf: f, start: base, first_done, failed }
}

/// The headers, the lone `syscall; int3` and the filter.
fn elf() -> Vec<u8> {
    let mut f = vec![0u8; FILTER_OFF];
    // e_ident: ELFCLASS64, ELFDATA2LSB, EV_CURRENT, System V ABI.
    f[..8].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    let put16 = |f: &mut Vec<u8>, at: usize, v: u16| f[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 = |f: &mut Vec<u8>, at: usize, v: u32| f[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let put64 = |f: &mut Vec<u8>, at: usize, v: u64| f[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put16(&mut f, 16, 2); // ET_EXEC: loaded at BASE exactly
    put16(&mut f, 18, 62); // EM_X86_64
    put32(&mut f, 20, 1);
    put64(&mut f, 24, CODE_ADDR); // e_entry (never run: xnurun sets rip)
    put64(&mut f, 32, EHDR as u64); // e_phoff
    put16(&mut f, 52, EHDR as u16);
    put16(&mut f, 54, PHDR as u16);
    put16(&mut f, 56, 1); // e_phnum
    f[EHDR + PHDR..EHDR + PHDR + CODE.len()].copy_from_slice(&CODE);
    for i in filter() {
        f.extend_from_slice(&i);
    }
    // struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    let n = filter().len() as u16;
    f.extend_from_slice(&n.to_le_bytes());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&(BASE + FILTER_OFF as u64).to_le_bytes());
    let size = f.len() as u64;
    // One PT_LOAD, read + execute, the whole file at BASE. No PT_GNU_STACK
    // matters: the stack is unmapped before the guest exists.
    let p = EHDR;
    put32(&mut f, p, 1); // PT_LOAD
    put32(&mut f, p + 4, 5); // PF_R | PF_X
    put64(&mut f, p + 8, 0); // p_offset
    put64(&mut f, p + 16, BASE); // p_vaddr
    put64(&mut f, p + 24, BASE); // p_paddr
    put64(&mut f, p + 32, size); // p_filesz
    put64(&mut f, p + 40, size); // p_memsz
    put64(&mut f, p + 48, 0x1000); // p_align
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_ends_each_call_with_a_check_and_unmaps_itself() {
        let p = program(&[Call { nr: 11, args: [0, 4096, 0, 0, 0, 0] }], &[Call { nr: 157, args: [38, 1, 0, 0, 0, 0] }]);
        assert!(p.elf.len() <= 4096);
        let code = &p.elf[PROGRAM_OFF..];
        // mov rax, 11 first; the first group ends with int3 where it says.
        assert_eq!(&code[..10], &[0x48, 0xb8, 11, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(p.elf[(p.first_done - 1 - BASE) as usize], 0xcc);
        // Each failure target is an int3.
        for &f in &p.failed {
            assert_eq!(p.elf[(f - 1 - BASE) as usize], 0xcc);
        }
        assert_eq!(p.failed.len(), 2);
    }

    #[test]
    fn one_page_with_code_filter_and_fprog_in_place() {
        let f = elf();
        assert!(f.len() <= 4096);
        assert_eq!(&f[(CODE_ADDR - BASE) as usize..][..3], &CODE);
        let fp = (fprog_addr() - BASE) as usize;
        assert_eq!(u16::from_le_bytes([f[fp], f[fp + 1]]), 6);
        let ptr = u64::from_le_bytes(f[fp + 8..fp + 16].try_into().unwrap());
        assert_eq!(ptr, BASE + FILTER_OFF as u64);
        // The last instruction is the kill, the two returns carry the ABI.
        assert_eq!(&f[fp - 8..fp - 6], &[0x06, 0]);
        assert_eq!(u32::from_le_bytes(f[fp - 4..fp].try_into().unwrap()), RET_KILL_PROCESS);
    }
}
