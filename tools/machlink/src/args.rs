//! The command line: what rustc hands a darwin `cc` (`-Wl,a,b` groups,
//! `-arch`, `-mmacosx-version-min=`) and the same options in ld64's own
//! spelling. Anything not understood is an error, never silently dropped.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::arch::Arch;
use crate::error::{Error, Result};

pub const HELP: &str = "\
usage: machlink [options] <object or archive>...

A static linker for XNU (macOS) x86_64 and i386 executables. It writes an
MH_EXECUTE image with __PAGEZERO, an r-x __TEXT segment, an rw- __DATA
segment when the program has writable data, an rw- segment for each one an
input names, LC_SYMTAB and LC_UNIXTHREAD, and nothing for dyld: addresses
are final (not PIE), GOT and non-lazy pointer slots are filled at link time,
and what needs dyld (thread-local variables, initialisers, lazy binding) is
refused. Archive members are loaded only to define undefined symbols, or,
as ld64 does, to replace a common symbol with a data definition.

Options (also accepted inside -Wl,a,b and after -Xlinker):
  -o <file>                    output (default: a.out)
  -arch x86_64|i386            architecture (default: that of the first input)
  -e <symbol>                  entry symbol (default: __start, Rust's _start)
  -dead_strip                  drop code and data the entry does not reach
  -static                      accepted: every image machlink makes is static
  -nostartfiles -nodefaultlibs -nostdlib
                               accepted: machlink adds no files or libraries
  -mmacosx-version-min=<v>, -macosx_version_min <v>
                               checked and accepted: the image records none
  -isysroot <dir>, -syslibroot <dir>, -L<dir>
                               accepted and unused: nothing is searched
  -l<name>, -framework <name>  refused: a static image links no libraries
  -plugin-opt=<o>, LLVM bitcode inputs
                               refused: machlink does not do LTO (rustc's
                               own -C lto works; -C linker-plugin-lto not)
  --help                       this text
";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub inputs: Vec<PathBuf>,
    pub output: PathBuf,
    pub arch: Option<Arch>,
    pub entry: String,
    pub dead_strip: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Link(Options),
}

/// The path after the last `-o`, read without parsing the rest: what a
/// failed parse should not leave behind.
pub fn output_of(args: &[OsString]) -> Option<PathBuf> {
    args.windows(2).rfind(|w| w[0] == "-o").map(|w| PathBuf::from(&w[1]))
}

pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command> {
    let args = expand_linker_groups(args)?;
    let mut opts = Options {
        inputs: Vec::new(),
        output: PathBuf::from("a.out"),
        arch: None,
        entry: "__start".to_string(),
        dead_strip: false,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let Some(text) = arg.to_str() else {
            opts.inputs.push(PathBuf::from(arg));
            continue;
        };
        if !text.starts_with('-') || text == "-" {
            opts.inputs.push(PathBuf::from(arg));
            continue;
        }
        let text = text.to_string();
        let mut value = |name: &str| -> Result<String> {
            it.next()
                .and_then(|v| v.into_string().ok())
                .ok_or_else(|| Error::usage(format!("{name} needs a value")))
        };
        match text.as_str() {
            "--help" | "-help" | "-h" => return Ok(Command::Help),
            "-o" => opts.output = PathBuf::from(value("-o")?),
            "-arch" => {
                let name = value("-arch")?;
                let arch = Arch::from_name(&name).ok_or_else(|| {
                    Error::usage(format!("unsupported architecture: {name} (x86_64 or i386)"))
                })?;
                if opts.arch.is_some_and(|a| a != arch) {
                    return Err(Error::usage("conflicting -arch options"));
                }
                opts.arch = Some(arch);
            }
            "-e" => opts.entry = value("-e")?,
            "-dead_strip" => opts.dead_strip = true,
            "-static" | "-nostartfiles" | "-nodefaultlibs" | "-nostdlib" => {}
            "-macosx_version_min" | "-macos_version_min" => check_version(&value(&text)?)?,
            "-isysroot" | "-syslibroot" | "-L" => {
                value(&text)?;
            }
            "-l" => return Err(no_libraries(&format!("-l{}", value("-l")?))),
            "-framework" => {
                return Err(no_libraries(&format!("-framework {}", value("-framework")?)));
            }
            _ => {
                if let Some(v) = text.strip_prefix("-mmacosx-version-min=") {
                    check_version(v)?;
                } else if text.starts_with("-L") {
                } else if text.starts_with("-l") {
                    return Err(no_libraries(&text));
                } else if text.starts_with("-plugin-opt") || text == "-plugin" {
                    // What `-C linker-plugin-lto` passes for the linker's
                    // LTO plugin: the objects that follow are LLVM bitcode.
                    return Err(Error::usage(format!("{text}: machlink does not do LTO (-C linker-plugin-lto); rustc's own -C lto works")));
                } else {
                    return Err(Error::usage(format!("unknown option: {text} (see --help)")));
                }
            }
        }
    }
    if opts.inputs.is_empty() {
        return Err(Error::usage("no input files"));
    }
    Ok(Command::Link(opts))
}

fn no_libraries(lib: &str) -> Error {
    Error::usage(format!("static images link no libraries: {lib}"))
}

/// Flattens the cc-level wrappers: `-Wl,-e,__start` is `-e __start`, and
/// `-Xlinker x` is `x`.
fn expand_linker_groups(args: impl IntoIterator<Item = OsString>) -> Result<Vec<OsString>> {
    let mut out = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.to_str() {
            Some(text) if text.starts_with("-Wl,") => {
                out.extend(text["-Wl,".len()..].split(',').filter(|s| !s.is_empty()).map(OsString::from));
            }
            Some("-Xlinker") => {
                out.push(it.next().ok_or_else(|| Error::usage("-Xlinker needs a value"))?);
            }
            _ => out.push(arg),
        }
    }
    Ok(out)
}

fn check_version(v: &str) -> Result<()> {
    let ok = !v.is_empty()
        && v.split('.').count() <= 3
        && v.split('.').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!("malformed macOS version: {v}")))
    }
}
