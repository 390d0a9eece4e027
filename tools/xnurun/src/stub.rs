//! The set-up program: a one-page static ELF that the guest process execs
//! so that it starts with an address space holding nothing of xnurun's.
//!
//! Its code is two instructions, `syscall; int3`. xnurun, as its tracer,
//! points `rip` at them with a system call's registers and lets it run:
//! that is how the guest process makes the few calls that empty its address
//! space and map the image (see `guest.rs`). The page also carries the
//! seccomp filter that the last of those calls installs.
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

/// The whole ELF file.
pub fn elf() -> Vec<u8> {
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
