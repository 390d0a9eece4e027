//! Each loader rule, broken by a crafted image: one line naming the rule,
//! status 126, and the guest never starts (its first act would be to write
//! "STARTED").

mod common;
use common::*;

/// x86_64 guest: write(1, "STARTED", 7); exit(0).
fn started64() -> Vec<u8> {
    let mut a = Asm::new(BASE64 + CODE_OFF);
    a.raw(&[0xbf, 1, 0, 0, 0])
        .rel(&[0x48, 0x8d, 0x35], "m")
        .raw(&[0xba, 7, 0, 0, 0, 0xb8, 4, 0, 0, 2, 0x0f, 0x05])
        .raw(&[0x31, 0xff, 0xb8, 1, 0, 0, 2, 0x0f, 0x05])
        .label("m")
        .raw(b"STARTED");
    a.finish()
}

fn refused(name: &str, bytes: &[u8], rule: &str) {
    let o = run(name, bytes, &[]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(126), "{name}: {e}");
    assert!(o.stdout.is_empty(), "{name}: the guest started");
    assert_eq!(e.lines().count(), 1, "{name}: one line: {e}");
    assert!(e.contains(rule), "{name}: expected rule {rule:?} in {e}");
    assert!(e.contains("XNU: "), "{name}: names the XNU function: {e}");
}

#[test]
fn the_unbroken_image_runs() {
    let o = run("ok64", &Image::new64(started64()).bytes(), &[]);
    assert_eq!(o.stdout, b"STARTED");
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn each_rule_refuses() {
    let base = Image::new64(started64());
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();

    let mut i = base.clone();
    i.filetype = 6; // MH_DYLIB
    cases.push(("dylib", i.bytes(), "not MH_EXECUTE"));

    let mut i = base.clone();
    i.cputype = 0x0100_000c; // CPU_TYPE_ARM64
    // An arm64 header goes to the arm64 rules, where the x86 subtype (3)
    // is no arm64 subtype.
    cases.push(("arm64", i.bytes(), "CPU subtype"));

    let mut i = base.clone();
    i.magic = 0xcafe_babe;
    cases.push(("fat", i.bytes(), "universal (fat) file"));

    let mut i = base.clone();
    i.extra.push((0x8000_0028, vec![0; 16])); // LC_MAIN
    cases.push(("lcmain", i.bytes(), "needs dyld: not a static executable"));

    let mut i = base.clone();
    i.extra.push((0xe, b"\x0c\0\0\0/usr/lib/dyld\0\0".to_vec())); // LC_LOAD_DYLINKER
    cases.push(("dylinker", i.bytes(), "needs dyld: not a static executable"));

    let mut i = base.clone();
    i.flags |= 4; // MH_DYLDLINK
    cases.push(("dyldlink", i.bytes(), "needs dyld: not a static executable"));

    let mut i = base.clone();
    i.flavor = 1; // x86_THREAD_STATE32 in a 64-bit image
    i.count = 16;
    cases.push(("flavor", i.bytes(), "bad thread state"));

    let mut i = base.clone();
    i.count = 40;
    cases.push(("count", i.bytes(), "bad thread state"));

    let mut i = base.clone();
    i.segs[1].filesize = 0x2000; // past the 4096-byte file
    i.segs[1].vmsize = 0x2000;
    cases.push(("outside", i.bytes(), "segment outside the file"));

    let mut i = base.clone();
    i.segs.push(Seg { name: "__DATA", vmaddr: BASE64 + 0x800, vmsize: 0x1000, fileoff: 0, filesize: 0, maxprot: 3, initprot: 3 });
    cases.push(("overlap", i.bytes(), "overlapping segments"));

    let mut i = base.clone();
    i.segs.remove(0);
    cases.push(("nopagezero", i.bytes(), "no hard page zero"));
    // The rule is the image's architecture's: the message names it.
    cases.push(("nopagezero-arch", i.bytes(), "an x86_64 image needs a one-page page zero"));

    let mut i = base.clone();
    i.entry = BASE64 + 0x2000;
    cases.push(("entry", i.bytes(), "entry outside executable segment"));

    let mut i = base.clone();
    i.segs.push(Seg { name: "__DATA", vmaddr: BASE64 + 0x1000, vmsize: 0x1000, fileoff: 0, filesize: 0, maxprot: 3, initprot: 3 });
    i.entry = BASE64 + 0x1000; // in rw- memory
    cases.push(("entry-rw", i.bytes(), "entry outside executable segment"));

    let mut i = base.clone();
    i.size = 4000;
    cases.push(("short", i.bytes(), "file shorter than one page"));

    let mut i = base.clone();
    i.segs[1].initprot = 3; // header segment rw-
    cases.push(("header-rw", i.bytes(), "header segment"));

    let mut i = base.clone();
    i.flavor = 99;
    cases.push(("noflavor", i.bytes(), "bad thread state"));

    let mut b = base.bytes();
    b[20..24].copy_from_slice(&0x2000u32.to_le_bytes()); // sizeofcmds past the file
    cases.push(("sizeofcmds", b, "load commands past end of file"));

    cases.push(("empty", vec![], "not a Mach-O file"));
    cases.push(("elf", b"\x7fELF\x02\x01\x01\0".repeat(512), "not a Mach-O file"));

    for (name, bytes, rule) in cases {
        refused(name, &bytes, rule);
    }
}

#[test]
fn a_missing_file_is_127_and_usage_errors_are_2() {
    let o = xnurun().arg("/nonexistent/xnurun-test").output().unwrap();
    assert_eq!(o.status.code(), Some(127));
    let o = xnurun().output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = xnurun().args(["--fault", "bogus", "x"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}
