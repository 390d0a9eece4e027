//! The set-up program: a small static ELF (one page, for a hello) that the
//! guest process execs so that it starts with an address space holding
//! nothing of xnurun's.
//!
//! Its code is the set-up itself, written for this image and run from its
//! ELF entry point: a straight run of system calls with their arguments in
//! place (move the vDSO, unmap what Linux mapped, map the image's pages
//! from the file the program came from, where `guest.rs` puts them after
//! it, close that file, no new privileges, the seccomp filter), ending
//! with the unmapping of itself, which the filter stops like any other
//! call. A failing call ends at its own `int3`.
//! Driving each call by ptrace instead would cost a stop and four ptrace
//! requests per call. The page also carries the seccomp filter.
//!
//! It is loaded in the one range that no XNU image can use and that Linux
//! still gives a 64-bit process: from `VM_MAX_PAGE_ADDRESS64`
//! (osfmk/mach/i386/vm_param.h, the end of an XNU 64-bit user map; the
//! loader refuses segments past it) up to Linux's stack at the top. A
//! 32-bit guest cannot address it at all.

/// Where the set-up page is loaded: XNU's `VM_MAX_PAGE_ADDRESS64`.
pub const BASE: u64 = crate::xnu::vm::VM_MAX_PAGE_ADDRESS64;
/// Where the vDSO is moved before it is unmapped (see `guest.rs`).
pub const VDSO_PARK: u64 = BASE + 0x10_0000;
/// The end of the range: what the vDSO may occupy there, well below the
/// stack, which Linux puts at the very top (0x7ffffffff000) when
/// randomization is off.
pub const PARK_END: u64 = BASE + 0x18_0000;
/// The end of Linux's 47-bit user range (`DEFAULT_MAP_WINDOW`,
/// arch/x86/include/asm/page_64_types.h): the program's last call unmaps
/// everything from BASE up to it, itself, the parked vDSO and the stack
/// it started on.
pub const LINUX_TOP: u64 = 0x7fff_ffff_f000;

const EHDR: usize = 64;
const PHDR: usize = 56;
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
    /// `rip` after each call's failure `int3`, in call order: the vDSO's
    /// move (when there is one), then `calls`.
    pub failed: Vec<u64>,
}

const PROGRAM_OFF: usize = 256;
/// Linux's x86_64 `mremap` and `munmap`, and `AT_SYSINFO_EHDR`.
const SYS_MREMAP: u64 = 25;
const SYS_MUNMAP: u64 = 11;
const AT_SYSINFO_EHDR: u8 = 33;

/// Machine code for one call whose `rdi` is already in place when
/// `args[0]` is None; returns where its `jae` offset goes.
fn emit(code: &mut Vec<u8>, nr: u64, args: [Option<u64>; 6]) -> usize {
    let mov = |code: &mut Vec<u8>, op: &[u8], v: u64| {
        code.extend_from_slice(op);
        code.extend_from_slice(&v.to_le_bytes());
    };
    mov(code, &[0x48, 0xb8], nr); // mov rax, imm64
    let ops: [&[u8]; 6] = [&[0x48, 0xbf], &[0x48, 0xbe], &[0x48, 0xba], &[0x49, 0xba], &[0x49, 0xb8], &[0x49, 0xb9]];
    for (op, v) in ops.into_iter().zip(args) {
        if let Some(v) = v {
            mov(code, op, v); // rdi rsi rdx r10 r8 r9
        }
    }
    code.extend_from_slice(&[0x0f, 0x05]); // syscall
    code.extend_from_slice(&[0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff]); // cmp rax, -4095
    code.extend_from_slice(&[0x0f, 0x83]); // jae fail
    code.extend_from_slice(&[0; 4]);
    code.len() - 4
}

/// Moves the vDSO (`vdso_len` bytes) to `VDSO_PARK`. Its address is known
/// only after exec, from the auxiliary vector (`AT_SYSINFO_EHDR`) above
/// argv and envp on the stack Linux built; without that entry, nothing
/// moves. Returns where the mremap's `jae` offset goes.
fn emit_vdso_move(code: &mut Vec<u8>, vdso_len: u64) -> usize {
    code.extend_from_slice(&[0x48, 0x89, 0xe6]); // mov rsi, rsp
    code.extend_from_slice(&[0x48, 0x8b, 0x06]); // mov rax, [rsi]      (argc)
    code.extend_from_slice(&[0x48, 0x8d, 0x74, 0xc6, 0x10]); // lea rsi, [rsi+rax*8+16]  (envp)
    // envp: up to and past its NULL.
    code.extend_from_slice(&[0x48, 0x8b, 0x06, 0x48, 0x83, 0xc6, 0x08, 0x48, 0x85, 0xc0, 0x75, 0xf4]);
    // auxv: find AT_SYSINFO_EHDR, or leave at AT_NULL.
    code.extend_from_slice(&[0x48, 0x8b, 0x06]); // mov rax, [rsi]
    code.extend_from_slice(&[0x48, 0x85, 0xc0]); // test rax, rax
    code.extend_from_slice(&[0x74, 0x00]); // jz none
    let none = code.len() - 1;
    code.extend_from_slice(&[0x48, 0x83, 0xf8, AT_SYSINFO_EHDR]); // cmp rax, 33
    code.extend_from_slice(&[0x74, 0x06]); // je found
    code.extend_from_slice(&[0x48, 0x83, 0xc6, 0x10]); // add rsi, 16
    code.extend_from_slice(&[0xeb, 0xec]); // jmp auxv
    code.extend_from_slice(&[0x48, 0x8b, 0x7e, 0x08]); // found: mov rdi, [rsi+8]
    let flags = (nix::libc::MREMAP_MAYMOVE | nix::libc::MREMAP_FIXED) as u64;
    let jae = emit(code, SYS_MREMAP, [None, Some(vdso_len), Some(vdso_len), Some(flags), Some(VDSO_PARK), Some(0)]);
    code[none] = (code.len() - none - 1) as u8;
    jae
}

/// Builds the file: EFLAGS.ID set when `set_id`, the vDSO's move when
/// `vdso_len` is given, then `calls`, then the unmapping of the set-up
/// program itself.
pub fn program(set_id: bool, vdso_len: Option<u64>, calls: &[Call]) -> Program {
    let mut f = elf();
    f.resize(PROGRAM_OFF, 0);
    let base = BASE + PROGRAM_OFF as u64;
    let mut code = Vec::new();
    let mut jumps = Vec::new();
    if set_id {
        // A tracer cannot set ID (FLAG_MASK, arch/x86/kernel/ptrace.c
        // keeps it out of PTRACE_SETREGS), but the thread may, with popf,
        // on Linux's stack while it is still there; every call after
        // keeps it (the flags return through r11 or the saved frame).
        code.extend_from_slice(&[0x9c, 0x81, 0x0c, 0x24, 0x00, 0x00, 0x20, 0x00, 0x9d]); // pushfq; or dword [rsp], ID; popfq
    }
    if let Some(len) = vdso_len {
        jumps.push(emit_vdso_move(&mut code, len));
    }
    for c in calls {
        jumps.push(emit(&mut code, c.nr, c.args.map(Some)));
    }
    // The last call: everything from its own page up gone, the guest's
    // registers come next. One int3 per call follows its code.
    let last = emit(&mut code, SYS_MUNMAP, [BASE, LINUX_TOP - BASE, 0, 0, 0, 0].map(Some));
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
    f[24..32].copy_from_slice(&base.to_le_bytes()); // e_entry
    f[EHDR + 32..EHDR + 40].copy_from_slice(&size.to_le_bytes()); // p_filesz
    f[EHDR + 40..EHDR + 48].copy_from_slice(&size.to_le_bytes()); // p_memsz
    Program { elf: f, failed }
}

/// The headers and the filter.
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
    put64(&mut f, 32, EHDR as u64); // e_phoff
    put16(&mut f, 52, EHDR as u16);
    put16(&mut f, 54, PHDR as u16);
    put16(&mut f, 56, 1); // e_phnum
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
    fn the_program_starts_at_the_entry_checks_each_call_and_unmaps_itself() {
        let calls = [Call { nr: 11, args: [0, 4096, 0, 0, 0, 0] }, Call { nr: 157, args: [38, 1, 0, 0, 0, 0] }];
        let p = program(false, None, &calls);
        assert!(p.elf.len() <= 4096);
        let entry = u64::from_le_bytes(p.elf[24..32].try_into().unwrap());
        assert_eq!(entry, BASE + PROGRAM_OFF as u64);
        let code = &p.elf[PROGRAM_OFF..];
        // mov rax, 11 first, then mov rdi, 0; mov rsi, 4096.
        assert_eq!(&code[..10], &[0x48, 0xb8, 11, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&code[10..20], &[0x48, 0xbf, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&code[20..30], &[0x48, 0xbe, 0, 0x10, 0, 0, 0, 0, 0, 0]);
        // Each failure target is an int3, one per call before the last.
        assert_eq!(p.failed.len(), 2);
        for &f in &p.failed {
            assert_eq!(p.elf[(f - 1 - BASE) as usize], 0xcc);
        }
        // The last call unmaps everything from the program's page to the
        // top of Linux's range, and nothing follows it but the failure
        // int3s.
        let last = code.len() - 84 - 3;
        assert_eq!(&code[last..last + 10], &[0x48, 0xb8, 11, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(u64::from_le_bytes(code[last + 12..last + 20].try_into().unwrap()), BASE);
        let len = u64::from_le_bytes(code[last + 22..last + 30].try_into().unwrap());
        assert_eq!(BASE + len, LINUX_TOP);
        assert_eq!(&code[code.len() - 3..], &[0xcc; 3]);
    }

    #[test]
    fn the_vdso_move_finds_the_auxv_entry_and_leaves_rdi_to_it() {
        let p = program(false, Some(8192), &[]);
        let code = &p.elf[PROGRAM_OFF..];
        // Past argc, argv and envp, the auxv loop ends at AT_NULL with a
        // jz over the whole mremap (74 bytes: rdi is already in place).
        let found = code.windows(4).position(|w| w == [0x48, 0x8b, 0x7e, 0x08]).expect("mov rdi, [rsi+8]");
        assert_eq!(found, 43);
        assert_eq!(&code[29..31], &[0x74, (found + 4 + 74 - 31) as u8]);
        assert_eq!(&code[found + 4..found + 6], &[0x48, 0xb8]);
        assert_eq!(code[found + 6], 25, "mremap");
        assert!(!code[found + 4..found + 78].windows(2).any(|w| w == [0x48, 0xbf]), "rdi is the vDSO's address");
        let park = u64::from_le_bytes(code[found + 4 + 10 * 4 + 2..][..8].try_into().unwrap());
        assert_eq!(park, VDSO_PARK);
        assert_eq!(p.failed.len(), 1);
    }

    #[test]
    fn one_page_with_the_filter_and_fprog_in_place() {
        let f = elf();
        assert!(f.len() <= 4096);
        let fp = (fprog_addr() - BASE) as usize;
        assert_eq!(u16::from_le_bytes([f[fp], f[fp + 1]]), 6);
        let ptr = u64::from_le_bytes(f[fp + 8..fp + 16].try_into().unwrap());
        assert_eq!(ptr, BASE + FILTER_OFF as u64);
        // The last instruction is the kill, the two returns carry the ABI.
        assert_eq!(&f[fp - 8..fp - 6], &[0x06, 0]);
        assert_eq!(u32::from_le_bytes(f[fp - 4..fp].try_into().unwrap()), RET_KILL_PROCESS);
    }
}
