//! The one output format: a row per field, at its file offset.
//!
//! ```text
//! offset  size  field          value       meaning
//! 0x0000     4  magic          0xfeedfacf  MH_MAGIC_64: ...
//! ```
//! Headings (`## ...`) open each structure; `region` rows describe runs of
//! bytes that are not header fields (code, the message, padding).

use std::fmt::Write;

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
