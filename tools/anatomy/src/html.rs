//! `anatomy --html`: the rows of the text view drawn over the file's own
//! bytes, in the manner of Ange Albertini's file-format posters: a hex
//! dump coloured by what each byte is, each field's explanation beside the
//! line where it starts, and in a panel when pointed at.
//!
//! One self-contained page: the style and script are inline (html/page.css,
//! html/page.js) and the bytes and rows travel in it as JSON, so it opens
//! from a file with nothing fetched. The script draws the dump, then checks
//! what it drew against the data, byte by byte, and writes its verdict into
//! the page (`#check`), where a reader and the tests both find it.

use crate::table::{Kind, R, Table, hex};
use std::fmt::Write;

/// The page draws one element per byte; past this many a browser slows
/// to a crawl, and the page would be no use.
const MAX_BYTES: usize = 1 << 20;

/// A field as the page draws it: a row of the table, or bytes no row
/// names. Its bytes on the page are `start..end`: all of `offset..offset +
/// size` but any a field before it claimed first.
struct Field<'a> {
    offset: usize,
    size: usize,
    start: usize,
    end: usize,
    kind: Kind,
    /// None for bytes no row names.
    heading: Option<usize>,
    name: &'a str,
    value: Option<&'a str>,
    meaning: String,
}

pub fn page(file: &str, data: &[u8], t: &Table) -> R<String> {
    if data.len() > MAX_BYTES {
        return Err(format!(
            "{} bytes: --html draws every byte, and stops at {MAX_BYTES}",
            data.len()
        ));
    }
    let fields = partition(t, data);
    let mut headings: Vec<&str> = t.headings().iter().map(String::as_str).collect();
    headings.push("bytes no row names");

    let mut out = String::new();
    let name = escape(file);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width\">\n<title>anatomy: {name}</title>\n<style>\n{}{}</style>\n</head>\n<body>\n<header>\n\
         <h1>The anatomy of <code>{name}</code></h1>\n\
         <p>{} bytes, each in exactly one field, coloured by what it is. Beside each line, the fields that start on it; \
         point at a byte or a field for the whole of it, click to keep it. \
         These are the rows <code>anatomy {name}</code> prints, from the same reading of the file.</p>\n<ul id=\"legend\">\n",
        include_str!("html/page.css"),
        colours(),
        data.len()
    );
    for (i, kind) in Kind::ALL.iter().enumerate() {
        let bytes: usize = fields
            .iter()
            .filter(|f| f.kind == *kind)
            .map(|f| f.end - f.start)
            .sum();
        if bytes > 0 {
            let _ = writeln!(
                out,
                "<li class=\"k{i}\"><span class=\"sw\"></span>{} <b>{bytes}</b></li>",
                kind.label()
            );
        }
    }
    out.push_str(
        "</ul>\n<p id=\"check\" data-verdict=\"pending\">self-check: not run (drawing and checking the dump need JavaScript)</p>\n\
         </header>\n<main>\n<div id=\"dump\"></div>\n<aside id=\"info\"></aside>\n</main>\n<script type=\"application/json\" id=\"data\">\n",
    );

    // One item a line, so that a changed page differs only where the file did.
    let _ = write!(out, "{{\"size\": {},\n\"kinds\": [", data.len());
    out.push_str(
        &Kind::ALL
            .iter()
            .map(|k| json(k.label()))
            .collect::<Vec<_>>()
            .join(", "),
    );
    out.push_str("],\n\"headings\": [\n");
    out.push_str(
        &headings
            .iter()
            .map(|h| json(h))
            .collect::<Vec<_>>()
            .join(",\n"),
    );
    out.push_str("],\n\"fields\": [\n");
    let rows: Vec<String> = fields
        .iter()
        .map(|f| {
            let kind = Kind::ALL
                .iter()
                .position(|k| *k == f.kind)
                .unwrap_or_default();
            let value = f.value.map_or("null".into(), json);
            let heading = f.heading.unwrap_or(headings.len() - 1);
            format!(
                "[{}, {}, {kind}, {heading}, {}, {value}, {}]",
                f.offset,
                f.size,
                json(f.name),
                json(&f.meaning)
            )
        })
        .collect();
    out.push_str(&rows.join(",\n"));
    // The drawing order, kept apart from the fields so that the page's
    // check sees what was drawn, not what was meant.
    out.push_str("],\n\"spans\": [\n");
    let spans: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| format!("[{}, {}, {i}]", f.start, f.end - f.start))
        .collect();
    out.push_str(&spans.join(",\n"));
    out.push_str("],\n\"hex\": [\n");
    let lines: Vec<String> = data
        .chunks(16)
        .map(|c| format!("\"{}\"", hex(c).replace(' ', "")))
        .collect();
    out.push_str(&lines.join(",\n"));
    let _ = write!(
        out,
        "]}}\n</script>\n<script>\n{}</script>\n</body>\n</html>\n",
        include_str!("html/page.js")
    );
    Ok(out)
}

/// The name of bytes no row names.
const UNNAMED: &str = "not described";

/// Every byte of the file in exactly one field, in file order: the table's
/// rows, but for its summaries (whose bytes other rows show field by
/// field). Where two rows claim a byte, the one that starts first keeps
/// it, and the other says so (one wholly inside another is left out);
/// bytes no row claims are a field of their own.
fn partition<'a>(t: &'a Table, data: &[u8]) -> Vec<Field<'a>> {
    let mut rows: Vec<_> = t
        .rows()
        .filter(|r| !r.summary && r.size > 0 && r.offset < data.len())
        .collect();
    rows.sort_by_key(|r| r.offset);
    let mut fields: Vec<Field> = Vec::new();
    let mut next = 0;
    for r in rows {
        let end = r.offset.saturating_add(r.size).min(data.len());
        if end <= next {
            continue;
        }
        if r.offset > next {
            fields.push(unnamed(data, next, r.offset));
        }
        let mut meaning = r.meaning.clone();
        if r.offset < next {
            let _ = write!(
                meaning,
                " [bytes {:#x}..{next:#x} are drawn in the field before, which starts first]",
                r.offset
            );
        }
        let start = r.offset.max(next);
        let (value, heading) = (r.value.as_deref(), Some(r.heading));
        fields.push(Field {
            offset: r.offset,
            size: r.size,
            start,
            end,
            kind: r.kind,
            heading,
            name: &r.name,
            value,
            meaning,
        });
        next = end;
    }
    if next < data.len() {
        fields.push(unnamed(data, next, data.len()));
    }
    fields
}

fn unnamed(data: &[u8], from: usize, to: usize) -> Field<'static> {
    let bytes = &data[from..to];
    let what = if bytes.iter().all(|&b| b == 0) {
        "zeros".to_string()
    } else {
        hex(&bytes[..bytes.len().min(32)])
    };
    Field {
        offset: from,
        size: to - from,
        start: from,
        end: to,
        kind: Kind::Unknown,
        heading: None,
        name: UNNAMED,
        value: None,
        meaning: format!(
            "{} bytes no header field or region of anatomy's names: {what}",
            to - from
        ),
    }
}

/// Each kind's colour, as the class `kN` (N its place in `Kind::ALL`).
fn colours() -> String {
    Kind::ALL
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let c = match k {
                Kind::Header => "#f79c9c",
                Kind::Command => "#f9bd72",
                Kind::ProgramHeader => "#f9bd72",
                Kind::SectionHeader => "#f3e07a",
                Kind::Code => "#93d78f",
                Kind::Data => "#7fc3f5",
                Kind::Strings => "#9fe0d6",
                Kind::Symbols => "#c6b1f7",
                Kind::Linkedit => "#f7b0dc",
                Kind::Signature => "#d9bd98",
                Kind::Padding => "#ebebeb",
                Kind::Unknown => "#ffffff",
            };
            format!(".k{i} {{ --c: {c}; }}\n")
        })
        .collect()
}

/// Text for HTML outside the script.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A JSON string that is safe inside `<script>`: no `</script>` or `<!--`
/// can form, since `<`, `>` and `&` are written as escapes.
fn json(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\0'..='\u{1f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[(usize, usize, &str)]) -> Table {
        let mut t = Table::default();
        t.heading(Kind::Header, "h");
        for &(offset, size, name) in rows {
            t.field(offset, size, name, 0u8, "");
        }
        t
    }

    fn drawn(t: &Table, len: usize) -> Vec<(usize, usize, String)> {
        partition(t, &vec![0; len])
            .into_iter()
            .map(|f| (f.start, f.end, f.name.to_string()))
            .collect()
    }

    #[test]
    fn gaps_become_fields_and_overlaps_go_to_the_first() {
        let t = table(&[
            (2, 2, "a"),
            (3, 3, "b"),
            (4, 1, "inside b"),
            (8, 10, "past the end"),
        ]);
        assert_eq!(
            drawn(&t, 12),
            [
                (0, 2, UNNAMED.into()),
                (2, 4, "a".into()),
                (4, 6, "b".into()),
                (6, 8, UNNAMED.into()),
                (8, 12, "past the end".into())
            ]
        );
        let f = partition(&t, &[0; 12]);
        assert!(
            f[2].meaning.contains("bytes 0x3..0x4 are drawn in the field before"),
            "{}",
            f[2].meaning
        );
    }

    #[test]
    fn summaries_draw_nothing() {
        let mut t = table(&[(0, 4, "x")]);
        t.summary(0, 8, "all", "(fields above)");
        assert_eq!(drawn(&t, 8), [(0, 4, "x".into()), (4, 8, UNNAMED.into())]);
    }

    #[test]
    fn json_cannot_close_the_script() {
        assert_eq!(
            json("</script><!--\"\\\n"),
            "\"\\u003c/script\\u003e\\u003c!--\\\"\\\\\\u000a\""
        );
    }
}
