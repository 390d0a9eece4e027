//! The guide's anatomy pages (docs/anatomy/NAME.html, `anatomy --html`
//! through docs/generate) in a real browser. Headless Chromium loads each
//! page; the page's own script draws the hex dump and then checks what it
//! drew, in the browser: as many byte cells as the file has bytes, each
//! byte drawn once, in one field that claims it, as its own hex. The test
//! reads that verdict, requires the page to have said nothing on the
//! console, and keeps a screenshot.
//!
//! Why a verdict in the DOM: `--dump-dom` prints the document once it has
//! loaded, after its scripts ran, so what the script wrote is there
//! without a debugging protocol or a delay to guess. A script that did not
//! run leaves the page's static "not run" verdict, and one that threw
//! leaves "error". The console (`--enable-logging=stderr --v=0`: an
//! `INFO:CONSOLE` line on stderr per message or uncaught error) catches
//! anything else, such as something the page failed to fetch.

use hello_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const PAGES: [(&str, &str); 6] = [
    ("linux_x86_64", LINUX_X86_64),
    ("linux_i386", LINUX_I386),
    ("linux_aarch64", LINUX_AARCH64),
    ("xnu_x86_64", XNU_X86_64),
    ("xnu_i386", XNU_I386),
    ("xnu_arm64", XNU_ARM64),
];

/// The window the screenshots are taken in.
const WIDTH: u32 = 1400;
const HEIGHT: u32 = 1000;

struct Loaded {
    /// `data-verdict` of the page's `#check`: ok, fail, error, or pending
    /// (the script never ran).
    verdict: String,
    /// What `#check` says.
    text: String,
    /// Every console line Chromium logged for the page.
    console: Vec<String>,
}

/// Loads `page` in headless Chromium, with a profile of its own (a
/// throwaway `--user-data-dir`, so runs never share or leave state), and a
/// screenshot of the window if asked. `--no-sandbox`: Chromium's sandbox
/// refuses to start as root, and the pages are the project's own files.
fn load(page: &Path, screenshot: Option<&Path>) -> Loaded {
    let chromium = tool("chromium", "apt-get install chromium");
    let profile = tempfile("chromium-profile");
    let mut cmd = Command::new(chromium);
    cmd.args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--force-device-scale-factor=1"])
        .args(["--enable-logging=stderr", "--v=0"])
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg(format!("--user-data-dir={}", profile.display()));
    if let Some(png) = screenshot {
        cmd.arg(format!("--screenshot={}", png.display()));
    }
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let out = cmd.arg("--dump-dom").arg(&url).output().unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    let (dom, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "chromium failed on {url}:\n{err}");
    let open = "<p id=\"check\" data-verdict=\"";
    let start = dom.find(open).unwrap_or_else(|| panic!("{url}: no #check in the DOM:\n{err}")) + open.len();
    let (verdict, rest) = dom[start..].split_once("\">").unwrap();
    let text = &rest[..rest.find("</p>").unwrap()];
    // `INFO:CONSOLE:12]` in this Chromium, `INFO:CONSOLE(12)]` in older ones.
    let console = err.lines().filter(|l| l.contains(":CONSOLE")).map(String::from).collect();
    Loaded { verdict: verdict.into(), text: text.into(), console }
}

fn page_path(name: &str) -> PathBuf {
    let page = root().join("docs/anatomy").join(format!("{name}.html"));
    assert!(page.is_file(), "{} is missing: run docs/generate", page.display());
    page
}

/// A PNG's width and height, from its IHDR chunk, which the format puts
/// first.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR", "not a PNG");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// Each page: no console message, the page's check passed for exactly
/// as many bytes as the binary has, and a screenshot of the window that
/// holds a drawing, not a blank page (which is about 6 KB of PNG at this
/// size; the drawn dump is over 200 KB). The screenshots stay in
/// target/tests/anatomy-pages/ to be looked at.
#[test]
fn every_page_draws_each_byte_once_in_chromium() {
    let shots = target_dir().join("anatomy-pages");
    std::fs::create_dir_all(&shots).unwrap();
    for (name, target) in PAGES {
        let len = std::fs::metadata(hello(target)).unwrap().len();
        let png = shots.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&png);
        let loaded = load(&page_path(name), Some(&png));
        assert!(loaded.console.is_empty(), "{name}: the page logged:\n{}", loaded.console.join("\n"));
        assert_eq!(loaded.verdict, "ok", "{name}: {}", loaded.text);
        let said = format!("self-check: all {len} bytes drawn, each in exactly one of ");
        assert!(loaded.text.starts_with(&said), "{name}: the binary has {len} bytes: {}", loaded.text);
        let shot = std::fs::read(&png).unwrap_or_else(|e| panic!("{name}: no screenshot at {}: {e}", png.display()));
        assert_eq!(png_size(&shot), (WIDTH, HEIGHT), "{name}");
        assert!(shot.len() > 50_000, "{name}: a {}-byte screenshot is a blank page", shot.len());
    }
}

/// A copy of the x86_64 ELF page whose first span (ei_magic, bytes 0 to
/// 3) draws `len` bytes instead.
fn with_first_span(len: usize, tag: &str) -> PathBuf {
    let page = std::fs::read_to_string(page_path("linux_x86_64")).unwrap();
    let first = page.find("\n\"spans\": [\n[0, 4, 0],\n").expect("the ELF page's first span is ei_magic's 4 bytes") + 12;
    let changed = format!("{}[0, {len}, 0],{}", &page[..first], &page[first + 10..]);
    let path = tempfile(tag).with_extension("html");
    std::fs::write(&path, changed).unwrap();
    path
}

/// The check in the page can fail: one byte drawn in two fields, or in
/// none, is reported by offset and name, and the page still runs cleanly.
#[test]
fn the_page_check_fails_when_a_byte_is_in_two_fields_or_none() {
    for (len, tag, says) in [(5, "two-fields", "byte 0x4 is in 2 fields: ei_magic, ei_class"), (3, "no-field", "byte 0x3 is in no field")] {
        let page = with_first_span(len, tag);
        let loaded = load(&page, None);
        let _ = std::fs::remove_file(&page);
        assert!(loaded.console.is_empty(), "{tag}: {}", loaded.console.join("\n"));
        assert_eq!(loaded.verdict, "fail", "{tag}: {}", loaded.text);
        assert!(loaded.text.starts_with("self-check FAILED") && loaded.text.contains(says), "{tag}: {}", loaded.text);
    }
}

/// The console is heard: a page whose data does not parse throws before
/// it can check anything, and both the console and the verdict say so.
#[test]
fn a_script_error_reaches_the_console_and_the_verdict() {
    let page = std::fs::read_to_string(page_path("linux_x86_64")).unwrap();
    let path = tempfile("broken").with_extension("html");
    std::fs::write(&path, page.replacen("\n\"spans\": [\n", "\n\"spans\": [\n}", 1)).unwrap();
    let loaded = load(&path, None);
    let _ = std::fs::remove_file(&path);
    assert_eq!(loaded.verdict, "error", "{}", loaded.text);
    assert!(loaded.console.iter().any(|l| l.contains("Uncaught SyntaxError")), "{:?}", loaded.console);
}
