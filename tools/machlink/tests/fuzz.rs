//! Bounded property test over the object reader and the whole link: the
//! real hello objects, truncated and with bytes flipped, never make
//! machlink panic; each run either links or fails with one
//! `machlink: ...` line.

mod common;

use std::sync::OnceLock;

use machlink::{Arch, InputFile};
use proptest::prelude::*;

fn objects() -> &'static [(Arch, Vec<u8>); 2] {
    static OBJECTS: OnceLock<[(Arch, Vec<u8>); 2]> = OnceLock::new();
    OBJECTS.get_or_init(|| {
        [
            (Arch::X86_64, std::fs::read(common::object(common::X86_64)).unwrap()),
            (Arch::I386, std::fs::read(common::object(common::I686)).unwrap()),
        ]
    })
}

fn link(arch: Arch, data: Vec<u8>) {
    let files = [InputFile { name: "fuzz.o".into(), data }];
    if let Err(e) = machlink::link(&files, Some(arch), "__start", true, "fuzz") {
        let line = e.to_string();
        assert!(line.starts_with("machlink: ") && !line.contains('\n'), "{line}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn mutated_objects_never_panic(
        which in 0usize..2,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
        truncate in any::<bool>(),
    ) {
        let (arch, original) = &objects()[which];
        let mut data = original.clone();
        for (at, value) in flips {
            let at = at % data.len();
            data[at] ^= value | 1;
        }
        if truncate {
            data.truncate(cut % original.len());
        }
        link(*arch, data);
    }
}

#[test]
fn every_truncation_fails_cleanly() {
    for (arch, original) in objects() {
        for len in 0..original.len() {
            link(*arch, original[..len].to_vec());
        }
    }
}
