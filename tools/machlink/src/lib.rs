//! machlink: a small, strict static linker for XNU (macOS) x86_64 and i386
//! executables, enough to link a freestanding program on any host.
//!
//! The stages form layers, data flowing one way (read -> resolve -> lay
//! out -> write); a module uses only the ones listed before it:
//!
//! - foundations: [`arch`], [`error`], [`format`] (the Mach-O
//!   structures, 32- or 64-bit),
//!   [`model`] (sections, symbols, decoded relocations);
//! - read: [`args`] (the command line), [`fixup`] (relocation entries),
//!   [`input`] (objects and archives);
//! - resolve: [`synthetic`] (linker-made objects), [`resolve`] (symbols,
//!   archive members), [`placement`] (which segment a section goes to),
//!   [`atoms`] (splitting, dead-stripping);
//! - lay out: [`layout`] (addresses, GOT), [`relocate`] (section bytes),
//!   [`symtab`];
//! - write: [`write`] (headers and file), [`output`] (the file put in
//!   place).

pub mod arch;
pub mod args;
pub mod atoms;
pub mod error;
pub mod fixup;
pub mod format;
pub mod input;
pub mod layout;
pub mod model;
pub mod output;
pub mod placement;
pub mod relocate;
pub mod resolve;
pub mod symtab;
pub mod synthetic;
pub mod write;

use std::ffi::OsString;

pub use arch::Arch;
pub use error::{Error, Result};
pub use input::InputFile;

/// Links in memory: the image's bytes, or the first error. `image` names
/// the output in errors that concern no particular input.
pub fn link(files: &[InputFile], arch: Option<Arch>, entry: &str, dead_strip: bool, image: &str) -> Result<Vec<u8>> {
    let inputs = input::read(files, arch)?;
    let res = resolve::resolve(inputs, entry)?;
    let atoms = atoms::Atoms::new(&res);
    let live = atoms::live(&res, &atoms, entry, dead_strip, image)?;
    let layout = layout::layout(&res, &atoms, &live, entry, image)?;
    let contents = relocate::contents(&res, &atoms, &layout)?;
    let symtab = symtab::collect(&res, &atoms, &layout);
    write::image(&layout, contents, &symtab, image)
}

fn link_options(opts: &args::Options) -> Result<()> {
    let files = opts.inputs.iter().map(|path| InputFile::open(path)).collect::<Result<Vec<_>>>()?;
    let image = opts.output.display().to_string();
    let bytes = link(&files, opts.arch, &opts.entry, opts.dead_strip, &image)?;
    output::write_atomically(&opts.output, &bytes)
}

/// The whole program: returns the exit status.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = args.into_iter().collect();
    match args::parse(args.clone()) {
        Ok(args::Command::Help) => {
            print!("{}", args::HELP);
            0
        }
        Ok(args::Command::Link(opts)) => match link_options(&opts) {
            Ok(()) => 0,
            Err(e) => {
                if !opts.inputs.contains(&opts.output) {
                    output::remove_stale(&opts.output);
                }
                eprintln!("{e}");
                1
            }
        },
        Err(e) => {
            // A bad command line fails the link too: whatever an earlier
            // link left at `-o` must not pass for this one's output.
            // (Unless the same path is also an input.)
            if let Some(out) = args::output_of(&args)
                && args.iter().filter(|a| **a == *out.as_os_str()).count() == 1
            {
                output::remove_stale(&out);
            }
            eprintln!("{e}");
            1
        }
    }
}
