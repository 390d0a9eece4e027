//! The guide's generated pages (docs/listings, docs/anatomy with its HTML
//! pages, docs/runs, docs/registers) must be what the current build produces:
//! `docs/generate --check` regenerates them and fails on any difference.

use hello_tests::*;
use std::process::Command;

#[test]
fn generated_docs_match_the_build() {
    strace();
    tool("python3", "apt-get install python3");
    qemu_aarch64(); // docs/runs/linux_aarch64.txt is qemu-aarch64 -strace
    tool("gdb", "apt-get install gdb"); // docs/registers for Linux x86
    let out = Command::new(root().join("docs/generate"))
        .arg("--check")
        .args(std::env::var("DOCS_ONLY").ok().as_deref().map(str::split_whitespace).into_iter().flatten())
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The check itself can fail: a copy of the pages with one byte changed in
/// one of them (the same length) is out of date, named; so is a page that
/// nothing makes any more.
#[test]
fn the_docs_check_fails_on_a_stale_page_and_names_it() {
    strace();
    tool("python3", "apt-get install python3");
    let copy = std::env::temp_dir().join(format!("docs-copy-{}", std::process::id()));
    for sub in ["listings", "anatomy", "runs", "registers"] {
        std::fs::create_dir_all(copy.join(sub)).unwrap();
        for e in std::fs::read_dir(root().join("docs").join(sub)).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, copy.join(sub).join(p.file_name().unwrap())).unwrap();
        }
    }
    let page = copy.join("runs/linux_x86_64.txt");
    let mut bytes = std::fs::read(&page).unwrap();
    let at = bytes.iter().position(|&b| b == b'4').expect("a digit to change");
    bytes[at] = b'5';
    std::fs::write(&page, bytes).unwrap();
    let check = |only: &[&str]| {
        Command::new(root().join("docs/generate")).args(["--check", "--against"]).arg(&copy).args(only).current_dir(root()).output().unwrap()
    };
    let out = check(&["linux_x86_64"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a changed page passed the check: {err}");
    assert!(err.contains("out of date: runs/linux_x86_64.txt"), "{err}");
    // The page mended, and one that no convention makes added.
    std::fs::copy(root().join("docs/runs/linux_x86_64.txt"), &page).unwrap();
    std::fs::write(copy.join("runs/old_convention.txt"), "stale\n").unwrap();
    let out = check(&["linux_x86_64"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an orphan page passed the check: {err}");
    assert!(err.contains("checked in but made by nothing: runs/old_convention.txt"), "{err}");
    assert!(!err.contains("out of date"), "{err}");
    std::fs::remove_file(copy.join("runs/old_convention.txt")).unwrap();
    // The anatomy page is checked the same way: changed, missing, or one
    // that no convention makes.
    let html = copy.join("anatomy/linux_x86_64.html");
    let page = std::fs::read_to_string(&html).unwrap();
    std::fs::write(&html, page.replacen("<h1>The anatomy of", "<h1>The anatomy of the", 1)).unwrap();
    let err = String::from_utf8_lossy(&check(&["linux_x86_64"]).stderr).into_owned();
    assert!(err.contains("out of date: anatomy/linux_x86_64.html"), "a changed page: {err}");
    std::fs::remove_file(&html).unwrap();
    let err = String::from_utf8_lossy(&check(&["linux_x86_64"]).stderr).into_owned();
    assert!(err.contains("out of date: anatomy/linux_x86_64.html"), "a missing page: {err}");
    std::fs::write(&html, page).unwrap();
    std::fs::write(copy.join("anatomy/old_convention.html"), "stale\n").unwrap();
    let out = check(&["linux_x86_64"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("checked in but made by nothing: anatomy/old_convention.html"), "{err}");
    assert!(!err.contains("out of date"), "{err}");
    std::fs::remove_dir_all(&copy).unwrap();
}

/// Every row of every Markdown table in the guide has as many cells as its
/// header: a bare `|` in a cell (even inside backticks) splits it, and a
/// renderer drops what falls past the last column. Counted here from the
/// text, not by the generator that wrote the pages.
#[test]
fn every_table_row_has_its_header_s_cells() {
    let mut pages = vec![root().join("README.md")];
    for dir in ["docs", "docs/listings", "docs/anatomy", "docs/registers"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "md") {
                pages.push(p);
            }
        }
    }
    assert!(pages.len() > 10, "{pages:?}");
    let cells = |row: &str| row.match_indices('|').filter(|(i, _)| !row[..*i].ends_with('\\')).count();
    let mut bad = Vec::new();
    for page in &pages {
        let mut header = None;
        for (n, line) in std::fs::read_to_string(page).unwrap().lines().enumerate() {
            if !line.starts_with('|') {
                header = None;
                continue;
            }
            match header {
                None => header = Some(cells(line)),
                Some(h) if cells(line) != h => bad.push(format!("{}:{}: {} cells, header {h}", page.display(), n + 1, cells(line))),
                Some(_) => {}
            }
        }
    }
    assert!(bad.is_empty(), "table rows with the wrong number of cells:\n{}", bad.join("\n"));
}

/// The README's Start here commands, run as written (step 1 without the
/// set-up, which the test run itself needed), with what the text says
/// each shows. The commands are taken from the README, so a step that
/// changes there is the step run here.
#[test]
fn start_here_commands_do_what_the_readme_says() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = &readme[readme.find("## Start here").expect("a Start here section")..];
    let section = &section[..section[3..].find("\n## ").unwrap() + 3];
    let commands: Vec<&str> = section.split('`').skip(1).step_by(2).filter(|c| c.contains("cargo ")).collect();
    let find = |prefix: &str| *commands.iter().find(|c| c.starts_with(prefix)).unwrap_or_else(|| panic!("no `{prefix}...` in Start here:\n{section}"));
    let dir = target_dir();
    let run = |command: &str| {
        // The paths the README names are under target/; the tests build in
        // their own directory.
        let command = command.replace("bash .ci/setup && ", "").replace(" target/", &format!(" {}/", dir.display()));
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c").arg(&command).current_dir(root()).env("CARGO_TARGET_DIR", &dir);
        for var in ["CARGO_BUILD_TARGET", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS"] {
            cmd.env_remove(var);
        }
        let out = cmd.output().unwrap();
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned(), out.status.code())
    };
    let (out, err, code) = run(find("bash .ci/setup && cargo run --release"));
    assert_eq!((out.as_str(), code), ("Hello, world!\n", Some(0)), "{err}");
    let (out, err, code) = run(find("cargo build --release --target x86_64-apple-darwin && cargo run -p anatomy"));
    assert!(code == Some(0) && out.contains("MH_MAGIC_64"), "{out}{err}");
    let (out, err, code) = run(find("XNURUN_FLAGS=--trace "));
    assert_eq!((out.as_str(), code), ("Hello, world!\n", Some(0)), "{err}");
    assert!(err.contains("write(1, \"Hello, world!\\n\", 14) = 14\n-> RIP ") && err.contains("+++ exited with 0 +++"), "{err}");
    let (out, err, _) = run(find("XNURUN_FLAGS=\"--trace --fault enospc\""));
    assert_eq!(out, "1\n", "{err}");
    let after = err.lines().skip_while(|l| !l.contains("= -1 ENOSPC")).nth(1).unwrap_or_default();
    assert!(after.starts_with("-> ") && after.contains("RAX 0x1c") && after.contains("CF 1"), "{err}");
    let (out, err, _) = run(find("cargo run --release > /dev/full"));
    assert_eq!(out, "1\n", "{err}");
}

/// docs/syscalls.md's numbers, from a second source each: the Linux
/// columns from the installed kernel headers, the XNU column from
/// xnurun's transcription of syscalls.master (by slot, not by its code).
#[test]
fn the_number_table_matches_the_kernels_tables() {
    let header = |path: &str| {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}: install the kernel headers: apt-get install linux-libc-dev"))
    };
    let linux = |text: &str, call: &str| -> Option<u32> {
        text.lines().find_map(|l| {
            let mut w = l.split_whitespace();
            let (Some("#define"), Some(name), Some(n)) = (w.next(), w.next(), w.next()) else { return None };
            let bare = name.strip_prefix("__NR_").or_else(|| name.strip_prefix("__NR3264_"))?;
            (bare == call).then(|| n.parse().ok()).flatten()
        })
    };
    let x86_64 = header("/usr/include/x86_64-linux-gnu/asm/unistd_64.h");
    let i386 = header("/usr/include/x86_64-linux-gnu/asm/unistd_32.h");
    let generic = header("/usr/include/asm-generic/unistd.h");
    let table = std::fs::read_to_string(root().join("tools/xnurun/src/xnu/bsd/table.rs")).unwrap();
    let names = &table[table.find("pub static NAMES").unwrap()..];
    let names: Vec<&str> = names[..names.find("];").unwrap()].split('"').skip(1).step_by(2).collect();
    assert!(names.len() > 500 && names[4] == "write", "{names:?}");
    let xnu = |call: &str| names.iter().position(|n| *n == call).map(|i| i as u32);
    let page = std::fs::read_to_string(root().join("docs/syscalls.md")).unwrap();
    let mut rows = 0;
    for line in page.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| call")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let number = |cell: &str| cell.split_whitespace().next().and_then(|w| w.parse::<u32>().ok());
        let call = cells[0];
        assert_eq!(number(cells[1]), xnu(call), "XNU {call}: {line}");
        assert_eq!(number(cells[2]), linux(&x86_64, call), "Linux x86_64 {call}: {line}");
        assert_eq!(number(cells[3]), linux(&i386, call), "Linux i386 {call}: {line}");
        assert_eq!(number(cells[4]), linux(&generic, call), "Linux aarch64 {call}: {line}");
        for (cell, n) in cells[1..].iter().zip([xnu(call), linux(&x86_64, call), linux(&i386, call), linux(&generic, call)]) {
            assert_eq!(n.is_none(), cell.starts_with('—'), "{call}: a missing call is shown as —: {line}");
        }
        rows += 1;
    }
    assert!(rows >= 11, "{page}");
}
