//! `anatomy --html` on the real hello binaries: the page's spans draw
//! every byte once, each from a row the text view prints at that offset,
//! and bad input leaves one line on stderr and no file. (That a browser
//! draws and checks the page is tests/tests/anatomy_pages.rs.)

use hello_tests::*;
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::{Command, Output};

fn anatomy(args: &[impl AsRef<OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_anatomy"))
        .args(args)
        .output()
        .unwrap()
}

fn page(file: &Path) -> String {
    let out = anatomy(&[OsStr::new("--html"), file.as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The lines of the page's JSON list `key`, one item a line.
fn items<'a>(page: &'a str, key: &str) -> Vec<&'a str> {
    let start = page
        .find(&format!("\n\"{key}\": [\n"))
        .unwrap_or_else(|| panic!("no {key} in the page"))
        + key.len()
        + 7;
    page[start..]
        .lines()
        .take_while(|l| l.starts_with('['))
        .collect()
}

/// The leading numbers of an item, `[0, 4, 0, 0, "name", ...]`.
fn numbers(item: &str, n: usize) -> Vec<usize> {
    item.trim_start_matches('[')
        .split(", ")
        .take(n)
        .map(|w| w.trim_end_matches([']', ',']).parse().unwrap())
        .collect()
}

/// A field's name: the item's first JSON string.
fn name(item: &str) -> String {
    let s = &item[item.find('"').unwrap() + 1..];
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return out,
            '\\' => out.push(chars.next().unwrap()),
            c => out.push(c),
        }
    }
    panic!("unterminated name in {item}");
}

fn every_byte_once_from_a_text_row(target: &str) {
    let bin = hello(target);
    let len = std::fs::metadata(&bin).unwrap().len() as usize;
    let page = page(&bin);
    let out = anatomy(&[&bin]);
    let text = String::from_utf8(out.stdout).unwrap();
    let fields = items(&page, "fields");
    let mut next = 0;
    for span in items(&page, "spans") {
        let [start, size, f] = numbers(span, 3)[..] else {
            unreachable!()
        };
        assert_eq!(
            start, next,
            "{target}: span {span}: a gap or an overlap before it"
        );
        next = start + size;
        let field = fields[f];
        let (offset, name) = (numbers(field, 1)[0], name(field));
        assert_ne!(
            name, "not described",
            "{target}: bytes {start:#x}..{next:#x} are in no row of the text view"
        );
        let row = format!("{offset:#06x} ");
        assert!(
            text.lines()
                .any(|l| l.starts_with(&row) && l.contains(&format!("  {name} "))),
            "{target}: the page's field {name} at {offset:#x} is no row of the text view"
        );
    }
    assert_eq!(
        next, len,
        "{target}: the spans stop short of the file's end"
    );
    let hex: String = items_raw(&page);
    assert_eq!(
        hex,
        std::fs::read(&bin)
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
        "{target}: the page holds the file's bytes"
    );
}

/// The page's bytes, as the hex lines hold them.
fn items_raw(page: &str) -> String {
    let start = page.find("\n\"hex\": [\n").unwrap() + 10;
    page[start..]
        .lines()
        .take_while(|l| l.starts_with('"'))
        .map(|l| l.trim_end_matches([',', ']', '}']).trim_matches('"'))
        .collect()
}

#[test]
fn linux_pages_draw_every_byte_once() {
    every_byte_once_from_a_text_row(LINUX_X86_64);
    every_byte_once_from_a_text_row(LINUX_I386);
    every_byte_once_from_a_text_row(LINUX_AARCH64);
}

#[test]
fn xnu_pages_draw_every_byte_once() {
    every_byte_once_from_a_text_row(XNU_X86_64);
    every_byte_once_from_a_text_row(XNU_I386);
    every_byte_once_from_a_text_row(XNU_ARM64);
}

/// `-o OUT` writes what stdout would get, for either view.
#[test]
fn output_file_holds_what_stdout_gets() {
    let bin = hello(XNU_X86_64);
    for html in [true, false] {
        let out = tempfile("page");
        let flag: Vec<OsString> = if html { vec!["--html".into()] } else { vec![] };
        let to_file = anatomy(
            &[
                flag.clone(),
                vec!["-o".into(), out.clone().into(), bin.clone().into()],
            ]
            .concat(),
        );
        assert!(
            to_file.status.success() && to_file.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&to_file.stderr)
        );
        let to_stdout = anatomy(&[flag, vec![bin.clone().into()]].concat());
        assert_eq!(
            std::fs::read(&out).unwrap(),
            to_stdout.stdout,
            "html {html}"
        );
        let _ = std::fs::remove_file(&out);
    }
}

/// A file anatomy cannot read, or an output it cannot write: one line on
/// stderr, status 1, and no output file, not even a partial or temporary
/// one.
#[test]
fn bad_input_is_one_line_and_no_file() {
    let dir = tempfile("bad-input");
    std::fs::create_dir(&dir).unwrap();
    let junk = dir.join("junk");
    std::fs::write(&junk, b"\x7fELF\x02").unwrap();
    let out = dir.join("page.html");
    let bin = hello(LINUX_X86_64);
    let html_to = |to: &Path, file: &Path| -> Vec<OsString> {
        vec!["--html".into(), "-o".into(), to.into(), file.into()]
    };
    let cases = [
        (html_to(&out, &junk), "runs past the end"),
        (html_to(&out, &dir.join("missing")), "No such file"),
        (html_to(&out, &dir), "Is a directory"),
        (html_to(&dir.join("no/such/dir.html"), &bin), "No such file"),
    ];
    for (args, why) in cases {
        let o = anatomy(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.starts_with("anatomy: ") && err.contains(why),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != "junk")
            .collect();
        assert!(left.is_empty(), "{args:?}: files left behind: {left:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The page names nothing outside itself: no script, style sheet, image
/// or font to fetch.
#[test]
fn the_page_is_self_contained() {
    let page = page(&hello(XNU_ARM64));
    for outside in ["src=", "href=", "url(", "@import", "http:", "https:"] {
        assert!(
            !page.contains(outside),
            "the page refers outside itself: {outside}"
        );
    }
}

/// A file past what a page can draw is refused, in one line, with no
/// page; the text view still explains it.
#[test]
fn a_file_too_big_to_draw_is_refused() {
    let big = tempfile("big");
    let mut data = std::fs::read(hello(LINUX_X86_64)).unwrap();
    data.resize((1 << 20) + 1, 0);
    std::fs::write(&big, &data).unwrap();
    let o = anatomy(&[OsStr::new("--html"), big.as_os_str()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("1048577 bytes: --html draws every byte, and stops at 1048576")
            && err.lines().count() == 1,
        "{err}"
    );
    assert!(o.stdout.is_empty());
    assert!(anatomy(&[&big]).status.success());
    let _ = std::fs::remove_file(&big);
}
