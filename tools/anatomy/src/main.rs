//! `anatomy FILE`: every header field of a Mach-O or ELF executable at its
//! file offset, and what each remaining run of bytes holds. The guide's
//! "anatomy" pages are this tool's output on the real hello binaries.

mod codesign;
mod elf;
mod macho;
mod table;

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "Print every header field of a Mach-O or ELF executable at its file offset")]
struct Args {
    /// The executable to explain (thin little-endian Mach-O, or ELF)
    file: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let data = match std::fs::read(&args.file) {
        Ok(d) => d,
        Err(e) => return fail(&args.file, &e.to_string()),
    };
    let text = match data.get(..4) {
        Some(b"\x7fELF") => elf::explain(&data),
        Some([0xcf, 0xfa, 0xed, 0xfe]) | Some([0xce, 0xfa, 0xed, 0xfe]) => macho::explain(&data),
        _ => Err("neither a little-endian Mach-O nor an ELF file".into()),
    };
    match text {
        Ok(t) => {
            print!("{}", t.trim_start());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&args.file, &e),
    }
}

fn fail(file: &std::path::Path, why: &str) -> ExitCode {
    eprintln!("anatomy: {}: {why}", file.display());
    ExitCode::FAILURE
}
