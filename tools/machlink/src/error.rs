//! The one error every failure becomes: a single line naming the file (when
//! there is one) and what is wrong with it, printed as `machlink: ...`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    file: Option<String>,
    what: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(file: impl Into<String>, what: impl Into<String>) -> Error {
        Error { file: Some(file.into()), what: what.into() }
    }

    /// An error about the command line rather than about a file.
    pub fn usage(what: impl Into<String>) -> Error {
        Error { file: None, what: what.into() }
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    pub fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Callers and tests rely on exactly one line, whatever a file name or
        // an `object` message contains.
        let one_line = |s: &str| s.replace(['\n', '\r'], " ");
        match &self.file {
            Some(file) => write!(f, "machlink: {}: {}", one_line(file), one_line(&self.what)),
            None => write!(f, "machlink: {}", one_line(&self.what)),
        }
    }
}

impl std::error::Error for Error {}

/// Attaches a file name to an error from the `object` crate.
pub trait Context<T> {
    fn in_file(self, file: &str, what: &str) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, object::read::Error> {
    fn in_file(self, file: &str, what: &str) -> Result<T> {
        self.map_err(|e| Error::new(file, format!("{what}: {e}")))
    }
}
