//! Hand-made guests that show the runner itself follows XNU's conventions.
//! Each guest checks registers itself and exits with a distinct status
//! when a check fails, so a wrong convention shows up as that status.

mod common;
use common::*;

const X64_CODE: u64 = BASE64 + CODE_OFF;
const I386_CODE: u64 = BASE32 + CODE_OFF;

fn imm(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

/// x86_64: `mov eax, 0x2000001; syscall` with the status already in edi.
fn exit64(a: &mut Asm) {
    a.raw(&[0xb8]).raw(&imm(0x200_0001)).raw(&[0x0f, 0x05]);
}

/// x86_64: fail label `name` → exit(status).
fn fail64(a: &mut Asm, name: &'static str, status: u8) {
    a.label(name).raw(&[0xbf, status, 0, 0, 0]);
    exit64(a);
}

#[test]
fn x86_64_write_returns_rax_rdx_rcx_and_cf_as_xnu() {
    let mut a = Asm::new(X64_CODE);
    a.raw(&[0xbf, 1, 0, 0, 0]) // mov edi, 1
        .rel(&[0x48, 0x8d, 0x35], "msg") // lea rsi, [rip+msg]
        .raw(&[0xba, 3, 0, 0, 0]) // mov edx, 3
        .raw(&[0xb8]).raw(&imm(0x200_0004)) // mov eax, SYS_write | class 2
        .raw(&[0x0f, 0x05]) // syscall
        .label("after1")
        .rel(&[0x0f, 0x82], "f1") // jc f1: CF must be clear
        .rel(&[0x48, 0x8d, 0x1d], "after1") // lea rbx, [rip+after1]
        .raw(&[0x48, 0x39, 0xd9]) // cmp rcx, rbx: rcx = return rip
        .rel(&[0x0f, 0x85], "f2")
        .raw(&[0x48, 0x85, 0xd2]) // test rdx, rdx: second value is 0
        .rel(&[0x0f, 0x85], "f3")
        .raw(&[0x48, 0x83, 0xf8, 3]) // cmp rax, 3
        .rel(&[0x0f, 0x85], "f4")
        .raw(&[0xbf, 99, 0, 0, 0]) // mov edi, 99 (not open)
        .raw(&[0xba, 3, 0, 0, 0]) // mov edx, 3
        .raw(&[0xb8]).raw(&imm(0x200_0004))
        .raw(&[0x0f, 0x05])
        .rel(&[0x0f, 0x83], "f5") // jnc f5: CF must be set
        .raw(&[0x48, 0x83, 0xf8, 9]) // cmp rax, 9 (EBADF)
        .rel(&[0x0f, 0x85], "f6")
        .raw(&[0x48, 0x83, 0xfa, 3]) // cmp rdx, 3: untouched on error
        .rel(&[0x0f, 0x85], "f7")
        .raw(&[0x31, 0xff]); // xor edi, edi
    exit64(&mut a);
    for (l, s) in [("f1", 11), ("f2", 12), ("f3", 13), ("f4", 14), ("f5", 15), ("f6", 16), ("f7", 17)] {
        fail64(&mut a, l, s);
    }
    a.label("msg").raw(b"hey");
    let o = run("rdx64", &Image::new64(a.finish()).bytes(), &["--trace"]);
    assert_eq!(o.stdout, b"hey", "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("write(1, \"hey\", 3) = 3"), "{err}");
    assert!(err.contains("write(99, \"hey\", 3) = -1 EBADF (Bad file descriptor)"), "{err}");
    assert!(err.contains(&format!("RIP 0x{:x} RAX 0x2000004 RCX ", X64_CODE + 22)), "{err}");
}

#[test]
fn x86_64_stack_has_argc_argv_envp_apple() {
    let mut a = Asm::new(X64_CODE);
    a.raw(&[0x48, 0x8b, 0x04, 0x24]) // mov rax, [rsp]          argc
        .raw(&[0x48, 0x8d, 0x5c, 0xc4, 0x10]) // lea rbx, [rsp+rax*8+16]  &envp[0]
        .label("e")
        .raw(&[0x48, 0x83, 0x3b, 0x00]) // cmp qword [rbx], 0
        .rel(&[0x0f, 0x84], "f")
        .raw(&[0x48, 0x83, 0xc3, 0x08]) // add rbx, 8
        .rel(&[0xe9], "e")
        .label("f")
        .raw(&[0x48, 0x8b, 0x73, 0x08]) // mov rsi, [rbx+8]   apple[0]
        .rel(&[0xe8], "puts")
        .raw(&[0x48, 0x8b, 0x74, 0x24, 0x10]) // mov rsi, [rsp+16]  argv[1]
        .rel(&[0xe8], "puts")
        .raw(&[0x48, 0x8b, 0x3c, 0x24]); // mov rdi, [rsp]  exit(argc)
    exit64(&mut a);
    a.label("puts")
        .raw(&[0x31, 0xd2]) // xor edx, edx
        .label("l")
        .raw(&[0x80, 0x3c, 0x16, 0x00]) // cmp byte [rsi+rdx], 0
        .rel(&[0x0f, 0x84], "w")
        .raw(&[0x48, 0xff, 0xc2]) // inc rdx
        .rel(&[0xe9], "l")
        .label("w")
        .raw(&[0xbf, 1, 0, 0, 0])
        .raw(&[0xb8]).raw(&imm(0x200_0004))
        .raw(&[0x0f, 0x05])
        .raw(&[0xc3]); // ret
    let p = write_image("stack64", &Image::new64(a.finish()).bytes());
    let o = xnurun().arg(&p).arg("-x").output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), format!("executable_path={}-x", p.display()));
}

fn one_insn64(name: &str, code: &[u8], opts: &[&str]) -> std::process::Output {
    let mut c = code.to_vec();
    // Anything after the instruction is exit(0): reaching it is a failure.
    c.extend_from_slice(&[0x31, 0xff, 0xb8, 0x01, 0x00, 0x00, 0x02, 0x0f, 0x05]);
    run(name, &Image::new64(c).bytes(), opts)
}

#[test]
fn x86_64_class_1_is_reported_as_an_unimplemented_mach_trap() {
    // mov eax, 0x1000024 (Mach trap 36, semaphore_wait_trap); syscall
    let o = one_insn64("class1", &[0xb8, 0x24, 0, 0, 1, 0x0f, 0x05], &[]);
    assert_eq!(o.status.code(), Some(123));
    assert!(stderr(&o).contains("Mach trap"), "{}", stderr(&o));
}

#[test]
fn x86_64_linux_style_number_dies_of_sigsys() {
    // xor edi, edi; mov eax, 1 (class 0: Linux's write); syscall
    let o = one_insn64("class0", &[0x31, 0xff, 0xb8, 1, 0, 0, 0, 0x0f, 0x05], &["--trace"]);
    assert_eq!(o.status.code(), Some(140), "{}", stderr(&o));
    assert!(stderr(&o).contains("EXC_SYSCALL"), "{}", stderr(&o));
    assert!(stderr(&o).contains("+++ killed by SIGSYS +++"), "{}", stderr(&o));
}

#[test]
fn x86_64_nosys_and_past_the_table_die_of_sigsys() {
    for (n, num) in [("nosys40", 0x200_0028u32), ("past", 0x200_0400)] {
        let mut c = vec![0xb8];
        c.extend_from_slice(&num.to_le_bytes());
        c.extend_from_slice(&[0x0f, 0x05]);
        let o = one_insn64(n, &c, &[]);
        assert_eq!(o.status.code(), Some(140), "{n}: {}", stderr(&o));
    }
}

#[test]
fn x86_64_enosys_slot_returns_enosys_78() {
    // mov eax, 0x2000008 (old creat: enosys); syscall; jnc +2... ; mov edi, eax; exit
    let code = [0xb8, 8, 0, 0, 2, 0x0f, 0x05, 0x89, 0xc7, 0xb8, 1, 0, 0, 2, 0x0f, 0x05];
    let o = run("enosys", &Image::new64(code.to_vec()).bytes(), &[]);
    assert_eq!(o.status.code(), Some(78), "{}", stderr(&o));
}

#[test]
fn x86_64_real_but_unimplemented_call_stops_clearly() {
    let o = one_insn64("getpid", &[0xb8, 0x14, 0, 0, 2, 0x0f, 0x05], &[]);
    assert_eq!(o.status.code(), Some(123));
    assert!(stderr(&o).contains("getpid"), "{}", stderr(&o));
}

#[test]
fn x86_64_null_load_is_sigsegv_with_address_and_bytes() {
    // mov rax, [0]
    let o = one_insn64("segv", &[0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0], &[]);
    assert_eq!(o.status.code(), Some(139));
    let e = stderr(&o);
    assert!(e.contains("SIGSEGV") && e.contains("fault address 0x0") && e.contains("48 8b 04 25 00 00 00 00"), "{e}");
    assert!(e.contains(&format!("rip 0x{X64_CODE:x}")), "{e}");
}

#[test]
fn x86_64_store_into_text_is_sigbus() {
    // lea rax, [rip]; mov byte [rax], 1
    let o = one_insn64("bus", &[0x48, 0x8d, 0x05, 0, 0, 0, 0, 0xc6, 0x00, 0x01], &[]);
    assert_eq!(o.status.code(), Some(138), "{}", stderr(&o));
}

/// int3 is T_INT3, SIGTRAP. `int 0x80` and `sysenter` from a 64-bit task
/// reach L_64bit_entry_reject (osfmk/x86_64/idt64.s): T_INVALID_OPCODE,
/// SIGILL, in 64-bit mode as after a switch to 32-bit code.
#[test]
fn x86_64_breakpoint_is_sigtrap_and_32_bit_gates_are_sigill() {
    assert_eq!(one_insn64("int3", &[0xcc], &[]).status.code(), Some(133));
    for (name, code) in [("int80", &[0xcd, 0x80][..]), ("int81_64", &[0xcd, 0x81])] {
        let o = one_insn64(name, code, &[]);
        assert_eq!(o.status.code(), Some(132), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(&format!("rip 0x{X64_CODE:x}")), "{name}: {}", stderr(&o));
    }
    // An Intel CPU takes a 64-bit `sysenter` into Linux, which keeps no
    // address of it and resumes at its 32-bit landing pad: the real CPU's
    // report names the pad. AMD's #UD, and the emulated CPU, name the
    // instruction. SIGILL on every CPU.
    let mut c = vec![0x0f, 0x34];
    c.extend_from_slice(&[0x31, 0xff, 0xb8, 0x01, 0x00, 0x00, 0x02, 0x0f, 0x05]);
    let bytes = Image::new64(c).bytes();
    for cpu in ["real", "emulated"] {
        let o = run_on(cpu, "sysenter64", &bytes, &[]);
        assert_eq!(o.status.code(), Some(132), "{cpu}: {}", stderr(&o));
        let intel_real = cpu == "real" && on_intel();
        let names = if intel_real { "(sysenter from a 64-bit task (L_64bit_entry_reject".to_string() } else { format!("rip 0x{X64_CODE:x}") };
        assert!(stderr(&o).contains(&names), "{cpu}: {}", stderr(&o));
    }
}

/// `--max-steps 0` runs nothing on either CPU (unicorn's own count of 0
/// would mean no limit at all).
#[test]
fn zero_steps_run_nothing() {
    // exit(0) as the first instruction: any step would end the run 0.
    let o = one_insn64("zero-steps", &[], &["--max-steps", "0"]);
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    assert!(stderr(&o).contains("ran 0 instructions"), "{}", stderr(&o));
}

#[test]
fn endless_loop_hits_the_step_limit() {
    let o = one_insn64("loop", &[0xeb, 0xfe], &["--max-steps", "1000"]);
    assert_eq!(o.status.code(), Some(124));
    assert!(stderr(&o).contains("step limit"), "{}", stderr(&o));
}

/// i386: exit(status) through int 0x80 (push status; push dummy; mov eax, 1).
fn exit32_int80(a: &mut Asm, status: u8) {
    a.raw(&[0x6a, status, 0x50, 0xb8, 1, 0, 0, 0, 0xcd, 0x80]);
}

#[test]
fn i386_int80_returns_eax_and_edx_second_value() {
    let mut a = Asm::new(I386_CODE);
    a.raw(&[0x6a, 3]) // push 3
        .abs(&[0x68], "msg") // push msg
        .raw(&[0x6a, 1, 0x50]) // push 1; push eax (the skipped word)
        .raw(&[0xba, 0x55, 0, 0, 0]) // mov edx, 0x55
        .raw(&[0xb8, 4, 0, 0, 0]) // mov eax, 4
        .raw(&[0xcd, 0x80]) // int 0x80
        .rel(&[0x0f, 0x82], "f1") // jc
        .raw(&[0x85, 0xd2]) // test edx, edx
        .rel(&[0x0f, 0x85], "f2")
        .raw(&[0x83, 0xf8, 3]) // cmp eax, 3
        .rel(&[0x0f, 0x85], "f3");
    exit32_int80(&mut a, 0);
    a.label("f1");
    exit32_int80(&mut a, 11);
    a.label("f2");
    exit32_int80(&mut a, 12);
    a.label("f3");
    exit32_int80(&mut a, 13);
    a.label("msg").raw(b"hey");
    let o = run("int80", &Image::new32(a.finish()).bytes(), &["--trace"]);
    assert_eq!(o.stdout, b"hey", "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("EIP 0x"), "{}", stderr(&o));
    // Through int 0x80 unix_syscall reads the words from ESP, not ECX.
    let e = stderr(&o);
    let regs = e.lines().next().unwrap_or_default();
    let esp = regs.split(' ').skip_while(|w| *w != "ESP").nth(1).unwrap_or_else(|| panic!("{e}"));
    let stack = e.lines().nth(1).unwrap_or_default();
    assert!(stack.starts_with(&format!("STACK {esp}: ")) && stack.ends_with(" 0x3"), "{e}");
}

#[test]
fn i386_sysenter_returns_to_edx_with_ecx_as_esp() {
    let mut a = Asm::new(I386_CODE);
    a.raw(&[0x6a, 3]).abs(&[0x68], "msg").raw(&[0x6a, 1, 0x50])
        .raw(&[0xb8, 4, 0, 0, 0]) // mov eax, 4
        .rel(&[0xe8], "trap") // call trap
        .label("ret1")
        .rel(&[0x0f, 0x82], "f1")
        .abs(&[0x81, 0xfa], "ret1") // cmp edx, ret1
        .rel(&[0x0f, 0x85], "f2")
        .raw(&[0x39, 0xe1]) // cmp ecx, esp
        .rel(&[0x0f, 0x85], "f3")
        .raw(&[0x83, 0xf8, 3]) // cmp eax, 3
        .rel(&[0x0f, 0x85], "f4")
        .raw(&[0xc7, 0x44, 0x24, 0x04, 0, 0, 0, 0]) // mov dword [esp+4], 0
        .raw(&[0xb8, 1, 0, 0, 0])
        .rel(&[0xe8], "trap");
    for (l, s) in [("f1", 11u8), ("f2", 12), ("f3", 13), ("f4", 14)] {
        a.label(l);
        exit32_int80(&mut a, s);
    }
    a.label("trap").raw(&[0x5a, 0x89, 0xe1, 0x0f, 0x34]); // pop edx; mov ecx, esp; sysenter
    a.label("msg").raw(b"hey");
    // Natively (AMD: sysenter is #UD and reaches xnurun as SIGILL; Intel:
    // through Linux's fast entry) and single-stepped (seen before it runs).
    let bytes = Image::new32(a.finish()).bytes();
    for opts in [&[][..], &["--max-steps", "1000"]] {
        let o = run("sysenter", &bytes, opts);
        assert_eq!(o.stdout, b"hey", "{opts:?}: {}", stderr(&o));
        assert_eq!(o.status.code(), Some(0), "{opts:?}: {}", stderr(&o));
    }
}

#[test]
fn i386_mach_trap_int81_fault_and_nosys() {
    // mov eax, -36 (semaphore_wait_trap, which xnurun does not answer);
    // call +0 → pop edx; mov ecx, esp; sysenter
    let mach = [0xb8, 0xdc, 0xff, 0xff, 0xff, 0xe8, 0, 0, 0, 0, 0x5a, 0x89, 0xe1, 0x0f, 0x34];
    let o = run("mach32", &Image::new32(mach.to_vec()).bytes(), &[]);
    assert_eq!(o.status.code(), Some(123));
    assert!(stderr(&o).contains("Mach trap 36"), "{}", stderr(&o));
    // mov eax, -36; int 0x81: the same trap through the Mach gate.
    let o = run("int81", &Image::new32(vec![0xb8, 0xdc, 0xff, 0xff, 0xff, 0xcd, 0x81]).bytes(), &[]);
    assert_eq!(o.status.code(), Some(123), "{}", stderr(&o));
    let o = run("segv32", &Image::new32(vec![0xa1, 0, 0, 0, 0]).bytes(), &[]);
    assert_eq!(o.status.code(), Some(139), "{}", stderr(&o));
    // push 0; push eax; mov eax, 40 (nosys, old lstat); int 0x80
    let o = run("nosys32", &Image::new32(vec![0x6a, 0, 0x50, 0xb8, 40, 0, 0, 0, 0xcd, 0x80]).bytes(), &[]);
    assert_eq!(o.status.code(), Some(140), "{}", stderr(&o));
}

/// A custom stack pointer too low for the initial stack: refused as
/// `exec_copyout_strings` would fail, never a panic.
#[test]
fn i386_custom_stack_too_low_is_refused() {
    let mut img = Image::new32(vec![0xeb, 0xfe]);
    img.segs.push(Seg { name: "__DATA", vmaddr: 0x2000, vmsize: 0x1000, fileoff: 0, filesize: 0, maxprot: 3, initprot: 3 });
    img.sp = 0x3000;
    let path = write_image("lowstack", &img.bytes());
    let big = "a".repeat(20_000);
    let o = xnurun().arg(&path).arg(&big).output().unwrap();
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not fit below the stack pointer"), "{}", stderr(&o));
}

/// A segment at an address that is not page-aligned: map_segment maps the
/// file's pages at trunc_page(vmaddr), so the byte at vmaddr is the byte
/// at fileoff + vmaddr % page. The guest exits with it.
#[test]
fn i386_unaligned_segment_maps_whole_file_pages() {
    let code = vec![
        0x0f, 0xb6, 0x05, 0xf0, 0x2f, 0x00, 0x00, // movzx eax, byte [0x2ff0]
        0x50, 0x50, // push eax (status); push eax (the skipped word)
        0xb8, 0x01, 0x00, 0x00, 0x00, // mov eax, 1 (exit)
        0xcd, 0x80, // int 0x80
    ];
    let mut img = Image::new32(code);
    img.segs.push(Seg { name: "__DATA", vmaddr: 0x2ff0, vmsize: 0x10, fileoff: 0x1000, filesize: 0x1000, maxprot: 3, initprot: 3 });
    img.size = 0x2000;
    let mut bytes = img.bytes();
    bytes[0x1ff0] = 42;
    let o = run("unaligned", &bytes, &[]);
    assert_eq!(o.status.code(), Some(42), "{}", stderr(&o));
}

/// read(0, rsp-64, 64), then write(1, that, rax), then exit(rax or errno):
/// read as `dofileread` answers it, on both CPUs.
fn echo64() -> Vec<u8> {
    let mut a = Asm::new(X64_CODE);
    a.raw(&[0x48, 0x8d, 0x74, 0x24, 0xc0]) // lea rsi, [rsp-64]
        .raw(&[0x31, 0xff]) // xor edi, edi (stdin)
        .raw(&[0xba, 64, 0, 0, 0]) // mov edx, 64
        .raw(&[0xb8]).raw(&imm(0x200_0003)) // read
        .raw(&[0x0f, 0x05])
        .rel(&[0x0f, 0x82], "err") // jc err
        .raw(&[0x48, 0x89, 0xc2]) // mov rdx, rax
        .raw(&[0xbf, 1, 0, 0, 0]) // mov edi, 1
        .raw(&[0xb8]).raw(&imm(0x200_0004)) // write
        .raw(&[0x0f, 0x05])
        .raw(&[0x31, 0xff]); // exit(0)
    exit64(&mut a);
    a.label("err").raw(&[0x89, 0xc7]); // mov edi, eax: exit(errno)
    exit64(&mut a);
    Image::new64(a.finish()).bytes()
}

#[test]
fn read_copies_out_to_the_guest_and_reports_errors_as_xnu() {
    use std::io::Write;
    use std::process::Stdio;
    let path = write_image("echo64", &echo64());
    for opts in [&[][..], &["--fault", "short:3"], &["--fault", "eintr-once"], &["--fault", "ebadf"]] {
        let mut outs = vec![];
        for cpu in ["real", "emulated"] {
            let mut c = xnurun().args(["--cpu", cpu]).args(opts).arg(&path).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
            // With ebadf the guest never reads, and may be gone (its stdin
            // closed) before this write: EPIPE then is no failure.
            let _ = c.stdin.take().unwrap().write_all(b"hello\n");
            let o = c.wait_with_output().unwrap();
            outs.push((o.status.code(), o.stdout.clone(), stderr(&o)));
        }
        assert_eq!(outs[0], outs[1], "{opts:?}: the CPUs differ");
        let want: (Option<i32>, &[u8]) = match opts.get(1) {
            None => (Some(0), b"hello\n"),
            Some(&"short:3") => (Some(0), b"hel"),
            Some(&"eintr-once") => (Some(4), b""),
            _ => (Some(9), b""),
        };
        assert_eq!((outs[0].0, outs[0].1.as_slice()), want, "{opts:?}: {}", outs[0].2);
    }
    // A buffer in __TEXT is not writable: EFAULT (14), nothing consumed.
    let mut code = echo64();
    // lea rsi, [rip-12]: the code itself.
    code[0x400..0x405].copy_from_slice(&[0x48, 0x8d, 0x35, 0xf4, 0xff]);
    code.splice(0x405..0x405, [0xff, 0xff]);
    code.truncate(4096);
    let path = write_image("readtext", &code);
    let input = write_image("readtext-input", b"abc");
    for cpu in [&["--cpu", "real"][..], &["--cpu", "emulated"]] {
        let o = xnurun().args(cpu).arg(&path).stdin(std::fs::File::open(&input).unwrap()).output().unwrap();
        assert_eq!(o.status.code(), Some(14), "{cpu:?}: {}", stderr(&o));
    }
    // At end of file nothing is copied, so nothing faults: dofileread
    // returns 0 (XNU checks no buffer before the read).
    let o = both(xnurun().arg(&path).stdin(Stdio::null()));
    assert_eq!((o.status.code(), o.stdout.as_slice()), (Some(0), &b""[..]), "{}", stderr(&o));
}

/// `n` one-page zero-fill read-write segments from `at`, a page apart.
fn add_zero_pages(img: &mut Image, at: u64, n: u64) {
    for i in 0..n {
        img.segs.push(Seg { name: "__ZERO", vmaddr: at + i * 0x2000, vmsize: 0x1000, fileoff: 0, filesize: 0, maxprot: 3, initprot: 3 });
    }
}

/// Eighty zero-fill segments, and one whose bytes come from a later page of
/// the file: every one is mapped where the image says, writable and zeroed,
/// and the set-up program that maps them runs to more than two pages.
#[test]
fn many_segments_are_each_mapped_where_the_image_says() {
    const ZERO: u64 = 0x2_0000_0000;
    const DATA: u64 = 0x3_0000_0000;
    const CODE_AT: u64 = 0x1c00;
    let mut a = Asm::new(BASE64 + CODE_AT);
    a.raw(&[0x48, 0xbb]).raw(&ZERO.to_le_bytes()) // mov rbx, ZERO
        .raw(&[0xb9, 80, 0, 0, 0]) // mov ecx, 80
        .label("loop")
        .raw(&[0x80, 0x3b, 0x00]) // cmp byte [rbx], 0: zero-filled
        .rel(&[0x0f, 0x85], "f1")
        .raw(&[0x88, 0x0b]) // mov [rbx], cl: writable
        .raw(&[0x38, 0x0b]) // cmp [rbx], cl
        .rel(&[0x0f, 0x85], "f2")
        .raw(&[0x48, 0x81, 0xc3, 0x00, 0x20, 0x00, 0x00]) // add rbx, 0x2000
        .raw(&[0xff, 0xc9]) // dec ecx
        .rel(&[0x0f, 0x85], "loop")
        .raw(&[0x48, 0xbb]).raw(&DATA.to_le_bytes()) // mov rbx, DATA
        .raw(&[0x80, 0x3b, 0x5a]) // cmp byte [rbx], 0x5a: the file's byte
        .rel(&[0x0f, 0x85], "f3")
        .raw(&[0xbf, 42, 0, 0, 0]); // exit(42)
    exit64(&mut a);
    for (l, s) in [("f1", 11), ("f2", 12), ("f3", 13)] {
        fail64(&mut a, l, s);
    }
    let mut img = Image::new64(a.finish()).code_at(CODE_AT, 0x2000, 0x3000);
    img.segs.push(Seg { name: "__DATA", vmaddr: DATA, vmsize: 0x1000, fileoff: 0x2000, filesize: 0x1000, maxprot: 3, initprot: 3 });
    add_zero_pages(&mut img, ZERO, 80);
    let mut bytes = img.bytes();
    bytes[0x2000] = 0x5a;
    let o = run("many-segments", &bytes, &[]);
    assert_eq!(o.status.code(), Some(42), "{}", stderr(&o));
}

/// The real CPU's set-up program has 1 MiB for its calls (`setup_program.rs`:
/// [BASE, VDSO_PARK)); an image whose mappings need more, 13,000 segments
/// here, is a one-line runner failure there (docs/limits.md), never a
/// partly set-up guest.
#[test]
fn an_image_past_the_set_up_programs_room_is_refused_in_one_line() {
    const ZERO: u64 = 0x2_0000_0000;
    const CODE_AT: u64 = 0xf_0000;
    let mut img = Image::new64(vec![0xbf, 42, 0, 0, 0, 0xb8, 0x01, 0, 0, 2, 0x0f, 0x05]).code_at(CODE_AT, 0x10_0000, 0x10_0000); // exit(42)
    add_zero_pages(&mut img, ZERO, 13_000);
    let o = run_on("real", "past-room", &img.bytes(), &[]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let said: Vec<&str> = std::str::from_utf8(&o.stderr).unwrap().lines().collect();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("set-up calls, more than the set-up program has room for"), "{said:?}");
}

/// A segment whose file bytes end before its memory does (filesize <
/// vmsize): past them it is zero-fill, as `load_segment` maps it
/// (bsd/kern/mach_loader.c: the file's pages for filesize, anonymous zero
/// memory for the rest), not more of the file, though the file has bytes
/// there; and writable as its protection says.
#[test]
fn a_segment_is_zero_past_its_file_bytes() {
    const DATA: u64 = 0x3_0000_0000;
    const CODE_AT: u64 = 0x1c00;
    let mut a = Asm::new(BASE64 + CODE_AT);
    a.raw(&[0x48, 0xbb]).raw(&DATA.to_le_bytes()) // mov rbx, DATA
        .raw(&[0x80, 0x3b, 0x5a]) // cmp byte [rbx], 0x5a: the file's byte
        .rel(&[0x0f, 0x85], "f1")
        .raw(&[0x80, 0xbb, 0x00, 0x10, 0x00, 0x00, 0x00]) // cmp byte [rbx+0x1000], 0: zero-fill
        .rel(&[0x0f, 0x85], "f2")
        .raw(&[0xc6, 0x83, 0x00, 0x10, 0x00, 0x00, 0x07]) // mov byte [rbx+0x1000], 7
        .raw(&[0xbf, 42, 0, 0, 0]); // exit(42)
    exit64(&mut a);
    for (l, s) in [("f1", 11), ("f2", 12)] {
        fail64(&mut a, l, s);
    }
    let mut img = Image::new64(a.finish()).code_at(CODE_AT, 0x2000, 0x4000);
    img.segs.push(Seg { name: "__DATA", vmaddr: DATA, vmsize: 0x2000, fileoff: 0x2000, filesize: 0x1000, maxprot: 3, initprot: 3 });
    let mut bytes = img.bytes();
    bytes[0x2000] = 0x5a;
    bytes[0x3000] = 0x5a; // the file's next byte, past the segment's
    let o = run("zero-past-file", &bytes, &[]);
    assert_eq!(o.status.code(), Some(42), "{}", stderr(&o));
}
