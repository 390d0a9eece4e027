//! The images `cargo build --release --target {x86_64,i686}-apple-darwin`
//! writes, read back field by field with the `object` crate and with
//! llvm-objdump.

mod common;

use std::process::Command;

use object::macho;

fn check_image(target: &str) {
    let path = common::image(target);
    let data = std::fs::read(&path).expect("image");
    // XNU reads round_page(header + load commands) and refuses
    // a short read; one page is the whole of hello.
    assert_eq!(
        data.len(),
        4096,
        "{}: the image must be exactly one page. If it is a little longer with LC_SYMTAB's symoff at 4096, \
         cargo's default `strip = \"debuginfo\"` made rustc rewrite it with rust-objcopy: set \
         `strip = false` in [profile.release]",
        path.display()
    );
    let is_64 = target == common::X86_64;
    // Read back by the same object-crate reader every machlink test uses.
    let f = common::Image::read(&path);

    assert_eq!(f.cputype, if is_64 { macho::CPU_TYPE_X86_64 } else { macho::CPU_TYPE_X86 });
    assert_eq!(f.filetype, macho::MH_EXECUTE);
    assert_eq!(f.flags, macho::MH_NOUNDEFS, "MH_NOUNDEFS only: no MH_DYLDLINK, no MH_PIE");
    let seg = if is_64 { macho::LC_SEGMENT_64 } else { macho::LC_SEGMENT };
    assert_eq!(f.commands, vec![seg, seg, macho::LC_SYMTAB, macho::LC_UNIXTHREAD]);
    for forbidden in [macho::LC_MAIN, macho::LC_LOAD_DYLINKER, macho::LC_LOAD_DYLIB, macho::LC_DYLD_INFO, macho::LC_DYLD_INFO_ONLY] {
        assert!(!f.commands.contains(&forbidden));
    }

    let (page_zero, text_base) = if is_64 { (1u64 << 32, 1u64 << 32) } else { (0x1000, 0x1000) };
    assert_eq!(f.segments[0], ("__PAGEZERO".into(), 0, page_zero, 0, 0, 0, 0));
    assert_eq!(f.segments[1], ("__TEXT".into(), text_base, 4096, 0, 4096, 5, 5));

    let names: Vec<_> = f.sections.iter().map(|s| (s.0.as_str(), s.1.as_str())).collect();
    assert_eq!(names, vec![("__TEXT", "__text"), ("__TEXT", "__const")]);
    for s in &f.sections {
        assert_eq!(s.2, text_base + s.4, "section {} address = __TEXT + file offset", s.1);
        assert!(s.4 + s.3 <= 4096);
    }

    let start = f.symbols.iter().find(|s| s.0 == "__start").expect("__start in LC_SYMTAB");
    assert!(start.2, "__start is external");
    assert_eq!(start.1, f.sections[0].2, "__start begins __text");
    assert!(f.symbols.iter().all(|s| !s.0.contains("compiler_builtins")), "builtins were dead-stripped");

    let (flavor, count, pc_word) = if is_64 { (4, 42, 16 * 2) } else { (1, 16, 10) };
    assert_eq!(f.thread.len(), 2 + count as usize);
    assert_eq!((f.thread[0], f.thread[1]), (flavor, count));
    let state = &f.thread[2..];
    let pc = if is_64 { u64::from(state[pc_word]) | u64::from(state[pc_word + 1]) << 32 } else { u64::from(state[pc_word]) };
    assert_eq!(pc, start.1, "entry = __start");
    let others = state.iter().enumerate().filter(|&(i, _)| i != pc_word && !(is_64 && i == pc_word + 1));
    assert!(others.into_iter().all(|(_, &w)| w == 0), "every other register is 0");

    // The message the code loads, found by decoding the instruction in the
    // image, not by repeating the linker's arithmetic.
    let text = &f.sections[0];
    let code = &data[text.4 as usize..(text.4 + text.3) as usize];
    let message_addr = if is_64 {
        // lea rsi, [rip + disp32]
        let at = code.windows(3).position(|w| w == [0x48, 0x8d, 0x35]).expect("lea rsi, [rip+x]");
        let disp = i32::from_le_bytes(code[at + 3..at + 7].try_into().unwrap());
        (text.2 as i64 + at as i64 + 7 + i64::from(disp)) as u64
    } else {
        // push 14; mov eax, imm32
        let at = code.windows(3).position(|w| w == [0x6a, 0x0e, 0xb8]).expect("push 14; mov eax, imm32");
        u64::from(u32::from_le_bytes(code[at + 3..at + 7].try_into().unwrap()))
    };
    let offset = (message_addr - text_base) as usize;
    assert_eq!(&data[offset..offset + 14], b"Hello, world!\n", "message at {message_addr:#x}");
    let konst = &f.sections[1];
    assert!(message_addr >= konst.2 && message_addr + 14 <= konst.2 + konst.3, "message is in __const");

    common::check_with_llvm(&path);
    let objdump = common::objdump();
    let out = Command::new(&objdump).args(["--macho", "--private-headers", "-d"]).arg(&path).output().expect("llvm-objdump");
    assert!(out.status.success(), "llvm-objdump failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("__start:"), "{text}");
    assert!(text.contains("LC_UNIXTHREAD") && text.contains("__PAGEZERO"), "{text}");
    assert!(text.contains(if is_64 { "syscall" } else { "sysenter" }), "{text}");
    assert!(!text.contains("LC_MAIN") && !text.contains("LC_LOAD_DYLINKER"), "{text}");
}

#[test]
fn x86_64_image() {
    check_image(common::X86_64);
}

#[test]
fn i386_image() {
    check_image(common::I686);
}

fn check_deterministic(target: &str) {
    let object = common::object(target);
    let rlib = common::builtins(target);
    let dir = common::scratch(&format!("determinism-{target}"));
    let mut images = Vec::new();
    for name in ["a", "b"] {
        let out = dir.join(name);
        let result = common::machlink(&common::link_line(target, &[&object, &rlib], &out));
        assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
        images.push(std::fs::read(&out).expect("image"));
    }
    assert_eq!(images[0].len(), 4096);
    assert!(images[0] == images[1], "two links of the same inputs differ");
}

#[test]
fn x86_64_deterministic() {
    check_deterministic(common::X86_64);
}

#[test]
fn i386_deterministic() {
    check_deterministic(common::I686);
}
