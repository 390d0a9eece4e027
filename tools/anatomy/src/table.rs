//! The one output format: a row per field, at its file offset.
//!
//! ```text
//! offset  size  field          value       meaning
//! 0x0000     4  magic          0xfeedfacf  MH_MAGIC_64: ...
//! ```
//! Headings (`## ...`) open each structure; `region` rows describe runs of
//! bytes that are not header fields (code, the message, padding).

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

#[derive(Default)]
pub struct Table {
    out: String,
}

impl Table {
    pub fn heading(&mut self, text: &str) {
        let _ = writeln!(self.out, "\n## {text}");
        let _ = writeln!(self.out, "{:<8} {:>5}  {:<16} {:<20} meaning", "offset", "size", "field", "value");
    }

    /// A header field: where it is, how wide, what it holds, why.
    pub fn field(&mut self, offset: usize, size: usize, name: &str, value: impl Into<Value>, meaning: &str) {
        let value = match value.into() {
            Value::Num(n) => format!("{n:#x}"),
            Value::Text(t) => t,
        };
        // A name or value as wide as its column still gets two spaces
        // after it, so the columns stay apart.
        let name = if name.len() >= 16 { format!("{name} ") } else { name.to_string() };
        let value = if value.len() >= 20 { format!("{value} ") } else { value };
        let _ = writeln!(self.out, "{offset:#06x}   {size:>5}  {name:<16} {value:<20} {meaning}");
    }

    /// Bytes that are not a header field.
    pub fn region(&mut self, offset: usize, size: usize, name: &str, what: &str) {
        let _ = writeln!(self.out, "{offset:#06x}   {size:>5}  {name:<16} {what}");
    }

    pub fn note(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }

    pub fn finish(self) -> String {
        self.out
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
