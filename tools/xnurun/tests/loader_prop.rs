//! Bounded property test over the loader: mutated images never panic it,
//! and whatever it accepts satisfies the rules it claims to enforce. A few
//! refused mutants also go through the binary, which must not start them.

mod common;
use common::*;
use proptest::prelude::*;
use xnurun::image::x86 as loader;
use xnurun::xnu::Arch;

fn seeds() -> Vec<Vec<u8>> {
    // exit(0) bodies: x86_64 and i386 (int 0x80).
    let x = Image::new64(vec![0x31, 0xff, 0xb8, 1, 0, 0, 2, 0x0f, 0x05]).bytes();
    let y = Image::new32(vec![0x6a, 0, 0x50, 0xb8, 1, 0, 0, 0, 0xcd, 0x80]).bytes();
    vec![x, y]
}

fn mutate(seed: &[u8], edits: &[(u16, u8)], cut: Option<u16>) -> Vec<u8> {
    let mut b = seed.to_vec();
    for &(at, v) in edits {
        // Most edits land in the header and load commands, where the rules live.
        let i = at as usize % 0x200;
        b[i] = v;
    }
    if let Some(c) = cut {
        b.truncate(c as usize % (b.len() + 1));
    }
    b
}

/// The property below says something only about images the loader
/// accepts: a run of the same generator must have it accept enough of
/// them, or the property would hold vacuously.
#[test]
fn enough_mutants_are_accepted_for_the_property_to_mean_something() {
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
    let config = ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let strategy = (0usize..2, proptest::collection::vec((any::<u16>(), any::<u8>()), 0..6), proptest::option::weighted(0.1, any::<u16>()));
    let (accepted, total) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    runner
        .run(&strategy, |(which, edits, cut)| {
            total.set(total.get() + 1);
            if loader::load(&mutate(&seeds()[which], &edits, cut)).is_ok() {
                accepted.set(accepted.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    println!("{} of {} mutants accepted", accepted.get(), total.get());
    assert!(accepted.get() * 10 >= total.get(), "only {} of {} mutants accepted", accepted.get(), total.get());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn loader_never_panics_and_accepts_only_valid(
        which in 0usize..2,
        edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 0..6),
        cut in proptest::option::weighted(0.1, any::<u16>()),
    ) {
        let seed = &seeds()[which];
        let b = mutate(seed, &edits, cut);
        if let Ok(img) = loader::load(&b) {
            prop_assert!(b.len() >= 4096);
            let rx = 5;
            prop_assert!(img.segments.iter().any(|s| img.entry >= s.vmaddr && img.entry - s.vmaddr < s.vmsize && s.initprot & rx == rx));
            for s in &img.segments {
                prop_assert!(s.fileoff + s.filesize <= b.len() as u64);
                prop_assert!(s.vm_range(4096).0 >= img.pagezero_end);
            }
            let mut r: Vec<_> = img.segments.iter().map(|s| s.vm_range(4096)).collect();
            r.sort();
            for w in r.windows(2) {
                prop_assert!(w[0].1 <= w[1].0);
            }
            if img.arch == Arch::X86_64 {
                prop_assert!(img.pagezero_end >= 4096);
            }
        }
    }
}

#[test]
fn refused_mutants_never_start_in_the_binary() {
    // Deterministic mutants of the x86_64 seed whose guest would print.
    let mut a = Asm::new(BASE64 + CODE_OFF);
    a.raw(&[0xbf, 1, 0, 0, 0]).rel(&[0x48, 0x8d, 0x35], "m")
        .raw(&[0xba, 1, 0, 0, 0, 0xb8, 4, 0, 0, 2, 0x0f, 0x05, 0x31, 0xff, 0xb8, 1, 0, 0, 2, 0x0f, 0x05])
        .label("m").raw(b"!");
    let seed = Image::new64(a.finish()).bytes();
    let mut tried = 0;
    for k in 0..400u32 {
        let at = (k * 7919 % 0x170) as usize;
        let mut b = seed.clone();
        b[at] ^= 1 << (k % 8);
        if loader::load(&b).is_ok() {
            continue;
        }
        tried += 1;
        let o = run("mutant", &b, &[]);
        assert_eq!(o.status.code(), Some(126), "mutant {k}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "mutant {k} started");
        if tried == 24 {
            break;
        }
    }
    assert!(tried >= 10, "too few refused mutants: {tried}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    /// The arm64 rules over the real arm64 hello: a mutant never panics
    /// the loader, and any byte changed under the signature is refused.
    #[test]
    fn arm64_loader_never_panics_and_refuses_any_signed_change(
        edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..4),
        cut in proptest::option::weighted(0.1, any::<u16>()),
    ) {
        let seed = arm64_hello();
        let mut b = seed.clone();
        for &(at, v) in &edits {
            let i = at as usize % b.len();
            b[i] = v;
        }
        if let Some(c) = cut {
            b.truncate(c as usize % (b.len() + 1));
        }
        let read_at = |off: u64, buf: &mut [u8]| -> Result<(), String> {
            let s = b.get(off as usize..off as usize + buf.len()).ok_or("past the end")?;
            buf.copy_from_slice(s);
            Ok(())
        };
        let head_len = (b.len()).min(0x4000);
        let got = xnurun::image::arm64::load(&b[..head_len], b.len() as u64, &read_at);
        // Everything up to the signature is hashed: a change there that
        // survives is a hole. Changes inside the signature blob may be
        // harmless (its identifier, padding).
        let sig_start = signature_offset(&seed);
        let changed_signed = b.len() != seed.len() || b[..sig_start] != seed[..sig_start];
        if changed_signed {
            prop_assert!(got.is_err(), "accepted a changed image: {edits:?} cut {cut:?}");
        }
    }
}

fn arm64_hello() -> Vec<u8> {
    static IMAGE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| std::fs::read(hello_tests::hello("aarch64-apple-darwin")).unwrap()).clone()
}

/// LC_CODE_SIGNATURE's dataoff.
fn signature_offset(b: &[u8]) -> usize {
    let word = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize;
    let mut off = 32;
    for _ in 0..word(16) {
        if word(off) == 0x1d {
            return word(off + 8);
        }
        off += word(off + 4);
    }
    panic!("no LC_CODE_SIGNATURE in the arm64 hello");
}
