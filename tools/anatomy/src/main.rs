//! `anatomy FILE`: every header field of a Mach-O or ELF executable at its
//! file offset, and what each remaining run of bytes holds. The guide's
//! "anatomy" pages are this tool's output on the real hello binaries.
//! `anatomy --html FILE` draws the same rows over the file's hex dump.

mod codesign;
mod elf;
mod html;
mod macho;
mod table;

use clap::Parser;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    version,
    about = "Print every header field of a Mach-O or ELF executable at its file offset",
    after_help = "Example: anatomy --html -o hello.html target/x86_64-apple-darwin/release/hello, then open hello.html in a browser"
)]
struct Args {
    /// The executable to explain (thin little-endian Mach-O, or ELF)
    file: PathBuf,
    /// Write one self-contained HTML page instead of text (no network, no
    /// other files): the file's hex dump coloured by structure, every byte
    /// in exactly one field, each field explained beside it and on hover
    #[arg(long)]
    html: bool,
    /// Write to OUT instead of standard output: the whole of it, or on any
    /// error no file at all
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("anatomy: {why}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let file = args.file.display();
    let data = std::fs::read(&args.file).map_err(|e| format!("{file}: {e}"))?;
    let table = match data.get(..4) {
        Some(b"\x7fELF") => elf::explain(&data),
        Some([0xcf, 0xfa, 0xed, 0xfe]) | Some([0xce, 0xfa, 0xed, 0xfe]) => macho::explain(&data),
        _ => Err("neither a little-endian Mach-O nor an ELF file".into()),
    }
    .map_err(|e| format!("{file}: {e}"))?;
    let out = if args.html {
        html::page(&file.to_string(), &data, &table).map_err(|e| format!("{file}: {e}"))?
    } else {
        table.text().trim_start().to_string()
    };
    match &args.output {
        Some(path) => write_whole(path, &out),
        None => std::io::stdout()
            .write_all(out.as_bytes())
            .map_err(|e| format!("standard output: {e}")),
    }
}

/// Writes `text` to a file beside `path`, then renames it into place:
/// a failure part-way leaves no partial file at `path`.
fn write_whole(path: &Path, text: &str) -> Result<(), String> {
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let tmp = path.with_file_name(format!(
        ".{}.anatomy-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("{}: {e}", path.display())
        })
}
