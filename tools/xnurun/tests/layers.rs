//! xnurun's modules are layers, and imports run one way only:
//! `xnu` ← `image` ← `cpu` ← `app` (lib.rs says why). This reads every
//! source file and fails on any path into a layer above the file's own.

use std::path::Path;

const LAYERS: [&str; 4] = ["xnu", "image", "cpu", "app"];

fn rank(name: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == name)
}

/// Every `crate::LAYER` that `text` names, with its line.
fn uses(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            out.push((n + 1, name));
        }
    }
    out
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            walk(&p, files);
        } else if p.extension().is_some_and(|x| x == "rs") {
            files.push(p);
        }
    }
}

#[test]
fn no_import_runs_back_up() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut bad = Vec::new();
    let mut checked = 0;
    for f in &files {
        let rel = f.strip_prefix(&src).expect("under src");
        let top = rel.components().next().expect("a component").as_os_str().to_string_lossy().into_owned();
        let Some(own) = rank(&top) else { continue };
        checked += 1;
        for (line, name) in uses(&std::fs::read_to_string(f).expect("read")) {
            match rank(&name) {
                Some(r) if r > own => bad.push(format!("{}:{line}: crate::{name} from the {top} layer", rel.display())),
                Some(_) => {}
                None => bad.push(format!("{}:{line}: crate::{name} is no layer", rel.display())),
            }
        }
    }
    assert!(checked >= 25, "only {checked} layered files found under {}", src.display());
    assert!(bad.is_empty(), "imports that run back up:\n{}", bad.join("\n"));
}

#[test]
fn the_check_sees_a_path_back_up() {
    assert_eq!(uses("use crate::cpu::real; // crate::app"), vec![(1, "cpu".to_string())]);
    assert_eq!(rank("cpu").zip(rank("xnu")).map(|(c, x)| c > x), Some(true));
}
