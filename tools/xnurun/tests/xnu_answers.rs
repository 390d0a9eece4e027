//! Guests whose answer on XNU an audit found xnurun getting wrong: each
//! runs on the emulated CPU and on the real one (`common::both`), and must
//! get the answer the cited XNU source gives.

mod common;
use common::*;
use std::process::Stdio;

/// `xor edi, edi; mov eax, 0x2000001; syscall`: exit(0), reached only if
/// the instruction under test let the guest go on.
const EXIT0_64: [u8; 9] = [0x31, 0xff, 0xb8, 0x01, 0x00, 0x00, 0x02, 0x0f, 0x05];

fn guest64(name: &str, code: &[u8]) -> std::process::Output {
    let mut c = code.to_vec();
    c.extend_from_slice(&EXIT0_64);
    run(name, &Image::new64(c).bytes(), &[])
}

fn guest32(name: &str, code: &[u8]) -> std::process::Output {
    let mut c = code.to_vec();
    // push 0; push eax; mov eax, 1; int 0x80: exit(0)
    c.extend_from_slice(&[0x6a, 0x00, 0x50, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xcd, 0x80]);
    run(name, &Image::new32(c).bytes(), &[])
}

/// `sub rsp, 512; mov rdi, rsp`: room on the stack for a message, its
/// address in the Mach call's first argument.
const MESSAGE_ROOM: [u8; 10] = [0x48, 0x81, 0xec, 0, 2, 0, 0, 0x48, 0x89, 0xe7];

/// The end of a 64-bit guest: exit(0) when EAX is `expected`, else exit(1).
fn exit_unless_eax(expected: u32) -> Vec<u8> {
    let mut b = vec![0x3d]; // cmp eax, expected
    b.extend_from_slice(&expected.to_le_bytes());
    b.extend_from_slice(&[0x40, 0x0f, 0x95, 0xc7, 0x40, 0x0f, 0xb6, 0xff]); // setne dil; movzx edi, dil
    b.extend_from_slice(&[0xb8, 0x01, 0, 0, 2, 0x0f, 0x05]); // exit(edi)
    b
}

/// Runs a 64-bit guest whose `code` leaves a call's answer in EAX, on both
/// CPUs, and asserts that the answer is `expected`.
fn assert_eax(name: &str, code: &[u8], expected: u32, opts: &[&str]) {
    let o = run(name, &Image::new64([code, &exit_unless_eax(expected)].concat()).bytes(), opts);
    assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
}

/// `int n` as XNU's IDT (osfmk/x86_64/idt_table.h, the same in xnu-4903
/// and xnu-11417) has it: `USER_TRAP` for 3, 4, 5 and 0x7f, the system-call
/// gates 0x80-0x82, and #GP for everything else, 0x83 included. Then
/// `user_trap` (osfmk/i386/trap.c): T_OVERFLOW is EXC_ARITHMETIC (SIGFPE),
/// T_OUT_OF_BOUNDS is EXC_SOFTWARE / EXC_I386_BOUND (SIGTRAP), T_DTRACE_RET
/// is EXC_BAD_INSTRUCTION (SIGILL), #GP is EXC_BAD_ACCESS (SIGSEGV).
#[test]
fn int_n_follows_xnus_idt() {
    for (n, status) in [(4u8, 136), (5, 133), (0x7f, 132), (0x83, 139), (0x21, 139)] {
        let o = guest64(&format!("int{n:x}-64"), &[0xcd, n]);
        assert_eq!(o.status.code(), Some(status), "64-bit int 0x{n:x}: {}", stderr(&o));
        let o = guest32(&format!("int{n:x}-32"), &[0xcd, n]);
        assert_eq!(o.status.code(), Some(status), "32-bit int 0x{n:x}: {}", stderr(&o));
    }
}

/// The last bytes before an unmapped page are instruction bytes like any
/// other: an `int 0x80` there is a call (i386) or XNU's refusal of a 32-bit
/// gate from a 64-bit task (L_64bit_entry_reject: SIGILL).
#[test]
fn a_gate_in_the_last_bytes_of_a_page_is_still_a_gate() {
    // push 42; push eax; mov eax, 1; int 0x80: exit(42), ending at 0x2000.
    let code = [0x6a, 42, 0x50, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xcd, 0x80];
    let mut img = Image::new32(code.to_vec());
    img.code_off = 0x1000 - code.len() as u64;
    img.entry = BASE32 + img.code_off;
    let o = run("int80-page-end", &img.bytes(), &[]);
    assert_eq!(o.status.code(), Some(42), "{}", stderr(&o));

    let mut img = Image::new64(vec![0xcd, 0x80]);
    img.code_off = 0xffe;
    img.entry = BASE64 + 0xffe;
    let o = run("int80-page-end-64", &img.bytes(), &[]);
    assert_eq!(o.status.code(), Some(132), "{}", stderr(&o));
    assert!(stderr(&o).contains("L_64bit_entry_reject"), "{}", stderr(&o));
}

/// XNU never sets CR0.AM, so EFLAGS.AC changes nothing: an unaligned load
/// with AC set just loads (Linux sets CR0.AM; xnurun clears the guest's AC
/// where the CPU faults and lets the load happen).
#[test]
fn alignment_checking_is_off_as_on_xnu() {
    let code = [
        0x9c, // pushfq
        0x81, 0x0c, 0x24, 0x00, 0x00, 0x04, 0x00, // or dword [rsp], 0x40000 (AC)
        0x9d, // popfq
        0x48, 0x8b, 0x44, 0x24, 0x01, // mov rax, [rsp+1]: unaligned
    ];
    let o = guest64("ac", &code);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// read(FD, BUF, COUNT); on error exit(errno), else write what was read to
/// stdout and exit(0). BUF is an absolute address.
fn reader(fd: u32, buf: u64, count: u32) -> Image {
    let mut a = Asm::new(BASE64 + CODE_OFF);
    a.raw(&[0x48, 0xbe]).raw(&buf.to_le_bytes()) // mov rsi, buf
        .raw(&[0xbf]).raw(&fd.to_le_bytes()) // mov edi, fd
        .raw(&[0xba]).raw(&count.to_le_bytes()) // mov edx, count
        .raw(&[0xb8, 0x03, 0x00, 0x00, 0x02, 0x0f, 0x05]) // read
        .rel(&[0x0f, 0x82], "err")
        .raw(&[0x48, 0x89, 0xc2]) // mov rdx, rax
        .raw(&[0xbf, 1, 0, 0, 0]) // mov edi, 1
        .raw(&[0xb8, 0x04, 0x00, 0x00, 0x02, 0x0f, 0x05]) // write
        .raw(&EXIT0_64)
        .label("err")
        .raw(&[0x89, 0xc7]) // mov edi, eax
        .raw(&[0xb8, 0x01, 0x00, 0x00, 0x02, 0x0f, 0x05]); // exit(errno)
    Image::new64(a.finish())
}

/// A writable segment of `size` bytes at `DATA`, with nothing after it.
const DATA: u64 = 0x2_0000_0000;

fn with_data(mut img: Image, size: u64) -> Image {
    img.segs.push(Seg { name: "__DATA", vmaddr: DATA, vmsize: size, fileoff: 0, filesize: 0, maxprot: 3, initprot: 3 });
    img
}

/// Runs `img` with `input` as stdin on every CPU and strategy; they must
/// agree. Returns the status and the stdout length.
fn run_reading(name: &str, img: &Image, input: &[u8]) -> (Option<i32>, usize, String) {
    let path = write_image(name, &img.bytes());
    let input = write_image(&format!("{name}-in"), input);
    let mut seen = Vec::new();
    for cpu in ["emulated", "real"] {
        let cpu = ["--cpu", cpu];
        let o = xnurun().args(cpu).arg(&path).stdin(std::fs::File::open(&input).unwrap()).stderr(Stdio::piped()).output().unwrap();
        seen.push((o.status.code(), o.stdout.len(), stderr(&o)));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{name}: the CPUs differ: {seen:?}");
    seen.swap_remove(0)
}

/// `dofileread` (bsd/kern/sys_generic.c): the descriptor first (EBADF
/// whatever the buffer), no cap on the count, and a transfer the buffer
/// cannot take whole is EFAULT (only ERESTART, EINTR and EWOULDBLOCK turn
/// a partial transfer into success).
#[test]
fn read_answers_as_dofileread() {
    let three_mb = vec![b'x'; 3 << 20];
    // 2 MiB in one read from a 3 MB file: all of it.
    let img = with_data(reader(0, DATA, 2 << 20), 4 << 20);
    let (status, out, err) = run_reading("read-2mib", &img, &three_mb);
    assert_eq!((status, out), (Some(0), 2 << 20), "{err}");
    // A buffer whose second half is unmapped, with more input than the
    // first half holds: EFAULT.
    let img = with_data(reader(0, DATA + 0x800, 0x1000), 0x1000);
    let (status, out, err) = run_reading("read-half", &img, &three_mb);
    assert_eq!((status, out), (Some(14), 0), "{err}");
    // The same buffer with less input than the mapped half: the bytes.
    let (status, out, err) = run_reading("read-half-short", &img, b"abc");
    assert_eq!((status, out), (Some(0), 3), "{err}");
    // A bad descriptor and a bad buffer: EBADF, the descriptor first.
    let img = reader(99, 0x10, 64);
    let (status, _, err) = run_reading("read-badfd-badbuf", &img, b"abc");
    assert_eq!(status, Some(9), "{err}");
}

/// The guest's descriptor table is what xnurun inherited, never xnurun's
/// own files: the image file xnurun holds open is EBADF to the guest.
#[test]
fn xnuruns_own_descriptors_are_not_the_guests() {
    let img = with_data(reader(3, DATA, 64), 0x1000);
    let path = write_image("read-fd3", &img.bytes());
    for cpu in ["emulated", "real"] {
        let mut cmd = xnurun();
        cmd.args(["--cpu", cpu]).arg(&path).stdin(Stdio::null()).stderr(Stdio::piped());
        // xnurun itself must start with no descriptor 3, so that the only
        // one the guest could find there is xnurun's own. Whoever runs the
        // tests may hand one down (cargo-mutants' jobserver pipe is a 3).
        // SAFETY: close(2) only, between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                nix::libc::close(3);
                Ok(())
            });
        }
        let o = cmd.output().unwrap();
        assert_eq!((o.status.code(), o.stdout.len()), (Some(9), 0), "--cpu {cpu}: {}", stderr(&o));
    }
}

/// A universal file built by hand: the fat header (big-endian) and each
/// slice page-aligned after it.
fn universal(slices: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![0u8; 0x1000];
    out[..4].copy_from_slice(&0xcafe_babe_u32.to_be_bytes());
    out[4..8].copy_from_slice(&(slices.len() as u32).to_be_bytes());
    for (i, (cpu, bytes)) in slices.iter().enumerate() {
        let offset = out.len() as u32;
        let at = 8 + 20 * i;
        for (k, v) in [*cpu, 3, offset, bytes.len() as u32, 12].into_iter().enumerate() {
            out[at + 4 * k..at + 4 * k + 4].copy_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(bytes);
        out.resize(out.len().next_multiple_of(0x1000), 0);
    }
    out
}

/// `exec_fat_imgact` runs the best slice for the machine: x86_64 before
/// i386 (an Intel Mac's `grade_binary`); a file with no runnable slice is
/// refused before anything runs.
#[test]
fn a_universal_file_runs_its_best_slice() {
    // exit(64) as x86_64, exit(32) as i386.
    let x64 = Image::new64(vec![0xbf, 64, 0, 0, 0, 0xb8, 0x01, 0x00, 0x00, 0x02, 0x0f, 0x05]).bytes();
    let x86 = Image::new32(vec![0x6a, 32, 0x50, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xcd, 0x80]).bytes();
    const X86_64: u32 = 0x0100_0007;
    const I386: u32 = 7;
    const PPC: u32 = 18;
    let o = run("fat-both", &universal(&[(I386, x86.clone()), (X86_64, x64.clone())]), &[]);
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));
    let o = run("fat-i386", &universal(&[(PPC, x64.clone()), (I386, x86)]), &[]);
    assert_eq!(o.status.code(), Some(32), "{}", stderr(&o));
    let o = run("fat-ppc", &universal(&[(PPC, x64)]), &[]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    assert!(stderr(&o).contains("none of its 1 slices is x86_64, i386 or arm64"), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

/// `create_unix_stack`: when a segment sits where the stack goes, the
/// stack is taken anywhere in the task's map (the first gap from the
/// bottom), never past its end: inside 4 GiB for i386.
#[test]
fn the_stack_goes_elsewhere_when_a_segment_is_in_its_place() {
    // exit(7): the guest ran, with a stack.
    let exit7_64 = vec![0x50, 0x58, 0xbf, 7, 0, 0, 0, 0xb8, 0x01, 0x00, 0x00, 0x02, 0x0f, 0x05];
    let mut img = Image::new64(exit7_64);
    let usrstack64: u64 = 0x7FF7_C000_0000 - (1 << 20);
    img.segs.push(Seg { name: "__DATA", vmaddr: usrstack64 - 0x1000, vmsize: 0x2000, fileoff: 0, filesize: 0, maxprot: 3, initprot: 3 });
    let o = run("stack-moved-64", &img.bytes(), &[]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    // i386: one segment on USRSTACK32, one at the top of the 32-bit map.
    let exit7_32 = vec![0x6a, 7, 0x50, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xcd, 0x80];
    let mut img = Image::new32(exit7_32);
    img.segs.push(Seg { name: "__DATA", vmaddr: 0xBFFF_F000, vmsize: 0x2000, fileoff: 0, filesize: 0, maxprot: 3, initprot: 3 });
    img.segs.push(Seg { name: "__HIGH", vmaddr: 0xFFC0_0000, vmsize: 0x1000, fileoff: 0, filesize: 0, maxprot: 3, initprot: 3 });
    let o = run("stack-moved-32", &img.bytes(), &[]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
}

/// `override_nx` (osfmk/vm/vm_map.c): i386 processes may execute readable
/// data (`allow_data_exec = VM_ABI_32`, osfmk/x86_64/pmap.c) but not their
/// stack; `MH_ALLOW_STACK_EXECUTION` turns NX off for the whole map
/// (`load_machfile`: `vm_map_disable_NX`).
#[test]
fn data_and_stack_execution_as_xnu_allows_it() {
    // i386: __TEXT jumps to code in a rw- __DATA segment.
    let mut img = Image::new32(vec![0xb8, 0x00, 0x30, 0x00, 0x00, 0xff, 0xe0]); // mov eax, 0x3000; jmp eax
    img.size = 0x2000;
    img.segs.push(Seg { name: "__DATA", vmaddr: 0x3000, vmsize: 0x1000, fileoff: 0x1000, filesize: 0x1000, maxprot: 3, initprot: 3 });
    let mut bytes = img.bytes();
    bytes[0x1000..0x100a].copy_from_slice(&[0x6a, 7, 0x50, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xcd, 0x80]);
    let o = run("data-exec-32", &bytes, &[]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));

    // x86_64: exit(7) copied onto the stack, then `jmp rsp`.
    let on_stack: [u8; 12] = [0xbf, 7, 0, 0, 0, 0xb8, 0x01, 0x00, 0x00, 0x02, 0x0f, 0x05];
    let mut code = vec![0x48, 0x83, 0xec, 0x40, 0x48, 0xb8]; // sub rsp, 64; mov rax, imm64
    code.extend_from_slice(&on_stack[..8]);
    code.extend_from_slice(&[0x48, 0x89, 0x04, 0x24, 0xb8]); // mov [rsp], rax; mov eax, imm32
    code.extend_from_slice(&on_stack[8..]);
    code.extend_from_slice(&[0x89, 0x44, 0x24, 0x08, 0xff, 0xe4]); // mov [rsp+8], eax; jmp rsp
    let mut img = Image::new64(code);
    let o = run("stack-nx-64", &img.bytes(), &[]);
    assert_eq!(o.status.code(), Some(139), "the stack is not executable by default: {}", stderr(&o));
    img.flags |= 0x20000; // MH_ALLOW_STACK_EXECUTION
    let o = run("stack-exec-64", &img.bytes(), &[]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
}

/// Which CPU runs an image when the user names none (cpu/real/vendor.rs):
/// the real one for x86_64 images; for i386 images the real one on AMD
/// and the emulated one on Intel, where Linux's `sysenter` entry can lose
/// the call number. Told apart by `rdfsbase` in 64-bit code, which the
/// real CPU runs (Linux sets CR4.FSGSBASE) and the emulated one, like
/// XNU, refuses (SIGILL): one of the differences docs/limits.md lists.
#[test]
fn each_vendor_chooses_its_cpu_for_i386_images() {
    let mut a = Asm::new(BASE32 + CODE_OFF);
    a.abs(&[0xea], "target").raw(&[0x33, 0x00]); // ljmp 0x33:target
    a.label("target")
        .raw(&[0xf3, 0x48, 0x0f, 0xae, 0xc0]) // rdfsbase rax
        .raw(&[0xbf, 5, 0, 0, 0, 0xb8, 0x01, 0x00, 0x00, 0x02, 0x0f, 0x05]); // exit(5), 64-bit
    let path = write_image("vendor-choice", &Image::new32(a.finish()).bytes());
    for (vendor, status) in [("amd", 5), ("intel", 132)] {
        let o = xnurun().args(["--x86-strategy", vendor]).arg(&path).output().unwrap();
        assert_eq!(o.status.code(), Some(status), "{vendor}: {}", stderr(&o));
    }
}

/// A Mach trap number that is no trap (past the table, or a `kern_invalid`
/// slot) is EXC_SYSCALL (`mach_call_munger64`, osfmk/i386/bsd_i386.c).
/// What the process then sees depends on the release: SIGSYS in the
/// current XNU the x86_64 image meets (`ux_exception`, since xnu-8020);
/// nothing in the xnu-4903 an i386 image meets, where the thread goes on
/// past the entry with EAX unchanged (through `sysenter`: at EDX, with
/// ESP = ECX).
#[test]
fn exc_syscall_is_release_dependent() {
    for (name, eax) in [("mach0-64", 0x100_0000u32), ("mach200-64", 0x100_00c8), ("mach30-64", 0x100_001e)] {
        let mut code = vec![0xb8];
        code.extend_from_slice(&eax.to_le_bytes());
        code.extend_from_slice(&[0x0f, 0x05]); // syscall
        let o = guest64(name, &code);
        assert_eq!(o.status.code(), Some(140), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains("EXC_SYSCALL"), "{name}: {}", stderr(&o));
        // The release the answer comes from, named: x86_64 images meet
        // current XNU.
        assert!(stderr(&o).contains("is no trap in xnu-11417:"), "{name}: {}", stderr(&o));
    }
    // i386, sysenter: mov eax, -200; mov edx, after; mov ecx, esp; sysenter;
    // after: cmp eax, -200; jne fail; exit(7); fail: exit(1).
    let mut a = Asm::new(BASE32 + CODE_OFF);
    a.raw(&[0xb8]).raw(&(-200i32).to_le_bytes())
        .abs(&[0xba], "after")
        .raw(&[0x89, 0xe1, 0x0f, 0x34])
        .label("after")
        .raw(&[0x3d]).raw(&(-200i32).to_le_bytes())
        .rel(&[0x0f, 0x85], "fail")
        .raw(&[0x6a, 7, 0x50, 0xb8, 1, 0, 0, 0, 0xcd, 0x80])
        .label("fail")
        .raw(&[0x6a, 1, 0x50, 0xb8, 1, 0, 0, 0, 0xcd, 0x80]);
    let o = run("mach200-sysenter", &Image::new32(a.finish()).bytes(), &["--trace"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(stderr(&o).contains("mach trap 200 (eax 0xffffff38) = ? EXC_SYSCALL"), "{}", stderr(&o));
    // i386, int 0x81 with a kern_invalid slot (trap 13 in xnu-4903).
    let mut a = Asm::new(BASE32 + CODE_OFF);
    a.raw(&[0xb8]).raw(&(-13i32).to_le_bytes())
        .raw(&[0xcd, 0x81])
        .raw(&[0x3d]).raw(&(-13i32).to_le_bytes())
        .rel(&[0x0f, 0x85], "fail")
        .raw(&[0x6a, 7, 0x50, 0xb8, 1, 0, 0, 0, 0xcd, 0x80])
        .label("fail")
        .raw(&[0x6a, 1, 0x50, 0xb8, 1, 0, 0, 0, 0xcd, 0x80]);
    let o = run("mach13-int81", &Image::new32(a.finish()).bytes(), &[]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
}

/// A machine-dependent call past `machdep_call_count` or on a
/// `kern_invalid` slot returns KERN_INVALID_ARGUMENT (4) and the guest goes
/// on (`machdep_syscall64`, `machdep_syscall`, osfmk/i386/bsd_i386.c).
#[test]
fn machdep_calls_past_the_table_return_kern_invalid_argument() {
    for (name, eax) in [("machdep100-64", 0x300_0064u32), ("machdep2-64", 0x300_0002)] {
        let mut a = Asm::new(BASE64 + CODE_OFF);
        a.raw(&[0xb8]).raw(&eax.to_le_bytes())
            .raw(&[0x0f, 0x05])
            .raw(&[0x48, 0x83, 0xf8, 0x04]) // cmp rax, 4
            .rel(&[0x0f, 0x85], "fail")
            .raw(&[0xbf, 7, 0, 0, 0, 0xb8, 1, 0, 0, 2, 0x0f, 0x05])
            .label("fail")
            .raw(&[0xbf, 1, 0, 0, 0, 0xb8, 1, 0, 0, 2, 0x0f, 0x05]);
        let o = run(name, &Image::new64(a.finish()).bytes(), &[]);
        assert_eq!(o.status.code(), Some(7), "{name}: {}", stderr(&o));
    }
    let mut a = Asm::new(BASE32 + CODE_OFF);
    a.raw(&[0xb8, 100, 0, 0, 0, 0xcd, 0x82])
        .raw(&[0x83, 0xf8, 0x04]) // cmp eax, 4
        .rel(&[0x0f, 0x85], "fail")
        .raw(&[0x6a, 7, 0x50, 0xb8, 1, 0, 0, 0, 0xcd, 0x80])
        .label("fail")
        .raw(&[0x6a, 1, 0x50, 0xb8, 1, 0, 0, 0, 0xcd, 0x80]);
    let o = run("machdep100-32", &Image::new32(a.finish()).bytes(), &[]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
}

/// `hlt` at CPL 3 is #GP: SIGSEGV on the instruction (user_trap). The
/// emulated CPU runs it as a halt unless told otherwise.
#[test]
fn hlt_is_a_general_protection_fault() {
    for (name, o) in [("hlt-64", guest64("hlt-64", &[0xf4])), ("hlt-32", guest32("hlt-32", &[0xf4]))] {
        assert_eq!(o.status.code(), Some(139), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains("general protection"), "{name}: {}", stderr(&o));
    }
}

/// User code runs at privilege level 3 on both CPUs, as under XNU: system
/// instructions are #GP (SIGSEGV), `icebp` is the debug trap (SIGTRAP),
/// an undefined encoding and a LOCK where none may stand are #UD (SIGILL),
/// and reloading the thread's own stack selector just works.
#[test]
fn user_mode_is_user_mode_on_both_cpus() {
    let cases: [(&str, &[u8], i32); 10] = [
        ("cli", &[0xfa], 139),
        ("in", &[0xec], 139),
        ("out", &[0xee], 139),
        ("rdmsr", &[0x0f, 0x32], 139),
        ("icebp", &[0xf1], 133),
        ("ff-7", &[0xff, 0xf8], 132),
        ("lock-syscall", &[0xf0, 0x0f, 0x05], 132),
        // c5 f8 05: a VEX prefix before opcode 05 of map 0f: no syscall.
        ("vex-syscall", &[0xc5, 0xf8, 0x05], 132),
        ("rdfsbase", &[0xf3, 0x48, 0x0f, 0xae, 0xc0], 132),
        ("mov-ss", &[0x8c, 0xd0, 0x8e, 0xd0], 0),
    ];
    for (name, code, status) in cases {
        if name == "rdfsbase" {
            // Linux sets CR4.FSGSBASE and no tracer can make the CPU
            // fault: only the emulated CPU can give XNU's answer
            // (docs/limits.md).
            let o = run_on("emulated", name, &Image::new64([code, &EXIT0_64[..]].concat()).bytes(), &[]);
            assert_eq!(o.status.code(), Some(status), "{name}: {}", stderr(&o));
            continue;
        }
        let o = guest64(name, code);
        assert_eq!(o.status.code(), Some(status), "{name}: {}", stderr(&o));
    }
}

/// The guest's own trap flag traps after the next instruction: T_DEBUG,
/// EXC_BREAKPOINT, SIGTRAP (`user_trap`); set by `popf`, or in the thread
/// state of `LC_UNIXTHREAD`, which `set_thread_state64` keeps.
#[test]
fn the_guests_own_trap_flag_traps() {
    // pushfq; or dword [rsp], 0x100; popfq; nop
    let o = guest64("tf-popf", &[0x9c, 0x81, 0x0c, 0x24, 0x00, 0x01, 0x00, 0x00, 0x9d, 0x90]);
    assert_eq!(o.status.code(), Some(133), "{}", stderr(&o));
    let mut img = Image::new64([&[0x90][..], &EXIT0_64[..]].concat());
    img.extra.clear();
    let bytes = img.bytes();
    // rflags is word 17 of x86_thread_state64_t, after flavor and count.
    let at = thread_state_offset(&bytes) + 8 + 17 * 8;
    let mut b = bytes.clone();
    b[at..at + 8].copy_from_slice(&0x302u64.to_le_bytes());
    let o = run("tf-thread-state", &b, &[]);
    assert_eq!(o.status.code(), Some(133), "{}", stderr(&o));
}

/// Where LC_UNIXTHREAD's command starts in `bytes`.
fn thread_state_offset(bytes: &[u8]) -> usize {
    let ncmds = u32::from_le_bytes(bytes[16..20].try_into().unwrap());
    let mut off = 32;
    for _ in 0..ncmds {
        let cmd = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap());
        if cmd == 5 {
            return off + 8;
        }
        off += u32::from_le_bytes(bytes[off + 4..off + 8].try_into().unwrap()) as usize;
    }
    panic!("no LC_UNIXTHREAD")
}

/// On Intel, an x86_64 image that maps the address Linux's 32-bit landing
/// pad is cut to (0xfff005e9 was seen) runs on the emulated CPU: after a
/// failed `sysenter` Intel CPUs resume there, in the guest's own code.
/// Told apart as above, by `rdfsbase`.
#[test]
fn an_x86_64_image_over_the_cut_landing_pad_runs_emulated_on_intel() {
    let code = [&[0xf3, 0x48, 0x0f, 0xae, 0xc0][..], &[0xbf, 5, 0, 0, 0, 0xb8, 0x01, 0x00, 0x00, 0x02, 0x0f, 0x05]].concat();
    let mut img = Image::new64(code);
    // A one-page page zero, as XNU allows, leaves the low 4 GiB to map.
    img.segs[0].vmsize = 0x1000;
    img.segs.push(Seg { name: "__PAD", vmaddr: 0xfff0_0000, vmsize: 0x1000, fileoff: 0, filesize: 0, maxprot: 3, initprot: 3 });
    let path = write_image("cut-pad", &img.bytes());
    for (vendor, status) in [("amd", 5), ("intel", 132)] {
        let o = xnurun().args(["--x86-strategy", vendor]).arg(&path).output().unwrap();
        assert_eq!(o.status.code(), Some(status), "{vendor}: {}", stderr(&o));
    }
    // Without that segment, Intel runs it on the real CPU.
    let plain = write_image("no-cut-pad", &Image::new64([&[0xf3, 0x48, 0x0f, 0xae, 0xc0][..], &[0xbf, 5, 0, 0, 0, 0xb8, 0x01, 0x00, 0x00, 0x02, 0x0f, 0x05]].concat()).bytes());
    let o = xnurun().args(["--x86-strategy", "intel"]).arg(&plain).output().unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
}

/// A non-canonical address through the stack segment (RSP, RBP) is #SS,
/// T_STACK_FAULT, EXC_BAD_INSTRUCTION: SIGILL; through any other base it
/// is #GP, SIGSEGV (`user_trap`).
#[test]
fn non_canonical_stack_references_are_stack_faults() {
    // mov rsp, 0x8000_0000_0000_0000; push rax
    let mut ss = vec![0x48, 0xbc];
    ss.extend_from_slice(&0x8000_0000_0000_0000u64.to_le_bytes());
    ss.push(0x50);
    let o = guest64("ss-push", &ss);
    assert_eq!(o.status.code(), Some(132), "{}", stderr(&o));
    // mov rbx, 0x8000_0000_0000_0000; mov rax, [rbx]
    let mut gp = vec![0x48, 0xbb];
    gp.extend_from_slice(&0x8000_0000_0000_0000u64.to_le_bytes());
    gp.extend_from_slice(&[0x48, 0x8b, 0x03]);
    let o = guest64("gp-load", &gp);
    assert_eq!(o.status.code(), Some(139), "{}", stderr(&o));
}

/// i386: exit(status) through `sysenter` with `trap` bytes in place of
/// libc's `pop edx; mov ecx, esp; sysenter`; EBP holds `ebp`.
fn sysenter_exit(trap: &[u8], ebp: u32) -> Asm {
    let mut a = Asm::new(BASE32 + CODE_OFF);
    a.raw(&[0xbd]).raw(&ebp.to_le_bytes()) // mov ebp, ebp
        .raw(&[0x6a, 7, 0x50]) // push 7; push eax (the caller's word)
        .raw(&[0xb8, 1, 0, 0, 0]) // mov eax, 1
        .rel(&[0xe8], "trap")
        .label("trap")
        .raw(&[0x5a, 0x89, 0xe1]) // pop edx; mov ecx, esp
        .raw(trap);
    a
}

/// `sysenter` is answered only where the CPU would run it: with EBP
/// anything at all (XNU reads ECX and EDX), but not under a LOCK (#UD,
/// SIGILL) or past the 15-byte limit (#GP, SIGSEGV), on every CPU, every
/// vendor's choice and single-stepped.
#[test]
fn sysenter_is_answered_only_where_the_cpu_runs_it() {
    let mut long = vec![0x66; 14];
    long.extend_from_slice(&[0x0f, 0x34]);
    let cases: [(&str, Vec<u8>, u32, i32); 4] = [
        ("sysenter-ebp0", vec![0x0f, 0x34], 0, 7),
        ("sysenter-ebp-unmapped", vec![0x0f, 0x34], 0x7fff_f000, 7),
        ("lock-sysenter", vec![0xf0, 0x0f, 0x34], 0, 132),
        ("sysenter-16-bytes", long, 0, 139),
    ];
    for (name, trap, ebp, status) in cases {
        let bytes = Image::new32(sysenter_exit(&trap, ebp).finish()).bytes();
        for opts in [&[][..], &["--max-steps", "1000"]] {
            let o = run(name, &bytes, opts);
            assert_eq!(o.status.code(), Some(status), "{name} {opts:?}: {}", stderr(&o));
        }
        let path = write_image(name, &bytes);
        for vendor in ["intel", "amd"] {
            let o = xnurun().args(["--x86-strategy", vendor]).arg(&path).output().unwrap();
            // AMD's choice on an Intel CPU is the real CPU natively, which
            // cannot answer a `sysenter` that runs with EBP unreadable
            // (docs/limits.md): it says so, in one line.
            if vendor == "amd" && on_intel() && status == 7 {
                assert_eq!((o.status.code(), stderr(&o).as_str()), (Some(125), SYSENTER_CALL_LOST), "{name} {vendor}");
            } else {
                assert_eq!(o.status.code(), Some(status), "{name} {vendor}: {}", stderr(&o));
            }
        }
    }
}

/// `lock int n`: the CPU refuses a LOCK before `int n` (#UD), which
/// `user_trap` (osfmk/i386/trap.c) makes EXC_BAD_INSTRUCTION, SIGILL,
/// whatever n. QEMU runs it as `int n`; the emulated CPU must not. A
/// `mov al, 0xf0` just before a plain `int n` holds the same bytes and is
/// no LOCK.
#[test]
fn lock_int_n_is_an_invalid_opcode_on_both_cpus() {
    let cases: [(&str, bool, &[u8], i32); 6] = [
        ("lock-int4-64", true, &[0xf0, 0xcd, 0x04], 132),
        ("nop-lock-int80-64", true, &[0x90, 0xf0, 0xcd, 0x80], 132),
        ("lock-rex-int4-64", true, &[0xf0, 0x48, 0xcd, 0x04], 132),
        // mov al, 0xf0; int 3: the breakpoint trap, SIGTRAP.
        ("mov-al-f0-int3-64", true, &[0xb0, 0xf0, 0xcd, 0x03], 133),
        ("lock-int80-32", false, &[0xf0, 0xcd, 0x80], 132),
        // mov al, 0xf0, then the exit's own `int 0x80`.
        ("mov-al-f0-32", false, &[0xb0, 0xf0], 0),
    ];
    for (name, is64, code, status) in cases {
        let o = if is64 { guest64(name, code) } else { guest32(name, code) };
        assert_eq!(o.status.code(), Some(status), "{name}: {}", stderr(&o));
    }
    // At the 15-byte limit: LOCK and 12 more prefixes before `int 0x80` is
    // 15 bytes and #UD; one prefix more is 16 bytes and #GP, SIGSEGV.
    for (more, status) in [(12, 132), (13, 139)] {
        let mut code = vec![0xf0];
        code.extend(std::iter::repeat_n(0x3e, more));
        code.extend_from_slice(&[0xcd, 0x80]);
        let o = guest64(&format!("lock-{more}-int80-64"), &code);
        assert_eq!(o.status.code(), Some(status), "LOCK and {more} prefixes: {}", stderr(&o));
    }
}

/// Port names as XNU hands them out (osfmk/ipc: `ipc_right_copyout`,
/// `ipc_right_dealloc`): the thread port asked for twice is one name with
/// two user references, each `mach_reply_port` a new receive right;
/// `mach_port_deallocate` takes one reference at a time, then the name is
/// gone (KERN_INVALID_NAME), refuses a receive right (KERN_INVALID_RIGHT),
/// needs the task's own port as its target (MACH_SEND_INVALID_DEST), and
/// takes MACH_PORT_NULL and MACH_PORT_DEAD as nothing to do (KERN_SUCCESS:
/// `mach_port_deallocate_kernel`, osfmk/ipc/mach_port.c, returns at once
/// for a name that is not MACH_PORT_VALID).
#[test]
fn port_names_are_xnus() {
    let dealloc = |a: &mut Asm, target: &[u8], name: &[u8]| {
        a.raw(target).raw(name).raw(&[0xb8, 0x12, 0, 0, 1, 0x0f, 0x05]); // mov eax, 0x1000012; syscall
    };
    let (task_rdi, thread_rsi, reply_rsi, reply_rdi) = ([0x4c, 0x89, 0xf7], [0x4c, 0x89, 0xe6], [0x4c, 0x89, 0xee], [0x4c, 0x89, 0xef]);
    let mut a = Asm::new(0);
    a.raw(&[0xb8, 0x1b, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc4]) // thread_self_trap; mov r12, rax
        .raw(&[0xb8, 0x1b, 0, 0, 1, 0x0f, 0x05, 0x4c, 0x39, 0xe0]) // again; cmp rax, r12
        .rel(&[0x0f, 0x85], "fail")
        .raw(&[0xb8, 0x1a, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc5]) // mach_reply_port; mov r13, rax
        .raw(&[0xb8, 0x1a, 0, 0, 1, 0x0f, 0x05, 0x4c, 0x39, 0xe8]) // again; cmp rax, r13
        .rel(&[0x0f, 0x84], "fail")
        .raw(&[0x4c, 0x39, 0xe0]) // cmp rax, r12
        .rel(&[0x0f, 0x84], "fail")
        .raw(&[0xb8, 0x1c, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc6]); // task_self_trap; mov r14, rax
    dealloc(&mut a, &[0x4c, 0x89, 0xe7], &thread_rsi); // the thread as the target: a send right, but no task
    a.raw(&[0x3d, 0x03, 0, 0, 0x10]).rel(&[0x0f, 0x85], "fail"); // MACH_SEND_INVALID_DEST
    dealloc(&mut a, &task_rdi, &[0x31, 0xf6]); // MACH_PORT_NULL
    a.raw(&[0x85, 0xc0]).rel(&[0x0f, 0x85], "fail"); // KERN_SUCCESS: nothing to give up
    dealloc(&mut a, &task_rdi, &[0xbe, 0xff, 0xff, 0xff, 0xff]); // MACH_PORT_DEAD
    a.raw(&[0x85, 0xc0]).rel(&[0x0f, 0x85], "fail"); // KERN_SUCCESS
    dealloc(&mut a, &task_rdi, &thread_rsi);
    a.raw(&[0x85, 0xc0]).rel(&[0x0f, 0x85], "fail"); // KERN_SUCCESS: one reference left
    dealloc(&mut a, &task_rdi, &thread_rsi);
    a.raw(&[0x85, 0xc0]).rel(&[0x0f, 0x85], "fail"); // KERN_SUCCESS: the last
    dealloc(&mut a, &task_rdi, &thread_rsi);
    a.raw(&[0x83, 0xf8, 15]).rel(&[0x0f, 0x85], "fail"); // KERN_INVALID_NAME
    dealloc(&mut a, &task_rdi, &reply_rsi);
    a.raw(&[0x83, 0xf8, 17]).rel(&[0x0f, 0x85], "fail"); // KERN_INVALID_RIGHT
    dealloc(&mut a, &reply_rdi, &thread_rsi);
    a.raw(&[0x3d, 0x03, 0, 0, 0x10]).rel(&[0x0f, 0x85], "fail"); // MACH_SEND_INVALID_DEST
    a.raw(&EXIT0_64).label("fail").raw(&[0xbf, 1, 0, 0, 0, 0xb8, 0x01, 0, 0, 0x02, 0x0f, 0x05]);
    let o = run("port-names", &Image::new64(a.finish()).bytes(), &["--trace"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let t = stderr(&o);
    assert!(t.contains("thread_self_trap() = 0x103 (thread port)") && t.contains("mach_reply_port() = 0x203") && t.contains("mach_reply_port() = 0x303"), "{t}");
    for answer in ["= 0 KERN_SUCCESS", "= 15 KERN_INVALID_NAME", "= 17 KERN_INVALID_RIGHT", "= 0x10000003 MACH_SEND_INVALID_DEST"] {
        assert!(t.contains(&format!("_kernelrpc_mach_port_deallocate_trap(0x403, 0x103) {answer}")) || t.contains(&format!(") {answer}")), "{answer}: {t}");
    }
}

/// `thread_set_state` on the thread itself, from inside its `mach_msg2_trap`
/// (`set_thread_state64`, osfmk/i386/pcb.c): the trap returns to the new
/// state (rip, rsp, rbx as sent), with the trap's return in rax. A rip
/// that is not canonical is KERN_INVALID_ARGUMENT, and a count that does
/// not match the words sent is MIG_BAD_ARGUMENTS (the MIG server's size
/// check), both as the reply's RetCode, the state left alone.
#[test]
fn thread_set_state_moves_the_thread() {
    // (name, the rip to set: the `landed` label or this, the count sent, the exit status)
    let cases: [(&str, Option<u64>, u32, i32); 3] =
        [("set-state", None, 42, 0x34), ("set-state-noncanonical", Some(1 << 48), 42, 4), ("set-state-count", None, 41, -304i32 & 0xff)];
    for (name, rip, count, status) in cases {
        let mut a = Asm::new(BASE64 + CODE_OFF);
        a.raw(&[0xb8, 0x1b, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc4]) // thread_self_trap; mov r12, rax
            .raw(&[0xb8, 0x1a, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc5]) // mach_reply_port; mov r13, rax
            .raw(&[0x48, 0x81, 0xec, 0, 2, 0, 0, 0x48, 0x89, 0xe3]) // sub rsp, 512; mov rbx, rsp
            // The request: bits, size (40 + 4 * 42 state words), thread, reply, voucher, id 3604, NDR, flavor 4, count.
            .raw(&[0xc7, 0x43, 0x00, 0x13, 0x15, 0, 0])
            .raw(&[0xc7, 0x43, 0x04, 208, 0, 0, 0])
            .raw(&[0x44, 0x89, 0x63, 0x08, 0x44, 0x89, 0x6b, 0x0c])
            .raw(&[0xc7, 0x43, 0x10, 0, 0, 0, 0])
            .raw(&[0xc7, 0x43, 0x14, 0x14, 0x0e, 0, 0])
            .raw(&[0xc7, 0x43, 0x18, 0, 0, 0, 0, 0xc7, 0x43, 0x1c, 1, 0, 0, 0])
            .raw(&[0xc7, 0x43, 0x20, 4, 0, 0, 0])
            .raw(&[0xc7, 0x43, 0x24])
            .raw(&count.to_le_bytes())
            // The state (from offset 40): rax = 0x77 (the trap's return
            // replaces it), rbx = 0x1234, rsp = the buffer, rflags 0x202, rip.
            .raw(&[0x48, 0xc7, 0x43, 0x28, 0x77, 0, 0, 0])
            .raw(&[0x48, 0xc7, 0x43, 0x30, 0x34, 0x12, 0, 0])
            .raw(&[0x48, 0x89, 0x5b, 0x60])
            .raw(&[0x48, 0xc7, 0x83, 0xb0, 0, 0, 0, 0x02, 0x02, 0, 0]);
        match rip {
            None => a.rel(&[0x48, 0x8d, 0x05], "landed"), // lea rax, [rip + landed]
            Some(v) => a.raw(&[0x48, 0xb8]).raw(&v.to_le_bytes()), // movabs rax, v
        };
        a.raw(&[0x48, 0x89, 0x83, 0xa8, 0, 0, 0]) // mov [rbx + 168], rax
            // mach_msg2_trap(buffer, SEND|RCV|KOBJECT_CALL, bits|size, thread|reply<<32, id<<32, reply<<32, 512, 0)
            .raw(&[0x48, 0x89, 0xdf])
            .raw(&[0x48, 0xbe]).raw(&0x2_0000_0003u64.to_le_bytes())
            .raw(&[0x48, 0xba]).raw(&(208u64 << 32 | 0x1513).to_le_bytes())
            .raw(&[0x4d, 0x89, 0xea, 0x49, 0xc1, 0xe2, 0x20, 0x4d, 0x09, 0xe2])
            .raw(&[0x49, 0xb8]).raw(&(3604u64 << 32).to_le_bytes())
            .raw(&[0x4d, 0x89, 0xe9, 0x49, 0xc1, 0xe1, 0x20])
            // The eighth and seventh arguments above a return-address word
            // (mach_call_munger64 copies them from rsp + 8): a small word
            // there, read as the receive size, would make the reply
            // MACH_RCV_TOO_LARGE.
            .raw(&[0x6a, 0x00, 0x68, 0, 2, 0, 0, 0x6a, 0x08, 0xb8, 0x2f, 0, 0, 1, 0x0f, 0x05])
            // Back here only if the state was not set: exit with the reply's RetCode.
            .raw(&[0x8b, 0x7b, 0x20, 0xb8, 0x01, 0, 0, 0x02, 0x0f, 0x05])
            .label("landed")
            // rax is the trap's return (MACH_MSG_SUCCESS); exit(rbx), 0x34.
            .raw(&[0x48, 0x85, 0xc0])
            .rel(&[0x0f, 0x85], "fail")
            .raw(&[0x89, 0xdf, 0xb8, 0x01, 0, 0, 0x02, 0x0f, 0x05])
            .label("fail")
            .raw(&[0xbf, 99, 0, 0, 0, 0xb8, 0x01, 0, 0, 0x02, 0x0f, 0x05]);
        let o = run(name, &Image::new64(a.finish()).bytes(), &[]);
        assert_eq!(o.status.code(), Some(status), "{name}: {}", stderr(&o));
    }
}

/// BSD call `call` (3 read, 4 write) with (FD, BUF, COUNT): exit(errno) on
/// an error, exit(0) otherwise. BUF is an absolute address; COUNT is
/// zero-extended into RDX.
fn io_call(call: u8, fd: u32, buf: u64, count: u32) -> Image {
    let mut a = Asm::new(BASE64 + CODE_OFF);
    a.raw(&[0x48, 0xbe]).raw(&buf.to_le_bytes()) // mov rsi, buf
        .raw(&[0xbf]).raw(&fd.to_le_bytes()) // mov edi, fd
        .raw(&[0xba]).raw(&count.to_le_bytes()) // mov edx, count
        .raw(&[0xb8, call, 0x00, 0x00, 0x02, 0x0f, 0x05])
        .rel(&[0x0f, 0x82], "err")
        .raw(&EXIT0_64)
        .label("err")
        .raw(&[0x89, 0xc7]) // mov edi, eax
        .raw(&[0xb8, 0x01, 0x00, 0x00, 0x02, 0x0f, 0x05]); // exit(errno)
    Image::new64(a.finish())
}

/// `dofileread` and `dofilewrite` (bsd/kern/sys_generic.c) refuse a count
/// past INT_MAX with EINVAL before they look at the buffer; INT_MAX itself
/// is a count like any other, and here, with the buffer at an unmapped
/// address, the copy faults: EFAULT.
#[test]
fn counts_past_int_max_are_einval() {
    for (call, fd, name) in [(3u8, 0, "read"), (4, 1, "write")] {
        for (count, want) in [(0x8000_0000u32, 22), (0x7fff_ffff, 14)] {
            let img = io_call(call, fd, 0x10, count);
            let (status, _, err) = run_reading(&format!("{name}-{count:x}"), &img, b"abc");
            assert_eq!(status, Some(want), "{name} of {count:#x} bytes: {err}");
        }
    }
}

/// A read into a buffer that cannot take a byte, from a pipe that is still
/// empty: XNU's `pipe_read` (bsd/kern/sys_pipe.c) sleeps until data comes
/// and only then copies out, which faults: EFAULT, not the 0 of end of
/// file. The writer here waits before it writes; the read must wait too.
#[test]
fn a_read_into_a_bad_buffer_waits_for_the_pipe_then_faults() {
    use std::io::Write;
    let path = write_image("read-wait-fault", &reader(0, 0x10, 64).bytes());
    for cpu in ["emulated", "real"] {
        let mut child = xnurun()
            .args(["--cpu", cpu])
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        pipe.write_all(b"abc").unwrap();
        drop(pipe);
        let o = child.wait_with_output().unwrap();
        assert_eq!((o.status.code(), o.stdout.len()), (Some(14), 0), "--cpu {cpu}: {}", stderr(&o));
    }
}

/// More reads as `dofileread` answers them: a count that ends inside
/// xnurun's second 1 MiB chunk takes that many bytes and no more; end of
/// file is 0, not an error; an error from the source before any byte
/// (`read` on a directory: EISDIR, 21 on both kernels) is that error.
#[test]
fn reads_stop_at_the_count_at_end_of_file_and_at_an_error() {
    let three_mb = vec![b'x'; 3 << 20];
    let img = with_data(reader(0, DATA, 0x18_0000), 4 << 20);
    let (status, out, err) = run_reading("read-1.5mib", &img, &three_mb);
    assert_eq!((status, out), (Some(0), 0x18_0000), "{err}");
    let img = with_data(reader(0, DATA, 64), 0x1000);
    let (status, out, err) = run_reading("read-eof", &img, b"");
    assert_eq!((status, out), (Some(0), 0), "{err}");
    let path = write_image("read-dir", &img.bytes());
    for cpu in ["emulated", "real"] {
        let dir = std::fs::File::open(std::env::temp_dir()).unwrap();
        let o = xnurun().args(["--cpu", cpu]).arg(&path).stdin(dir).stderr(Stdio::piped()).output().unwrap();
        assert_eq!((o.status.code(), o.stdout.len()), (Some(21), 0), "--cpu {cpu}: {}", stderr(&o));
    }
}

/// A read from a datagram socket takes one datagram, even with the next
/// one already waiting: `soreceive` (bsd/kern/uipc_socket.c) returns one
/// record a call for an atomic protocol.
#[test]
fn a_read_takes_one_datagram() {
    use std::os::unix::net::UnixDatagram;
    let path = write_image("read-dgram", &with_data(reader(0, DATA, 64), 0x1000).bytes());
    for cpu in ["emulated", "real"] {
        let (ours, theirs) = UnixDatagram::pair().unwrap();
        ours.send(b"abc").unwrap();
        ours.send(b"defg").unwrap();
        let o = xnurun().args(["--cpu", cpu]).arg(&path).stdin(std::os::fd::OwnedFd::from(theirs)).stderr(Stdio::piped()).output().unwrap();
        assert_eq!((o.status.code(), o.stdout.as_slice()), (Some(0), &b"abc"[..]), "--cpu {cpu}: {}", stderr(&o));
    }
}

/// The trace shows what a read brought in, as strace would.
#[test]
fn the_trace_shows_the_bytes_read() {
    let img = with_data(reader(0, DATA, 64), 0x1000);
    let path = write_image("read-trace", &img.bytes());
    let input = write_image("read-trace-in", b"abc");
    for cpu in ["emulated", "real"] {
        let o = xnurun().args(["--cpu", cpu, "--trace"]).arg(&path).stdin(std::fs::File::open(&input).unwrap()).output().unwrap();
        assert!(stderr(&o).lines().any(|l| l.trim() == "read(0, \"abc\", 64) = 3"), "--cpu {cpu}: {}", stderr(&o));
    }
}

/// A descriptor Linux opened with O_PATH names a file but cannot read or
/// write it, and XNU has no such kind: EBADF, before the buffer is looked
/// at (here an unmapped one).
#[test]
fn an_o_path_descriptor_is_ebadf() {
    use std::os::unix::fs::OpenOptionsExt;
    let path = write_image("read-opath", &reader(0, 0x10, 64).bytes());
    for cpu in ["emulated", "real"] {
        let f = std::fs::OpenOptions::new().read(true).custom_flags(nix::libc::O_PATH).open(&path).unwrap();
        let o = xnurun().args(["--cpu", cpu]).arg(&path).stdin(f).stderr(Stdio::piped()).output().unwrap();
        assert_eq!((o.status.code(), o.stdout.len()), (Some(9), 0), "--cpu {cpu}: {}", stderr(&o));
    }
}

/// A write of no bytes still goes to the file: on a stream socket that is
/// not connected, `sosend` (bsd/kern/uipc_socket.c) refuses it with
/// ENOTCONN, XNU's 57 (Linux's 107).
#[test]
fn a_zero_byte_write_to_an_unconnected_socket_is_enotconn() {
    use std::os::fd::FromRawFd;
    let path = write_image("write0-socket", &io_call(4, 1, 0x10, 0).bytes());
    for cpu in ["emulated", "real"] {
        // SAFETY: socket(2) returns a new descriptor that nothing else owns.
        let fd = unsafe { nix::libc::socket(nix::libc::AF_UNIX, nix::libc::SOCK_STREAM, 0) };
        assert!(fd >= 0);
        let sock = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let o = xnurun().args(["--cpu", cpu]).arg(&path).stdout(sock).stderr(Stdio::piped()).output().unwrap();
        assert_eq!(o.status.code(), Some(57), "--cpu {cpu}: {}", stderr(&o));
    }
}

/// A write longer than xnurun's 64 KiB copy chunk writes exactly the count
/// asked for, from a buffer that goes on past it.
#[test]
fn a_long_write_writes_its_count_and_no_more() {
    let img = with_data(io_call(4, 1, DATA, 0x1_0064), 1 << 20);
    let (status, out, err) = run_reading("write-long", &img, b"");
    assert_eq!((status, out), (Some(0), 0x1_0064), "{err}");
}

/// read(0, DATA, 64); if that fails, the same read once more; then
/// exit(the count read, or the second read's errno).
fn read_twice() -> Image {
    let mut a = Asm::new(BASE64 + CODE_OFF);
    for _ in 0..2 {
        a.raw(&[0x48, 0xbe]).raw(&DATA.to_le_bytes()) // mov rsi, DATA
            .raw(&[0x31, 0xff]) // xor edi, edi
            .raw(&[0xba, 64, 0, 0, 0]) // mov edx, 64
            .raw(&[0xb8, 0x03, 0x00, 0x00, 0x02, 0x0f, 0x05]) // read
            .rel(&[0x0f, 0x83], "done"); // jnc done
    }
    a.label("done")
        .raw(&[0x89, 0xc7]) // mov edi, eax
        .raw(&[0xb8, 0x01, 0x00, 0x00, 0x02, 0x0f, 0x05]); // exit
    with_data(Image::new64(a.finish()), 0x1000)
}

/// `--fault` on reads: `short:N` takes at most N bytes, `eintr-once` and
/// `restart` touch only the first read (the guest's second read, or the
/// restarted one, reads), on both CPUs; the trace shows each read.
#[test]
fn injected_read_faults_fire_as_documented() {
    let path = write_image("read-twice", &read_twice().bytes());
    let input = write_image("read-twice-in", b"hello\n");
    let cases = [("short:3", 3, vec!["= 3"]), ("eintr-once", 6, vec!["EINTR", "= 6"]), ("restart", 6, vec!["= ? ERESTART (restarted)", "= 6"])];
    for (fault, want, reads) in cases {
        for cpu in ["emulated", "real"] {
            let o = xnurun()
                .args(["--cpu", cpu, "--trace", "--fault", fault])
                .arg(&path)
                .stdin(std::fs::File::open(&input).unwrap())
                .output()
                .unwrap();
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(want), "--fault {fault} --cpu {cpu}: {err}");
            let seen: Vec<&str> = err.lines().filter(|l| l.starts_with("read(")).collect();
            assert_eq!(seen.len(), reads.len(), "--fault {fault} --cpu {cpu}: {err}");
            for (line, end) in seen.iter().zip(&reads) {
                assert!(line.contains(end), "--fault {fault} --cpu {cpu}: {line:?} lacks {end:?}");
            }
        }
    }
}

/// Arithmetic faults: #DE, x87's #MF and SSE's #XM are T_DIVIDE_ERROR,
/// T_FLOATING_POINT_ERROR and T_SSE_FLOAT_ERROR in `user_trap`
/// (osfmk/i386/trap.c), each EXC_ARITHMETIC, which `ux_exception`
/// (bsd/uxkern/ux_exception.c) makes SIGFPE.
#[test]
fn arithmetic_faults_are_sigfpe() {
    let cases: [(&str, &[u8], &str); 3] = [
        // xor ecx, ecx; div ecx
        ("div0", &[0x31, 0xc9, 0xf7, 0xf1], "divide error"),
        // fninit; push 0x37b (ZM clear); fldcw [rsp]; fld1; fldz; fdivp; fwait
        ("x87", &[0xdb, 0xe3, 0x68, 0x7b, 0x03, 0, 0, 0xd9, 0x2c, 0x24, 0xd9, 0xe8, 0xd9, 0xee, 0xde, 0xf9, 0x9b], "floating-point exception"),
        // push 0x1d80 (ZM clear); ldmxcsr [rsp]; xorps xmm1, xmm1;
        // mov eax, 1.0f; movd xmm0, eax; divss xmm0, xmm1
        ("sse", &[0x68, 0x80, 0x1d, 0, 0, 0x0f, 0xae, 0x14, 0x24, 0x0f, 0x57, 0xc9, 0xb8, 0, 0, 0x80, 0x3f, 0x66, 0x0f, 0x6e, 0xc0, 0xf3, 0x0f, 0x5e, 0xc1], "floating-point exception"),
    ];
    for (name, code, why) in cases {
        let mut c = code.to_vec();
        c.extend_from_slice(&EXIT0_64);
        let img = Image::new64(c).bytes();
        // QEMU 5 never raises #XM (docs/limits.md): the real CPU only.
        let o = if name == "sse" { run_on("real", name, &img, &[]) } else { run(name, &img, &[]) };
        assert_eq!(o.status.code(), Some(136), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(why), "{name}: {}", stderr(&o));
    }
}

/// The canonical boundary, from the kernel half's side: RSP at
/// 0xffff_8000_0000_0000 is canonical, but a push stores below it, at a
/// non-canonical address: #SS, SIGILL. Eight bytes higher, the push
/// stores at a canonical kernel address: a page fault, SIGSEGV.
#[test]
fn a_push_across_the_canonical_boundary_is_a_stack_fault() {
    for (name, rsp, status) in [("push-below-half", 0xffff_8000_0000_0000u64, 132), ("push-kernel-half", 0xffff_8000_0000_0010, 139)] {
        let mut code = vec![0x48, 0xbc]; // mov rsp, imm64
        code.extend_from_slice(&rsp.to_le_bytes());
        code.push(0x50); // push rax
        let o = guest64(name, &code);
        assert_eq!(o.status.code(), Some(status), "{name}: {}", stderr(&o));
    }
}

/// The 15-byte limit on an instruction, at the limit: `syscall` after 13
/// prefixes is 15 bytes and a call (exit(0)); after 14 it is 16 bytes and
/// #GP, SIGSEGV.
#[test]
fn a_fifteen_byte_syscall_is_a_call_and_a_sixteen_byte_one_is_not() {
    for (prefixes, status) in [(13, 0), (14, 139)] {
        let mut code = vec![0x31, 0xff, 0xb8, 0x01, 0x00, 0x00, 0x02]; // xor edi, edi; mov eax, 0x2000001
        code.extend(std::iter::repeat_n(0x3e, prefixes));
        code.extend_from_slice(&[0x0f, 0x05]);
        let o = guest64(&format!("syscall-{prefixes}-prefixes"), &code);
        assert_eq!(o.status.code(), Some(status), "{prefixes} prefixes: {}", stderr(&o));
    }
}

/// Port I/O at CPL 3 with IOPL 0 is #GP on the instruction itself, also
/// when other instructions come before it in the same run of code (the
/// emulated CPU learns of it at the start of that run and finds it), and
/// before `ins` touches memory.
#[test]
fn port_io_after_other_instructions_is_reported_on_itself() {
    let cases: [(&str, &[u8], u64); 4] = [
        ("in-after-nops-32", &[0x90, 0x90, 0xec], 2), // nop; nop; in al, dx
        ("out-after-add-32", &[0xb8, 1, 0, 0, 0, 0x83, 0xc0, 0x02, 0xee], 8), // mov eax, 1; add eax, 2; out dx, al
        ("insb-after-jmp-32", &[0xeb, 0x00, 0x90, 0x6c], 3), // jmp $+2; nop; insb
        ("in16-after-nop-32", &[0x90, 0x66, 0xed], 1), // nop; in ax, dx
    ];
    for (name, code, at) in cases {
        let o = guest32(name, code);
        assert_eq!(o.status.code(), Some(139), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(&format!("at eip 0x{:x}", BASE32 + CODE_OFF + at)), "{name}: {}", stderr(&o));
    }
    // xor edi, edi; insb: #GP before the store to page zero.
    let o = guest64("insb-64", &[0x31, 0xff, 0x6c]);
    assert_eq!(o.status.code(), Some(139), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("at rip 0x{:x} (general protection)", BASE64 + CODE_OFF + 2)), "{}", stderr(&o));
}

/// i386: `sysenter` with EAX = 0 is BSD's indirect call, not Mach trap 0:
/// only a negative EAX goes to `hndl_mach_scall` (`hndl_sysenter`,
/// osfmk/x86_64/idt64.s, xnu-4903); syscall(2) takes the call number
/// from the first argument word: here exit(42).
#[test]
fn sysenter_with_eax_zero_is_the_indirect_call() {
    let code = [
        0x6a, 42, 0x6a, 0x01, 0x50, // push 42; push 1 (SYS_exit); push eax
        0x31, 0xc0, // xor eax, eax
        0xe8, 0, 0, 0, 0, // call next
        0x5a, 0x89, 0xe1, 0x0f, 0x34, // pop edx; mov ecx, esp; sysenter
    ];
    let o = run("sysenter-indirect", &Image::new32(code.to_vec()).bytes(), &["--trace"]);
    assert_eq!(o.status.code(), Some(42), "{}", stderr(&o));
}

/// A Mach trap's arguments past the sixth come from the user stack above
/// the return address (`mach_call_munger64`, osfmk/i386/bsd_i386.c):
/// `mach_msg2_trap`'s timeout is the eighth. A receive with
/// MACH_RCV_TIMEOUT and a timeout of 0 on an empty port is
/// MACH_RCV_TIMED_OUT at once (the word at rsp, 100 s, is not it).
#[test]
fn mach_msg2s_timeout_is_the_eighth_argument() {
    let mut a = Asm::new(BASE64 + CODE_OFF);
    a.raw(&[0xb8, 0x1a, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc5]) // mach_reply_port; mov r13, rax
        .raw(&MESSAGE_ROOM)
        .raw(&[0xbe, 0x02, 0x01, 0, 0]) // mov esi, MACH_RCV_MSG | MACH_RCV_TIMEOUT
        .raw(&[0x31, 0xd2, 0x45, 0x31, 0xd2, 0x45, 0x31, 0xc0]) // edx, r10d, r8d = 0
        .raw(&[0x4d, 0x89, 0xe9, 0x49, 0xc1, 0xe1, 0x20]) // r9 = r13 << 32 (rcv_name)
        .raw(&[0x6a, 0x00, 0x68, 0, 2, 0, 0, 0x68, 0xa0, 0x86, 0x01, 0x00]) // push 0 (timeout); push 512 (rcv_size); push 100000
        .raw(&[0xb8, 0x2f, 0, 0, 1, 0x0f, 0x05]); // mach_msg2_trap
    assert_eax("msg2-timeout", &a.finish(), 0x1000_4003, &[]); // MACH_RCV_TIMED_OUT
}

/// i386 Mach traps take every argument from the user stack pointer + 4
/// (`mach_call_munger`, osfmk/i386/bsd_i386.c, xnu-4903), which is ECX
/// after `sysenter` and ESP after `int 0x81`: here
/// `_kernelrpc_mach_port_deallocate_trap(task_self, thread_self)`, with
/// the other register pointing elsewhere. KERN_SUCCESS exits 42.
#[test]
fn i386_mach_trap_arguments_come_from_the_gates_stack_pointer() {
    for sysenter in [false, true] {
        let mut a = Asm::new(BASE32 + CODE_OFF);
        a.raw(&[0xb8, 0xe4, 0xff, 0xff, 0xff, 0xcd, 0x81, 0x89, 0xc6]) // task_self_trap (-28) by int 0x81; mov esi, eax
            .raw(&[0xb8, 0xe5, 0xff, 0xff, 0xff, 0xcd, 0x81]) // thread_self_trap (-27)
            .raw(&[0x50, 0x56, 0x68, 0x5a, 0x5a, 0, 0]) // push eax (thread); push esi (task); push 0x5a5a (return address)
            .raw(&[0xb8, 0xee, 0xff, 0xff, 0xff]); // mov eax, -18: _kernelrpc_mach_port_deallocate_trap
        if sysenter {
            a.raw(&[0x89, 0xe1, 0x83, 0xec, 0x40]) // mov ecx, esp; sub esp, 64
                .abs(&[0xba], "back") // mov edx, back
                .raw(&[0x0f, 0x34]);
        } else {
            a.raw(&[0x31, 0xc9, 0xcd, 0x81]); // xor ecx, ecx; int 0x81
        }
        a.label("back")
            .raw(&[0x85, 0xc0, 0x75, 0x0b]) // test eax, eax; jnz fail
            .raw(&[0x6a, 42, 0x6a, 0, 0xb8, 1, 0, 0, 0, 0xcd, 0x80]) // exit(42)
            .raw(&[0x6a, 1, 0x6a, 0, 0xb8, 1, 0, 0, 0, 0xcd, 0x80]); // fail: exit(1)
        let name = if sysenter { "dealloc-sysenter" } else { "dealloc-int81" };
        let o = run(name, &Image::new32(a.finish()).bytes(), &["--trace"]);
        assert_eq!(o.status.code(), Some(42), "{name}: {}", stderr(&o));
    }
}

/// The thread state's rflags as XNU takes them (`set_thread_state64`,
/// osfmk/i386/pcb.c): IOPL, NT and RF cleared (EFL_USER_CLEAR,
/// osfmk/i386/eflags.h), IF set, the arithmetic flags, DF, AC and ID kept.
/// The guest exits 0 when `pushfq` shows exactly that.
#[test]
fn the_thread_states_rflags_are_cleaned_as_xnu_cleans_them() {
    let code = [
        &[
            0x9c, 0x58, // pushfq; pop rax
            0x25, 0x01, 0x76, 0x05, 0x00, // and eax, 0x57601
        ][..],
        &exit_unless_eax(0x40601), // of IOPL, NT, RF, AC, IF, DF and CF: AC, IF, DF and CF
    ]
    .concat();
    let bytes = Image::new64(code).bytes();
    let at = thread_state_offset(&bytes) + 8 + 17 * 8;
    let mut b = bytes.clone();
    // IOPL 3, NT, RF, AC, IF, DF, CF.
    b[at..at + 8].copy_from_slice(&(0x3000u64 | 0x4000 | 0x10000 | 0x40000 | 0x200 | 0x400 | 0x1).to_le_bytes());
    let o = run("rflags-thread-state", &b, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // ID, which no tracer can set on Linux (the real CPU's set-up program
    // sets it with popf): pushfq; pop rax; shr eax, 21; and eax, 1; exit(eax).
    let code = [0x9c, 0x58, 0xc1, 0xe8, 0x15, 0x83, 0xe0, 0x01, 0x89, 0xc7, 0xb8, 0x01, 0, 0, 2, 0x0f, 0x05];
    let mut b = Image::new64(code.to_vec()).bytes();
    b[at..at + 8].copy_from_slice(&0x20_0000u64.to_le_bytes());
    let o = run("rflags-id", &b, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

/// Syscall class 4 is XNU's diagnostics class (`diagCall64`,
/// osfmk/i386/Diagnostics.c, reached from `hndl_diag_scall64`): a real
/// entry, which xnurun does not implement (123), not EXC_SYSCALL's SIGSYS.
#[test]
fn syscall_class_4_is_a_diagnostics_call() {
    // mov eax, 0x4000000; syscall
    let o = guest64("diag", &[0xb8, 0, 0, 0, 4, 0x0f, 0x05]);
    assert_eq!(o.status.code(), Some(123), "{}", stderr(&o));
    assert!(stderr(&o).contains("diagnostics call (syscall class 4, number 0"), "{}", stderr(&o));
}

/// `mach_msg_trap` (trap 31, still in xnu-11417's table beside
/// `mach_msg2_trap`): msg, option, send_size, rcv_size, rcv_name, timeout
/// in registers, each a 32-bit type in `mach_msg_overwrite_trap_args`
/// (the upper halves are padding). A receive with MACH_RCV_TIMEOUT and a
/// timeout of 0 on an empty port is MACH_RCV_TIMED_OUT.
#[test]
fn mach_msg_trap_reads_its_six_register_arguments() {
    let mut a = Asm::new(BASE64 + CODE_OFF);
    a.raw(&[0xb8, 0x1a, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc0]) // mach_reply_port; mov r8, rax (rcv_name)
        .raw(&MESSAGE_ROOM)
        .raw(&[0x48, 0xbe, 0x02, 0x01, 0, 0, 0xad, 0xde, 0, 0]) // mov rsi, 0xdead_0000_0102: MACH_RCV_MSG | MACH_RCV_TIMEOUT
        .raw(&[0x31, 0xd2]) // xor edx, edx (send_size)
        .raw(&[0x49, 0xba, 0, 2, 0, 0, 0xff, 0xff, 0xff, 0xff]) // mov r10, 0xffff_ffff_0000_0200: rcv_size 512
        .raw(&[0x45, 0x31, 0xc9]) // xor r9d, r9d (timeout)
        .raw(&[0x6a, 0x00, 0x6a, 0x00]) // push 0 (notify); push 0 (return address)
        .raw(&[0xb8, 0x1f, 0, 0, 1, 0x0f, 0x05]); // mach_msg_trap
    assert_eax("msg-trap-timeout", &a.finish(), 0x1000_4003, &[]); // MACH_RCV_TIMED_OUT
}

/// A send's size as `mach_msg_copyin_user_header` (osfmk/ipc/mach_msg.c)
/// checks it: less than a header or not a multiple of 4 is
/// MACH_SEND_MSG_TOO_SMALL, more than `IPC_KMSG_MAX_BODY_SPACE` (48 MiB less
/// the 72-byte trailer: 50,331,576) MACH_SEND_TOO_LARGE; at that limit the
/// body is copied in, and a buffer that ends first is MACH_SEND_INVALID_DATA.
#[test]
fn mach_msg2_send_sizes_are_checked_as_xnu_checks_them() {
    for (size, expected) in [(20u32, 0x1000_0008u32), (26, 0x1000_0008), (50_331_580, 0x1000_000e), (50_331_576, 0x1000_0002)] {
        let mut a = Asm::new(BASE64 + CODE_OFF);
        a.raw(&[0xb8, 0x1b, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc2]) // thread_self_trap; mov r10, rax (remote)
            .raw(&MESSAGE_ROOM)
            .raw(&[0x48, 0xbe]).raw(&0x2_0000_0001u64.to_le_bytes()) // SEND | KOBJECT_CALL
            .raw(&[0x48, 0xba]).raw(&(u64::from(size) << 32 | 19).to_le_bytes()) // COPY_SEND | size << 32
            .raw(&[0x49, 0xb8]).raw(&(3613u64 << 32).to_le_bytes()) // msgh_id
            .raw(&[0x45, 0x31, 0xc9]) // xor r9d, r9d
            .raw(&[0x6a, 0x00, 0x6a, 0x00, 0x6a, 0x00]) // timeout, rcv_size, return address
            .raw(&[0xb8, 0x2f, 0, 0, 1, 0x0f, 0x05]); // mach_msg2_trap
        assert_eax(&format!("send-size-{size}"), &a.finish(), expected, &["--trace"]);
    }
}

/// The legacy-send policy of current XNU (`ipc_policy_allow_legacy_send_trap`,
/// osfmk/ipc/ipc_policy.c): a 64-bit task that sends through the old
/// `mach_msg_trap` gets a fatal guard exception, SIGKILL; the i386 images'
/// xnu-4903 has no such policy (the i386 regs example sends that way).
#[test]
fn a_64_bit_legacy_send_is_a_fatal_guard_exception() {
    let code = [
        0xb8, 0x1b, 0, 0, 1, 0x0f, 0x05, // thread_self_trap
        0x48, 0x83, 0xec, 0x40, 0x48, 0x89, 0xe7, // sub rsp, 64; mov rdi, rsp
        0xc7, 0x07, 19, 0, 0, 0, // mov dword [rdi], COPY_SEND (bits)
        0xc7, 0x47, 0x04, 24, 0, 0, 0, // size 24
        0x89, 0x47, 0x08, // remote: the thread
        0xc7, 0x47, 0x0c, 0, 0, 0, 0, 0xc7, 0x47, 0x10, 0, 0, 0, 0, // local, voucher
        0xc7, 0x47, 0x14, 0x1d, 0x0e, 0, 0, // id 3613
        0xbe, 0x01, 0, 0, 0, // mov esi, MACH_SEND_MSG
        0x48, 0xba, 24, 0, 0, 0, 0xad, 0xde, 0, 0, // mov rdx, 0xdead_0000_0018: the size is the low half
        0x45, 0x31, 0xd2, 0x45, 0x31, 0xc0, 0x45, 0x31, 0xc9, // r10d, r8d, r9d = 0
        0x6a, 0x00, 0x6a, 0x00, // notify, return address
        0xb8, 0x1f, 0, 0, 1, 0x0f, 0x05, // mach_msg_trap
    ];
    let o = guest64("legacy-send-64", &code);
    assert_eq!(o.status.code(), Some(137), "{}", stderr(&o));
    assert!(stderr(&o).contains("ipc_policy_allow_legacy_send_trap"), "{}", stderr(&o));
}

/// `ipc_kmsg_copyin_header` (osfmk/ipc/ipc_kmsg.c) checks the dispositions
/// before the names: a destination that is no send disposition is
/// MACH_SEND_INVALID_HEADER whatever the names, as is a reply disposition
/// that is none. Then the destination's right: MAKE_SEND needs the
/// receive right (the task's own reply port), COPY_SEND a send right (the
/// thread port has one, the reply port none, 0x7777 is no name), else
/// MACH_SEND_INVALID_DEST. A send to the task's own port is queued:
/// MACH_MSG_SUCCESS.
#[test]
fn mach_msg2_header_dispositions_come_before_names() {
    const SEND_KOBJECT: u64 = 0x2_0000_0001;
    const SEND_MQ: u64 = 0x4_0000_0001;
    const SEND_ANY: u64 = 0x8_0000_0001;
    let cases: [(u32, &str, u64, u32); 14] = [
        (0, "thread", SEND_KOBJECT, 0x1000_0010),
        (16, "thread", SEND_KOBJECT, 0x1000_0010), // MOVE_RECEIVE: no send
        (19 | 16 << 8, "thread", SEND_KOBJECT, 0x1000_0010),
        (19, "nothing", SEND_KOBJECT, 0x1000_0003),
        (20, "thread", SEND_KOBJECT, 0x1000_0003), // MAKE_SEND without the receive right
        (19, "reply", SEND_MQ, 0x1000_0003), // COPY_SEND without a send right
        (20, "reply", SEND_MQ, 0),
        (21, "reply", SEND_MQ, 0), // MAKE_SEND_ONCE
        // ipc_validate_kmsg_dest_from_user: a kernel object needs
        // KOBJECT_CALL with a receive, a port MQ_CALL; ANY passes on macOS.
        (19, "thread", SEND_KOBJECT, 0x1000_0013), // no receive
        (19, "thread", SEND_MQ, 0x1000_0013),
        (19, "thread", SEND_MQ | 2, 0x1000_0013), // with a receive, still not KOBJECT_CALL
        (20, "reply", SEND_KOBJECT, 0x1000_0013),
        (20, "reply", SEND_ANY, 0),
        // A reply right made from a name that holds no receive right.
        (20 | 21 << 8, "reply, local 0x7777", SEND_MQ, 0x1000_0009),
    ];
    for (bits, remote, options, expected) in cases {
        let mut a = Asm::new(BASE64 + CODE_OFF);
        match remote {
            "thread" => a.raw(&[0xb8, 0x1b, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc2]), // thread_self_trap; mov r10, rax
            "reply" => a.raw(&[0xb8, 0x1a, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc2]), // mach_reply_port; mov r10, rax
            // mach_reply_port; mov r10, rax; mov eax, 0x7777; shl rax, 32; or r10, rax
            "reply, local 0x7777" => a.raw(&[0xb8, 0x1a, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc2, 0xb8, 0x77, 0x77, 0, 0, 0x48, 0xc1, 0xe0, 0x20, 0x49, 0x09, 0xc2]),
            _ => a.raw(&[0x41, 0xba, 0x77, 0x77, 0, 0]), // mov r10d, 0x7777: no name
        };
        a.raw(&MESSAGE_ROOM)
            .raw(&[0x48, 0xbe]).raw(&options.to_le_bytes())
            .raw(&[0x48, 0xba]).raw(&(24u64 << 32 | u64::from(bits)).to_le_bytes())
            .raw(&[0x49, 0xb8]).raw(&(3613u64 << 32).to_le_bytes())
            .raw(&[0x45, 0x31, 0xc9, 0x6a, 0x00, 0x6a, 0x00, 0x6a, 0x00]) // r9d = 0; timeout, rcv_size, return address
            .raw(&[0xb8, 0x2f, 0, 0, 1, 0x0f, 0x05]); // mach_msg2_trap
        assert_eax(&format!("header-{bits:x}-{remote}"), &a.finish(), expected, &["--trace"]);
    }
}

/// MACH_MSG_TYPE_MOVE_SEND moves the sender's right into the message
/// (`ipc_right_copyin`, osfmk/ipc/ipc_right.c): a thread port named once
/// and sent that way in a `thread_get_state` request is gone from the
/// task's names after it, so giving it up again is KERN_INVALID_NAME.
#[test]
fn move_send_takes_the_senders_reference() {
    let mut a = Asm::new(BASE64 + CODE_OFF);
    a.raw(&[0xb8, 0x1b, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc4]) // thread_self_trap; mov r12, rax
        .raw(&[0xb8, 0x1a, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc5]) // mach_reply_port; mov r13, rax
        .raw(&[0xb8, 0x1c, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc6]) // task_self_trap; mov r14, rax
        .raw(&MESSAGE_ROOM)
        // The body after the header's room: NDR record, flavor 4, count 42.
        .raw(&[0xc7, 0x47, 0x18, 0, 0, 0, 0, 0xc7, 0x47, 0x1c, 1, 0, 0, 0])
        .raw(&[0xc7, 0x47, 0x20, 4, 0, 0, 0, 0xc7, 0x47, 0x24, 42, 0, 0, 0])
        .raw(&[0x48, 0xbe]).raw(&0x2_0000_0003u64.to_le_bytes()) // SEND | RCV | KOBJECT_CALL
        .raw(&[0x48, 0xba]).raw(&(40u64 << 32 | 0x1511).to_le_bytes()) // MOVE_SEND | MAKE_SEND_ONCE << 8, size 40
        .raw(&[0x4d, 0x89, 0xea, 0x49, 0xc1, 0xe2, 0x20, 0x4d, 0x09, 0xe2]) // r10 = reply << 32 | thread
        .raw(&[0x49, 0xb8]).raw(&(3603u64 << 32).to_le_bytes()) // thread_get_state
        .raw(&[0x4d, 0x89, 0xe9, 0x49, 0xc1, 0xe1, 0x20]) // r9 = reply << 32
        .raw(&[0x6a, 0x00, 0x68, 0, 2, 0, 0, 0x6a, 0x00]) // timeout 0, rcv_size 512, return address
        // cmp eax, eax: flags the trap saves that every CPU agrees on
        // (`shl` leaves AF undefined, and AMD and unicorn differ).
        .raw(&[0x39, 0xc0, 0xb8, 0x2f, 0, 0, 1, 0x0f, 0x05]) // mach_msg2_trap
        .raw(&[0x85, 0xc0]).rel(&[0x0f, 0x85], "fail") // MACH_MSG_SUCCESS
        .raw(&[0x4c, 0x89, 0xf7, 0x4c, 0x89, 0xe6, 0xb8, 0x12, 0, 0, 1, 0x0f, 0x05]) // mach_port_deallocate(task, thread)
        .raw(&[0x83, 0xf8, 15]).rel(&[0x0f, 0x85], "fail") // KERN_INVALID_NAME
        .raw(&EXIT0_64)
        .label("fail")
        .raw(&[0xbf, 1, 0, 0, 0, 0xb8, 0x01, 0, 0, 2, 0x0f, 0x05]); // exit(1)
    let o = run("move-send", &Image::new64(a.finish()).bytes(), &["--trace"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The trace's line for it: the destination, what the kernel did, the
    // receive, and the reply's header (MOVE_SEND_ONCE, 18, as the local
    // disposition of a kernel reply: bits 0x1200).
    let t = stderr(&o);
    assert!(t.contains(": 0x103 thread port: thread_get_state(x86_THREAD_STATE64, 42) = KERN_SUCCESS, 42 words; received msgh_id 3703 (208 bytes) = 0x0 MACH_MSG_SUCCESS"), "{t}");
    assert!(t.contains("received 216 bytes: 00001200 000000d0"), "{t}");
}

/// A receive into less room than the reply and its trailer, without
/// MACH_RCV_LARGE, is MACH_RCV_TOO_LARGE
/// (`ipc_mqueue_select_on_thread_locked`, osfmk/ipc/ipc_mqueue.c). mach_msg2_trap's seventh argument is the
/// receive size in its low half and the priority in its high half.
#[test]
fn a_receive_without_room_for_the_reply_is_too_large() {
    let mut a = Asm::new(BASE64 + CODE_OFF);
    a.raw(&[0xb8, 0x1b, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc4]) // thread_self_trap; mov r12, rax
        .raw(&[0xb8, 0x1a, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc5]) // mach_reply_port; mov r13, rax
        .raw(&MESSAGE_ROOM)
        .raw(&[0xc7, 0x47, 0x18, 0, 0, 0, 0, 0xc7, 0x47, 0x1c, 1, 0, 0, 0]) // NDR record
        .raw(&[0xc7, 0x47, 0x20, 4, 0, 0, 0, 0xc7, 0x47, 0x24, 42, 0, 0, 0]) // flavor 4, count 42
        .raw(&[0x48, 0xbe]).raw(&0x2_0000_0003u64.to_le_bytes()) // SEND | RCV | KOBJECT_CALL
        .raw(&[0x48, 0xba]).raw(&(40u64 << 32 | 0x1513).to_le_bytes()) // COPY_SEND | MAKE_SEND_ONCE << 8, size 40
        .raw(&[0x4d, 0x89, 0xea, 0x49, 0xc1, 0xe2, 0x20, 0x4d, 0x09, 0xe2]) // r10 = reply << 32 | thread
        .raw(&[0x49, 0xb8]).raw(&(3603u64 << 32).to_le_bytes()) // thread_get_state
        .raw(&[0x4d, 0x89, 0xe9, 0x49, 0xc1, 0xe1, 0x20]) // r9 = reply << 32
        // timeout 0; priority 1 | rcv_size 100 (the reply is 208 bytes); return address
        .raw(&[0x6a, 0x00, 0x48, 0xb8]).raw(&(1u64 << 32 | 100).to_le_bytes()).raw(&[0x50, 0x6a, 0x00])
        .raw(&[0x39, 0xc0, 0xb8, 0x2f, 0, 0, 1, 0x0f, 0x05]); // cmp eax, eax; mach_msg2_trap
    assert_eax("rcv-too-large", &a.finish(), 0x1000_4004, &["--trace"]); // MACH_RCV_TOO_LARGE
}

/// Messages a task sends to its own port (MACH64_SEND_MQ_CALL): the
/// receiver's header carries the right the sender made as the local
/// disposition (MAKE_SEND arrives as MOVE_SEND, 17; MAKE_SEND_ONCE as
/// MOVE_SEND_ONCE, 18: `ipc_kmsg_copyout_header`), the size without the
/// trailer, no remote port, the port itself as the local one, the id, the
/// body, then the 8-byte trailer (format 0, size 8).
/// The header, body and trailer must fit the receive size or the receive
/// is MACH_RCV_TOO_LARGE and the message gone, or still queued with
/// MACH_RCV_LARGE; a receive on an
/// empty port with no MACH_RCV_TIMEOUT waits forever on XNU, which
/// xnurun reports as unimplemented (123) rather than hang.
#[test]
fn messages_to_the_tasks_own_port_arrive_as_xnu_copies_them_out() {
    let send = |a: &mut Asm, bits: u64, id: u64| {
        a.raw(&[0x48, 0x89, 0xdf]) // mov rdi, rbx
            .raw(&[0x48, 0xbe]).raw(&0x4_0000_0001u64.to_le_bytes()) // SEND | MQ_CALL
            .raw(&[0x48, 0xba]).raw(&(28u64 << 32 | bits).to_le_bytes())
            .raw(&[0x4d, 0x89, 0xea]) // mov r10, r13: to the reply port
            .raw(&[0x49, 0xb8]).raw(&(id << 32).to_le_bytes())
            .raw(&[0x45, 0x31, 0xc9, 0x6a, 0x00, 0x6a, 0x00, 0x6a, 0x00]) // r9d = 0; timeout, rcv_size, return address
            .raw(&[0x39, 0xc0, 0xb8, 0x2f, 0, 0, 1, 0x0f, 0x05, 0x48, 0x83, 0xc4, 0x18]) // mach_msg2_trap; add rsp, 24
            .raw(&[0x85, 0xc0]).rel(&[0x0f, 0x85], "fail");
    };
    let receive = |a: &mut Asm, size: u32, options: u32| {
        a.raw(&[0x48, 0x89, 0xdf, 0xbe]).raw(&options.to_le_bytes()) // mov rdi, rbx; mov esi, options
            .raw(&[0x31, 0xd2, 0x45, 0x31, 0xd2, 0x45, 0x31, 0xc0]) // edx, r10d, r8d = 0
            .raw(&[0x4d, 0x89, 0xe9, 0x49, 0xc1, 0xe1, 0x20]) // r9 = reply << 32
            .raw(&[0x6a, 0x00, 0x68]).raw(&size.to_le_bytes()).raw(&[0x6a, 0x00]) // timeout 0, rcv_size, return address
            .raw(&[0x39, 0xc0, 0xb8, 0x2f, 0, 0, 1, 0x0f, 0x05, 0x48, 0x83, 0xc4, 0x18]); // mach_msg2_trap; add rsp, 24
    };
    let expect_eax = |a: &mut Asm, v: u32| {
        a.raw(&[0x3d]).raw(&v.to_le_bytes()).rel(&[0x0f, 0x85], "fail");
    };
    let expect_word = |a: &mut Asm, off: u8, v: u32| {
        a.raw(&[0x81, 0x7b, off]).raw(&v.to_le_bytes()).rel(&[0x0f, 0x85], "fail"); // cmp dword [rbx+off], v
    };
    let mut a = Asm::new(BASE64 + CODE_OFF);
    a.raw(&[0xb8, 0x1a, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc5]) // mach_reply_port; mov r13, rax
        .raw(&[0x48, 0x81, 0xec, 0, 2, 0, 0, 0x48, 0x89, 0xe3]) // sub rsp, 512; mov rbx, rsp
        .raw(&[0xc7, 0x43, 0x18, 0x78, 0x56, 0x34, 0x12]); // the body: 0x12345678
    send(&mut a, 20, 1000); // MAKE_SEND
    receive(&mut a, 36, 2);
    expect_eax(&mut a, 0);
    // bits, size, remote (none), local (the port, 0x103), id, body, trailer.
    for (off, v) in [(0, 0x1100), (4, 28), (8, 0), (12, 0x103), (20, 1000), (24, 0x1234_5678), (28, 0), (32, 8)] {
        expect_word(&mut a, off, v);
    }
    a.raw(&[0xc7, 0x43, 0x18, 0x78, 0x56, 0x34, 0x12]);
    send(&mut a, 21, 1001); // MAKE_SEND_ONCE
    receive(&mut a, 35, 6); // with MACH_RCV_LARGE:
    expect_eax(&mut a, 0x1000_4004); // MACH_RCV_TOO_LARGE, and the message stays
    receive(&mut a, 36, 2);
    expect_eax(&mut a, 0);
    expect_word(&mut a, 0, 0x1200);
    expect_word(&mut a, 20, 1001);
    a.raw(&[0xc7, 0x43, 0x18, 0x78, 0x56, 0x34, 0x12]);
    send(&mut a, 21, 1002);
    receive(&mut a, 35, 2);
    expect_eax(&mut a, 0x1000_4004); // MACH_RCV_TOO_LARGE, and the message is gone:
    receive(&mut a, 36, 0x102);
    expect_eax(&mut a, 0x1000_4003); // MACH_RCV_TIMED_OUT
    a.raw(&[0xc7, 0x43, 0x18, 0x78, 0x56, 0x34, 0x12]);
    send(&mut a, 20, 1003);
    // mach_msg_trap's receive size is the low half of r10: 35 is too small
    // for message 1003 (36 with its trailer) whatever the upper half holds.
    a.raw(&[0x48, 0x89, 0xdf, 0xbe, 0x02, 0, 0, 0, 0x31, 0xd2]) // mov rdi, rbx; mov esi, MACH_RCV_MSG; xor edx, edx
        .raw(&[0x49, 0xba, 35, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]) // mov r10, 0xffff_ffff_0000_0023
        .raw(&[0x4d, 0x89, 0xe8, 0x45, 0x31, 0xc9, 0x6a, 0x00, 0x6a, 0x00]) // mov r8, r13 (rcv_name); xor r9d, r9d
        .raw(&[0x39, 0xc0, 0xb8, 0x1f, 0, 0, 1, 0x0f, 0x05, 0x48, 0x83, 0xc4, 0x10]); // mach_msg_trap; add rsp, 16
    expect_eax(&mut a, 0x1000_4004); // MACH_RCV_TOO_LARGE
    receive(&mut a, 36, 2); // empty, no timeout: XNU would wait forever
    a.raw(&EXIT0_64).label("fail").raw(&[0xbf, 1, 0, 0, 0, 0xb8, 0x01, 0, 0, 0x02, 0x0f, 0x05]);
    let o = run("own-port", &Image::new64(a.finish()).bytes(), &["--trace"]);
    assert_eq!(o.status.code(), Some(123), "{}", stderr(&o));
    let t = stderr(&o);
    assert!(t.contains("msgh_id 1000 (28 bytes) to port 0x103") && t.contains("a receive on the empty port 0x103 with no timeout"), "{t}");
    // Every step reached: each message received where the test says.
    for answer in ["rcv 0x103 36): received msgh_id 1000 (28 bytes)", "received msgh_id 1001 (28 bytes)", "msgh_id 1003 (28 bytes) to port 0x103", "= 0x0 MACH_MSG_SUCCESS", "= 0x10004004 MACH_RCV_TOO_LARGE", "= 0x10004003 MACH_RCV_TIMED_OUT"] {
        assert!(t.contains(answer), "{answer}: {t}");
    }
}

/// Descriptors (a complex message) are something xnurun does not carry:
/// a send that declares any in mach_msg2's sixth argument ends the run as
/// unimplemented (123); a receive-only call with the same word goes on.
#[test]
fn mach_msg2_sends_with_descriptors_are_unimplemented() {
    for (options, status) in [(0x4_0000_0001u64, 123), (0x102, 0)] {
        let mut a = Asm::new(BASE64 + CODE_OFF);
        a.raw(&[0xb8, 0x1a, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc2]) // mach_reply_port; mov r10, rax
            .raw(&MESSAGE_ROOM)
            .raw(&[0x48, 0xbe]).raw(&options.to_le_bytes())
            .raw(&[0x48, 0xba]).raw(&(24u64 << 32 | 20).to_le_bytes()) // MAKE_SEND, 24 bytes
            .raw(&[0x45, 0x31, 0xc0]) // xor r8d, r8d
            .raw(&[0x4d, 0x89, 0xd1, 0x49, 0xc1, 0xe1, 0x20, 0x49, 0x83, 0xc9, 0x01]) // r9 = port << 32 | 1 descriptor
            .raw(&[0x6a, 0x00, 0x68, 0, 2, 0, 0, 0x6a, 0x00]) // timeout 0, rcv_size 512, return address
            .raw(&[0xb8, 0x2f, 0, 0, 1, 0x0f, 0x05]) // mach_msg2_trap
            .raw(&exit_unless_eax(0x1000_4003)); // MACH_RCV_TIMED_OUT
        let o = run(&format!("descriptors-{options:x}"), &Image::new64(a.finish()).bytes(), &[]);
        assert_eq!(o.status.code(), Some(status), "options 0x{options:x}: {}", stderr(&o));
        if status == 123 {
            assert!(stderr(&o).contains("mach_msg2_trap with 1 descriptors"), "{}", stderr(&o));
        }
    }
}

/// `--fault port-died`: the receive finds its port destroyed,
/// MACH_RCV_PORT_DIED, as when another thread destroys the receive right
/// during the wait (`ipc_mqueue_receive_results`, osfmk/ipc/ipc_mqueue.c);
/// the name is then gone from the task, so giving it up is
/// KERN_INVALID_NAME, while the task's own port is still there.
#[test]
fn a_port_that_died_is_gone_from_the_tasks_names() {
    let mut a = Asm::new(BASE64 + CODE_OFF);
    a.raw(&[0xb8, 0x1a, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc5]) // mach_reply_port; mov r13, rax
        .raw(&[0xb8, 0x1c, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc6]) // task_self_trap; mov r14, rax
        .raw(&MESSAGE_ROOM)
        .raw(&[0xbe, 0x02, 0, 0, 0, 0x31, 0xd2, 0x45, 0x31, 0xd2, 0x45, 0x31, 0xc0]) // RCV; edx, r10d, r8d = 0
        .raw(&[0x4d, 0x89, 0xe9, 0x49, 0xc1, 0xe1, 0x20]) // r9 = port << 32
        .raw(&[0x6a, 0x00, 0x68, 0, 2, 0, 0, 0x6a, 0x00]) // timeout, rcv_size 512, return address
        .raw(&[0xb8, 0x2f, 0, 0, 1, 0x0f, 0x05]) // mach_msg2_trap
        .raw(&[0x3d, 0x09, 0x40, 0x00, 0x10]).rel(&[0x0f, 0x85], "fail") // MACH_RCV_PORT_DIED
        .raw(&[0x4c, 0x89, 0xf7, 0x4c, 0x89, 0xee, 0xb8, 0x12, 0, 0, 1, 0x0f, 0x05]) // mach_port_deallocate(task, port)
        .raw(&[0x83, 0xf8, 15]).rel(&[0x0f, 0x85], "fail") // KERN_INVALID_NAME
        .raw(&EXIT0_64)
        .label("fail")
        .raw(&[0xbf, 1, 0, 0, 0, 0xb8, 0x01, 0, 0, 2, 0x0f, 0x05]); // exit(1)
    let o = run("port-died", &Image::new64(a.finish()).bytes(), &["--fault", "port-died"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// `ipc_preflight_msg_option64` (osfmk/ipc/ipc_policy.c): a mach_msg2
/// send names exactly one of KOBJECT_CALL, MQ_CALL and ANY; none, or two,
/// is a fatal guard exception (SIGKILL).
#[test]
fn a_mach_msg2_send_names_exactly_one_cfi_kind() {
    for options in [0x1u64, 0x6_0000_0001] {
        let mut a = Asm::new(BASE64 + CODE_OFF);
        a.raw(&[0xb8, 0x1a, 0, 0, 1, 0x0f, 0x05, 0x49, 0x89, 0xc2]) // mach_reply_port; mov r10, rax
            .raw(&MESSAGE_ROOM)
            .raw(&[0x48, 0xbe]).raw(&options.to_le_bytes())
            .raw(&[0x48, 0xba]).raw(&(24u64 << 32 | 20).to_le_bytes())
            .raw(&[0x45, 0x31, 0xc0, 0x45, 0x31, 0xc9, 0x6a, 0x00, 0x6a, 0x00, 0x6a, 0x00])
            .raw(&[0xb8, 0x2f, 0, 0, 1, 0x0f, 0x05]);
        let o = guest64(&format!("cfi-{options:x}"), &a.finish());
        assert_eq!(o.status.code(), Some(137), "options 0x{options:x}: {}", stderr(&o));
        assert!(stderr(&o).contains("ipc_preflight_msg_option64"), "{}", stderr(&o));
    }
}
