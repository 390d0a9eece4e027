//! The one output format: a row per field, at its file offset.
//!
//! ```text
//! offset  size  field          value       meaning
//! 0x0000     4  magic          0xfeedfacf  MH_MAGIC_64: ...
//! ```
//! Headings (`## ...`) open each structure; `region` rows describe runs of
//! bytes that are not header fields (code, the message, padding). The
//! rows are kept, not printed as they come: the HTML view (html.rs) draws
//! the same rows.

use std::fmt::Write;

pub type R<T> = Result<T, String>;

/// Reads a `T` at `offset`, or says which structure ran past the end.
pub fn at<'a, T: object::Pod>(data: &'a [u8], offset: usize, what: &str) -> R<&'a T> {
    data.get(offset..)
        .and_then(|d| object::pod::from_bytes::<T>(d).ok())
        .map(|(t, _)| t)
        .ok_or_else(|| format!("{what} at {offset:#x} runs past the end of the file"))
}

/// Writes one row for the field `$field` of the structure `$s` (of type
/// `$S`, little-endian) found at `$base`: offset and width from the type.
/// The value shown is the field's raw number, whichever of `object`'s typed
/// wrappers (`CpuType`, `VmProt`, ...) the field is declared with.
/// `$field = $value` shows `$value` instead, for a field whose wrapper is
/// wider than the field (ELF32's `sh_flags`, a `u64` wrapper in 32 bits).
macro_rules! f {
    ($t:expr, $base:expr, $S:ty, $s:expr, $field:ident, $meaning:expr) => {
        $crate::table::f!($t, $base, $S, $s, $field = object::Wrap::into_inner($s.$field.get(object::LittleEndian)), $meaning)
    };
    ($t:expr, $base:expr, $S:ty, $s:expr, $field:ident = $value:expr, $meaning:expr) => {
        $t.field(
            $base + std::mem::offset_of!($S, $field),
            std::mem::size_of_val(&$s.$field),
            stringify!($field),
            $value,
            &$meaning,
        )
    };
}
pub(crate) use f;

/// What a run of bytes is: each heading says what the fields under it
/// are, and each region what it holds. The text view does not show it; the
/// HTML view colours every byte by it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Header,
    Command,
    ProgramHeader,
    SectionHeader,
    Code,
    Data,
    Strings,
    Symbols,
    Linkedit,
    Signature,
    Padding,
    /// Bytes no field or region names.
    Unknown,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::Header,
        Kind::Command,
        Kind::ProgramHeader,
        Kind::SectionHeader,
        Kind::Code,
        Kind::Data,
        Kind::Strings,
        Kind::Symbols,
        Kind::Linkedit,
        Kind::Signature,
        Kind::Padding,
        Kind::Unknown,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Header => "file header",
            Kind::Command => "load commands",
            Kind::ProgramHeader => "program headers",
            Kind::SectionHeader => "section headers",
            Kind::Code => "machine code",
            Kind::Data => "data",
            Kind::Strings => "string tables",
            Kind::Symbols => "symbol table",
            Kind::Linkedit => "link-edit data",
            Kind::Signature => "code signature",
            Kind::Padding => "padding",
            Kind::Unknown => "not described",
        }
    }
}

/// One row: a header field (with a value), or a region, a run of bytes
/// that is not one (without).
pub struct Row {
    pub offset: usize,
    pub size: usize,
    pub name: String,
    pub value: Option<String>,
    pub meaning: String,
    pub kind: Kind,
    /// Index into [`Table::headings`]: the structure the row belongs to.
    pub heading: usize,
    /// A region whose bytes other rows show field by field (the ELF
    /// header as a whole, the code signature): a line of the text's
    /// layout, not bytes of its own.
    pub summary: bool,
}

enum Line {
    Heading(usize),
    Row(Row),
    Note(String),
}

/// The one data model both views are made from: rows under headings, in
/// the order the decoders found them.
pub struct Table {
    lines: Vec<Line>,
    headings: Vec<String>,
    kind: Kind,
}

impl Default for Table {
    fn default() -> Self {
        Table { lines: Vec::new(), headings: Vec::new(), kind: Kind::Unknown }
    }
}

impl Table {
    /// Opens a structure; `kind` is what its fields are.
    pub fn heading(&mut self, kind: Kind, text: &str) {
        self.kind = kind;
        self.headings.push(text.to_string());
        self.lines.push(Line::Heading(self.headings.len() - 1));
    }

    /// A header field: where it is, how wide, what it holds, why.
    pub fn field(&mut self, offset: usize, size: usize, name: &str, value: impl Into<Value>, meaning: &str) {
        let value = match value.into() {
            Value::Num(n) => format!("{n:#x}"),
            Value::Text(t) => t,
        };
        let kind = self.kind;
        self.push(Row { offset, size, name: name.into(), value: Some(value), meaning: meaning.into(), kind, heading: 0, summary: false });
    }

    /// Bytes that are not a header field.
    pub fn region(&mut self, kind: Kind, offset: usize, size: usize, name: &str, what: &str) {
        self.push(Row { offset, size, name: name.into(), value: None, meaning: what.into(), kind, heading: 0, summary: false });
    }

    /// Bytes shown field by field under other headings, named as a whole.
    pub fn summary(&mut self, offset: usize, size: usize, name: &str, what: &str) {
        let kind = self.kind;
        self.push(Row { offset, size, name: name.into(), value: None, meaning: what.into(), kind, heading: 0, summary: true });
    }

    /// Files the row under the heading last opened.
    fn push(&mut self, row: Row) {
        let heading = self.headings.len().saturating_sub(1);
        self.lines.push(Line::Row(Row { heading, ..row }));
    }

    pub fn note(&mut self, text: &str) {
        self.lines.push(Line::Note(text.to_string()));
    }

    pub fn headings(&self) -> &[String] {
        &self.headings
    }

    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.lines.iter().filter_map(|l| match l {
            Line::Row(r) => Some(r),
            _ => None,
        })
    }

    /// The text view: a table per heading, notes as they came.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            let _ = match line {
                Line::Heading(h) => writeln!(
                    out,
                    "\n## {}\n{:<8} {:>5}  {:<16} {:<20} meaning",
                    self.headings[*h], "offset", "size", "field", "value"
                ),
                Line::Row(Row { offset, size, name, value: Some(value), meaning, .. }) => {
                    // A name or value as wide as its column still gets two
                    // spaces after it, so the columns stay apart.
                    let name = if name.len() >= 16 { format!("{name} ") } else { name.to_string() };
                    let value = if value.len() >= 20 { format!("{value} ") } else { value.to_string() };
                    writeln!(out, "{offset:#06x}   {size:>5}  {name:<16} {value:<20} {meaning}")
                }
                Line::Row(Row { offset, size, name, meaning, .. }) => writeln!(out, "{offset:#06x}   {size:>5}  {name:<16} {meaning}"),
                Line::Note(text) => writeln!(out, "{text}"),
            };
        }
        out
    }
}

pub enum Value {
    Num(u64),
    Text(String),
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Num(n)
    }
}
impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::Num(n.into())
    }
}
impl From<u16> for Value {
    fn from(n: u16) -> Self {
        Value::Num(n.into())
    }
}
impl From<u8> for Value {
    fn from(n: u8) -> Self {
        Value::Num(n.into())
    }
}
impl From<String> for Value {
    fn from(t: String) -> Self {
        Value::Text(t)
    }
}
impl From<&str> for Value {
    fn from(t: &str) -> Self {
        Value::Text(t.to_string())
    }
}

/// Bytes as a short hex string, e.g. for code.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// Bytes as a quoted string with C escapes, e.g. for the message.
pub fn quoted(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes {
        match b {
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s.push('"');
    s
}
