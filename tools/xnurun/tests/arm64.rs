//! arm64 images on the emulated CPU: the loader's rules (each refusal made
//! by changing one thing in the real hello image), and hand-written guests
//! assembled by rustc and linked and signed by rust-lld exactly as hello is.

mod common;
use common::*;
use hello_tests::hello;
use common::arm64_guest as guest;
use std::process::Command;

/// The write loop of a guest that keeps the buffer in x1, as an x86 habit
/// would: fine on Linux, broken by XNU, which overwrites x1.
const X1_LOOP: &[&str] = &[
    "mov x0, #1",
    "adrp x1, msg@PAGE",
    "add x1, x1, msg@PAGEOFF",
    "mov x2, #14",
    "2:",
    "mov x16, #4",
    "svc #0x80",
    "b.cs 3f",
    "add x1, x1, x0",
    "subs x2, x2, x0",
    "mov x0, #1",
    "b.ne 2b",
    "mov x0, #0",
    "mov x16, #1",
    "svc #0x80",
    "3:",
    "mov x0, #1",
    "mov x16, #1",
    "svc #0x80",
    ".data",
    "msg: .ascii \"Hello, world!\\n\"",
];

#[test]
fn a_buffer_kept_in_x1_breaks_exactly_where_xnu_breaks_it() {
    let g = guest("x1loop", X1_LOOP);
    let o = xnurun().arg(&g).output().unwrap();
    assert_eq!((o.stdout.as_slice(), o.status.code()), (&b"Hello, world!\n"[..], Some(0)), "{}", stderr(&o));
    // A short write: x1 came back 0 (write is ssize_t), so the loop's next
    // buffer is 0 + 5, and XNU's copyin fails there.
    let o = xnurun().args(["--trace", "--fault", "short:5"]).arg(&g).output().unwrap();
    assert_eq!(o.stdout, b"Hello", "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("write(1, 0x5, 9) = -1 EFAULT (Bad address)"), "{}", stderr(&o));
}

#[test]
fn traps_faults_and_returns_map_to_xnu() {
    let cases: &[(&str, &[&str], i32, &str)] = &[
        // semaphore_wait_trap: a real trap xnurun does not answer.
        ("mach", &["mov x16, #-36", "svc #0x80"], 123, "Mach trap 36"),
        // Past the trap table: EXC_SYSCALL, SIGSYS in current XNU
        // (mach_syscall, osfmk/arm64/bsd_arm64.c; ux_exception).
        ("mach-invalid", &["mov x16, #-200", "svc #0x80"], 140, "EXC_SYSCALL"),
        ("nosys", &["mov x16, #40", "svc #0x80"], 140, "SIGSYS"),
        ("segv", &["mov x9, #0", "ldr x0, [x9]"], 139, "SIGSEGV"),
        ("udf", &["udf #0"], 132, "SIGILL"),
        ("brk", &["brk #0"], 133, "SIGTRAP"),
        // XNU traps wfi/wfe at EL0 (SCTLR_EL1.nTWI/nTWE clear): SIGILL.
        ("wfi", &["wfi"], 132, "EXC_BAD_INSTRUCTION"),
        ("wfe", &["wfe"], 132, "EXC_BAD_INSTRUCTION"),
        // User threads run at EL0, where these are undefined.
        ("currentel", &["mrs x0, CurrentEL"], 132, "SIGILL"),
        ("daifset", &["msr daifset, #2"], 132, "SIGILL"),
        ("eret", &["eret"], 132, "SIGILL"),
        ("sctlr", &["mrs x0, sctlr_el1"], 132, "SIGILL"),
        ("ret", &["mov x0, #42", "ret"], 42, ""),
        // The immediate does not matter (handle_svc reads x16 alone).
        ("svc0", &["mov x0, #7", "mov x16, #1", "svc #0"], 7, ""),
        // x16 = 0: the indirect call, number in x0.
        ("indirect", &["mov x0, #1", "mov x1, #9", "mov x16, #0", "svc #0x80"], 9, ""),
    ];
    for (name, asm, status, text) in cases {
        let o = xnurun().arg(guest(name, asm)).output().unwrap();
        assert_eq!(o.status.code(), Some(*status), "{name}: {}", stderr(&o));
        // An empty text means xnurun says nothing: the guest just exits.
        if text.is_empty() {
            assert_eq!(stderr(&o), "", "{name}");
        } else {
            assert!(stderr(&o).contains(text), "{name}: {}", stderr(&o));
        }
    }
}

#[test]
fn main_gets_argc_argv_envp_apple_and_an_aligned_stack() {
    // exit(argc) if sp is 16-byte aligned and argv[argc] == 0, else 99.
    let g = guest(
        "args",
        &[
            "mov x9, sp",
            "and x9, x9, #15",
            "cbnz x9, 1f",
            "ldr x10, [x1, x0, lsl #3]",
            "cbnz x10, 1f",
            "ldr x10, [x2]", // envp[0] exists (the test's environment)
            "cbz x10, 1f",
            "ldr x10, [x3]", // apple[0]: executable_path=...
            "ldrb w11, [x10]",
            "cmp w11, #'e'",
            "b.ne 1f",
            "mov x16, #1",
            "svc #0x80",
            "1:",
            "mov x0, #99",
            "mov x16, #1",
            "svc #0x80",
        ],
    );
    let o = xnurun().arg(&g).args(["a", "b"]).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
}

#[test]
fn the_image_runs_at_a_nonzero_slide() {
    // Writes the runtime address of __start; the file says where it was
    // linked.
    let g = guest(
        "slide",
        &["adr x9, __start", "sub sp, sp, #16", "str x9, [sp]", "mov x0, #1", "mov x1, sp", "mov x2, #8", "mov x16, #4", "svc #0x80", "mov x0, #0", "mov x16, #1", "svc #0x80"],
    );
    let o = xnurun().arg(&g).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let at_run = u64::from_le_bytes(o.stdout[..8].try_into().unwrap());
    let nm = Command::new(hello_tests::llvm_objdump()).args(["--syms"]).arg(&g).output().unwrap();
    let text = String::from_utf8_lossy(&nm.stdout);
    let linked = text.lines().find(|l| l.ends_with(" __start")).and_then(|l| u64::from_str_radix(l.split_whitespace().next()?, 16).ok()).expect("__start in the symbol table");
    assert_ne!(at_run, linked, "the image ran where it was linked: no slide");
    assert_eq!((at_run - linked) % 0x4000, 0, "the slide is whole 16 KiB pages");
}

/// The offsets of each load command in a 64-bit Mach-O: (cmd, offset).
fn commands(b: &[u8]) -> Vec<(u32, usize)> {
    let n = u32::from_le_bytes(b[16..20].try_into().unwrap());
    let mut off = 32;
    let mut out = vec![];
    for _ in 0..n {
        let cmd = u32::from_le_bytes(b[off..off + 4].try_into().unwrap());
        out.push((cmd, off));
        off += u32::from_le_bytes(b[off + 4..off + 8].try_into().unwrap()) as usize;
    }
    out
}

fn segment(b: &[u8], name: &str) -> usize {
    commands(b).into_iter().find(|&(c, o)| c == 0x19 && b[o + 8..o + 24].starts_with(name.as_bytes())).expect(name).1
}

#[test]
fn every_loader_rule_refuses_with_126() {
    let good = std::fs::read(hello("aarch64-apple-darwin")).unwrap();
    let o = run_on("emulated", "a64good", &good, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let cmd_at = |b: &[u8], cmd: u32| commands(b).into_iter().find(|&(c, _)| c == cmd).expect("command").1;
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![];
    let clear_flag = |flag: u32| {
        let mut b = good.clone();
        let f = u32::from_le_bytes(b[24..28].try_into().unwrap()) & !flag;
        b[24..28].copy_from_slice(&f.to_le_bytes());
        b
    };
    cases.push(("nopie", clear_flag(0x20_0000), "not position-independent"));
    cases.push(("static", clear_flag(0x4), "static arm64 executable"));
    let mut b = good.clone();
    let pz = segment(&b, "__PAGEZERO");
    b[pz + 32..pz + 40].copy_from_slice(&0x4000u64.to_le_bytes());
    cases.push(("pagezero", b, "4 GiB page zero"));
    let mut b = good.clone();
    let at = cmd_at(&b, 0xe); // LC_LOAD_DYLINKER
    b[at..at + 4].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    cases.push(("nodyld", b, "no LC_LOAD_DYLINKER"));
    let mut b = good.clone();
    let at = cmd_at(&b, 0x8000_0028); // LC_MAIN
    b[at..at + 4].copy_from_slice(&0x7fff_fff1u32.to_le_bytes());
    cases.push(("nomain", b, "no LC_MAIN"));
    let mut b = good.clone();
    let le = segment(&b, "__LINKEDIT");
    let off = u64::from_le_bytes(b[le + 40..le + 48].try_into().unwrap());
    b[le + 40..le + 48].copy_from_slice(&(off - 0x1000).to_le_bytes());
    cases.push(("align", b, "16 KiB-aligned"));
    let mut b = good.clone();
    let at = cmd_at(&b, 0x1d); // LC_CODE_SIGNATURE
    b[at..at + 4].copy_from_slice(&0x7fff_fff2u32.to_le_bytes());
    cases.push(("unsigned", b, "unsigned"));
    let at = cmd_at(&good, 0x1d);
    let sig = u32::from_le_bytes(good[at + 8..at + 12].try_into().unwrap()) as usize;
    let mut b = good.clone();
    b[sig] ^= 0xff;
    cases.push(("badmagic", b, "malformed code signature"));
    let mut b = good.clone();
    let main = cmd_at(&b, 0x8000_0028);
    let code = u64::from_le_bytes(b[main + 8..main + 16].try_into().unwrap()) as usize;
    b[code] ^= 1; // one bit of the first instruction
    cases.push(("tamper0", b, "does not match page 0"));
    let mut b = good.clone();
    b[0x3ff0] ^= 1; // a padding byte in __TEXT's last page
    cases.push(("tamper3", b, "does not match page 3"));
    for (name, bytes, rule) in cases {
        let o = run(name, &bytes, &[]);
        assert_eq!(o.status.code(), Some(126), "{name}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(rule) && e.lines().count() == 1, "{name}: wanted one line with {rule:?}: {e}");
    }
}

#[test]
fn trace_shows_arm_thread_state_order_then_the_call() {
    let o = xnurun().arg("--trace").arg(hello("aarch64-apple-darwin")).output().unwrap();
    let e = stderr(&o);
    let first = e.lines().next().unwrap_or("");
    assert!(first.starts_with("PC 0x") && first.contains(" X16 0x4 X0 0x1 ") && first.contains(" X2 0xe ") && first.contains(" SP 0x") && first.contains(" LR 0x") && first.contains(" CPSR 0x"), "{first}");
    assert_eq!(e.lines().nth(1), Some("write(1, \"Hello, world!\\n\", 14) = 14"));
}
