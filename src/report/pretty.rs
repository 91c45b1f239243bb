//! Indented JSON, byte for byte what `serde_json::to_writer_pretty` writes (two spaces a
//! level), with each line break and its indentation written as one piece. serde_json's own
//! pretty formatter writes the indentation one level at a time: a key four levels deep costs
//! five writes before the key itself, which made the pretty audit JSON cost 7% of a whole run
//! on the bench capture (its websocket rows are four levels deep).

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::Formatter;

/// Levels whose break is written as one slice; deeper ones add the rest a level at a time.
const FLAT_LEVELS: usize = 32;
/// ",\n" and the indentation of [`FLAT_LEVELS`] levels; a break without the comma starts at 1.
const BREAKS: [u8; 2 + 2 * FLAT_LEVELS] = {
    let mut b = [b' '; 2 + 2 * FLAT_LEVELS];
    b[0] = b',';
    b[1] = b'\n';
    b
};

/// The formatter: the current depth, and whether the innermost open array or object has a
/// value yet (it decides whether the closing bracket goes on a line of its own).
#[derive(Default)]
struct Pretty {
    depth: usize,
    has_value: bool,
}

/// A line break (after a comma if `comma`) and the indentation of `depth` levels.
fn line_break<W: ?Sized + Write>(w: &mut W, depth: usize, comma: bool) -> io::Result<()> {
    let start = if comma { 0 } else { 1 };
    let flat = depth.min(FLAT_LEVELS);
    w.write_all(&BREAKS[start..2 + 2 * flat])?;
    for _ in flat..depth {
        w.write_all(b"  ")?;
    }
    Ok(())
}

impl Pretty {
    fn open<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            line_break(w, self.depth, false)?;
        }
        w.write_all(bracket)
    }
}

/// Whether a character that JSON allows raw must still be escaped: DEL, the C1 controls
/// (U+0080-U+009F, among them the one-character CSI U+009B), the zero-width and bidi marks and
/// overrides, and the line and paragraph separators. Legal JSON, but `cat report.json` would
/// hand them to a terminal (names from the wire are attacker-controlled).
fn needs_escape(c: char) -> bool {
    matches!(c,
        '\u{7f}'..='\u{9f}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
        | '\u{feff}')
}

/// Writes a string fragment (serde_json has escaped quotes, backslashes and the C0 controls
/// already) with the characters of [`needs_escape`] as `\uXXXX`. A fragment of bytes below
/// 0x7F is written as it is.
fn write_safe_fragment<W: ?Sized + Write>(w: &mut W, fragment: &str) -> io::Result<()> {
    // Most strings are short and ASCII: one pass without a branch per byte (it vectorizes),
    // cheaper than a search's setup.
    let bytes = fragment.as_bytes();
    if !bytes.iter().fold(false, |seen, &b| seen | (b >= 0x7f)) {
        return w.write_all(bytes);
    }
    let mut start = 0;
    for (i, c) in fragment.char_indices() {
        if needs_escape(c) {
            w.write_all(fragment.get(start..i).unwrap_or("").as_bytes())?;
            write!(w, "\\u{:04x}", c as u32)?;
            start = i + c.len_utf8();
        }
    }
    w.write_all(fragment.get(start..).unwrap_or("").as_bytes())
}

/// serde_json's compact output, with [`write_safe_fragment`]'s escapes (NDJSON).
struct Compact;

impl Formatter for Compact {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_safe_fragment(w, fragment)
    }
}

/// Writes `value` as compact JSON (one line: NDJSON), the characters a terminal would act on
/// escaped.
pub fn to_writer_compact<W: Write, T: ?Sized + Serialize>(
    w: W,
    value: &T,
) -> serde_json::Result<()> {
    value.serialize(&mut serde_json::Serializer::with_formatter(w, Compact))
}

impl Formatter for Pretty {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_safe_fragment(w, fragment)
    }

    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        line_break(w, self.depth, !first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        line_break(w, self.depth, !first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// Writes `value` as indented JSON (the same bytes as `serde_json::to_writer_pretty`).
pub fn to_writer_pretty<W: Write, T: ?Sized + Serialize>(
    w: W,
    value: &T,
) -> serde_json::Result<()> {
    value_at(w, 0, value)
}

/// Writes `value` as it would appear `depth` levels deep in an indented document (its inner
/// lines indented for that depth; nothing before it).
pub fn value_at<W: Write, T: ?Sized + Serialize>(
    w: W,
    depth: usize,
    value: &T,
) -> serde_json::Result<()> {
    let pretty = Pretty {
        depth,
        has_value: false,
    };
    value.serialize(&mut serde_json::Serializer::with_formatter(w, pretty))
}

/// An indented document written piece by piece, for documents with a long array that is
/// rendered in parallel ([`Document::par_items`]). Each piece is written as serde_json's
/// pretty printer would write it in place; the caller opens and closes the objects and arrays
/// in the document's order.
pub struct Document<'w, W: Write> {
    w: &'w mut W,
    /// Per open object or array (outermost first): whether it has a member yet.
    open: Vec<bool>,
}

impl<'w, W: Write> Document<'w, W> {
    /// Starts a document whose top level is an object.
    pub fn object(w: &'w mut W) -> io::Result<Document<'w, W>> {
        w.write_all(b"{")?;
        Ok(Document {
            w,
            open: vec![false],
        })
    }

    /// Whether the next member of the innermost open object or array is its first (it has
    /// one from now on).
    fn first_member(&mut self) -> bool {
        self.open
            .last_mut()
            .is_none_or(|has| !std::mem::replace(has, true))
    }

    fn key(&mut self, key: &str) -> io::Result<()> {
        let comma = !self.first_member();
        line_break(self.w, self.open.len(), comma)?;
        serde_json::to_writer(&mut *self.w, key)?;
        self.w.write_all(b": ")
    }

    /// A member `key: value` of the innermost open object.
    pub fn field<T: ?Sized + Serialize>(&mut self, key: &str, value: &T) -> io::Result<()> {
        self.key(key)?;
        Ok(value_at(&mut *self.w, self.open.len(), value)?)
    }

    /// Opens an object or an array (`bracket`: `b"{"` or `b"["`) as member `key` of the
    /// innermost open object.
    pub fn open(&mut self, key: &str, bracket: &[u8]) -> io::Result<()> {
        self.key(key)?;
        self.open.push(false);
        self.w.write_all(bracket)
    }

    /// Closes the innermost open object or array (`bracket`: `b"}"` or `b"]"`).
    pub fn close(&mut self, bracket: &[u8]) -> io::Result<()> {
        if self.open.pop().unwrap_or(false) {
            line_break(self.w, self.open.len(), false)?;
        }
        self.w.write_all(bracket)
    }

    /// Appends `f` of every item to the innermost open array. The items are rendered on the
    /// current rayon pool, a window of them at a time (so memory stays bounded), each into
    /// its own buffer, and written in their order: the same bytes as rendering them one by one.
    pub fn par_items<'a, T: Sync, S: Serialize>(
        &mut self,
        items: &'a [T],
        f: impl Fn(&'a T) -> S + Sync,
    ) -> io::Result<()> {
        use rayon::prelude::*;
        const WINDOW: usize = 8192;
        const CHUNK: usize = 128;
        let depth = self.open.len();
        for window in items.chunks(WINDOW) {
            let first = self.first_member();
            let parts: Vec<serde_json::Result<Vec<u8>>> = window
                .par_chunks(CHUNK)
                .enumerate()
                .map(|(c, chunk)| {
                    let mut buf = Vec::with_capacity(chunk.len() * 512);
                    for (i, item) in chunk.iter().enumerate() {
                        let comma = !(first && c == 0 && i == 0);
                        line_break(&mut buf, depth, comma).map_err(serde_json::Error::io)?;
                        value_at(&mut buf, depth, &f(item))?;
                    }
                    Ok(buf)
                })
                .collect();
            for part in parts {
                self.w.write_all(&part?)?;
            }
        }
        Ok(())
    }

    /// Closes the top-level object.
    pub fn end(mut self) -> io::Result<()> {
        self.close(b"}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DEL, C1, zero-width, bidi and separator characters leave as `\uXXXX`, in the indented
    /// and the compact writer alike; everything else is serde_json's bytes.
    #[test]
    fn characters_a_terminal_acts_on_are_escaped() {
        let v = serde_json::json!({
            "k\u{9b}": ["a\u{7f}b", "csi\u{9b}31m", "rtl\u{202e}gnp", "\u{2066}x\u{2069}", "zw\u{200b}", "ls\u{2028}", "bom\u{feff}", "plain é ü 中", "tab\t\u{1b}"],
        });
        let mut pretty = Vec::new();
        to_writer_pretty(&mut pretty, &v).unwrap();
        let mut compact = Vec::new();
        to_writer_compact(&mut compact, &v).unwrap();
        for out in [&pretty, &compact] {
            let text = String::from_utf8(out.clone()).unwrap();
            assert!(!text.chars().any(needs_escape), "{text}");
            for esc in [
                "\\u009b", "\\u007f", "\\u202e", "\\u2066", "\\u2069", "\\u200b", "\\u2028",
                "\\ufeff", "\\u001b",
            ] {
                assert!(text.contains(esc), "{esc} in {text}");
            }
            assert!(text.contains("plain é ü 中"));
            // It reads back as the same value.
            assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), v);
        }
        assert_eq!(
            String::from_utf8(compact)
                .unwrap()
                .replace("\\u007f", "\u{7f}"),
            serde_json::to_string(&v)
                .unwrap()
                .replace("\u{9b}", "\\u009b")
                .replace("\u{202e}", "\\u202e")
                .replace("\u{2066}", "\\u2066")
                .replace("\u{2069}", "\\u2069")
                .replace("\u{200b}", "\\u200b")
                .replace("\u{2028}", "\\u2028")
                .replace("\u{feff}", "\\ufeff")
        );
    }
    use crate::rng::XorShift;
    use serde_json::{json, Map, Value};

    fn ours(v: &Value) -> String {
        let mut out = Vec::new();
        to_writer_pretty(&mut out, v).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    /// A random value up to `depth` levels deep, with empty arrays and objects among them.
    fn random(rng: &mut XorShift, depth: usize) -> Value {
        let pick = if depth == 0 {
            rng.next_u64() % 4
        } else {
            rng.next_u64() % 6
        };
        match pick {
            0 => Value::Null,
            1 => json!(rng.next_u64() % 1000),
            2 => json!(format!("s\"{}\n", rng.next_u64() % 10)),
            3 => json!(rng.next_u64() % 2 == 0),
            4 => Value::Array(
                (0..rng.next_u64() % 4)
                    .map(|_| random(rng, depth - 1))
                    .collect(),
            ),
            _ => {
                let mut m = Map::new();
                for i in 0..rng.next_u64() % 4 {
                    m.insert(format!("k{i}"), random(rng, depth - 1));
                }
                Value::Object(m)
            }
        }
    }

    #[test]
    fn same_bytes_as_serde_json() {
        let mut rng = XorShift::new(0x5eed_f1a5);
        for _ in 0..2000 {
            let v = random(&mut rng, 6);
            assert_eq!(
                ours(&v),
                serde_json::to_string_pretty(&v).expect("serde"),
                "{v}"
            );
        }
        for v in [
            json!([]),
            json!({}),
            json!([[], {}]),
            json!({"a": {"b": []}}),
            json!(1),
        ] {
            assert_eq!(ours(&v), serde_json::to_string_pretty(&v).expect("serde"));
        }
    }

    /// A document written piece by piece, with arrays of every length rendered in parallel
    /// (crossing the window and chunk sizes), equals the whole one.
    #[test]
    fn pieces_and_parallel_items_give_the_same_bytes() {
        let mut rng = XorShift::new(0x9a_11e1);
        for n in [0usize, 1, 2, 127, 128, 129, 300, 8191, 8192, 8193, 20_000] {
            let items: Vec<Value> = (0..n).map(|_| random(&mut rng, 3)).collect();
            let head = random(&mut rng, 3);
            // (json! objects keep their keys in sorted order.)
            let whole = json!({
                "empty": {},
                "head": head,
                "nested": {"after": {}, "before": [1, {}], "rows": items},
                "tail": "t",
            });
            let mut out = Vec::new();
            let mut doc = Document::object(&mut out).expect("write");
            doc.open("empty", b"{").expect("write");
            doc.close(b"}").expect("write");
            doc.field("head", &head).expect("write");
            doc.open("nested", b"{").expect("write");
            doc.field("after", &json!({})).expect("write");
            doc.field("before", &json!([1, {}])).expect("write");
            doc.open("rows", b"[").expect("write");
            doc.par_items(&items, |v| v).expect("write");
            doc.close(b"]").expect("write");
            doc.close(b"}").expect("write");
            doc.field("tail", "t").expect("write");
            doc.end().expect("write");
            let want = serde_json::to_string_pretty(&whole).expect("serde");
            assert_eq!(String::from_utf8(out).expect("utf-8"), want, "{n} items");
        }
    }

    #[test]
    fn deeper_than_the_flat_breaks() {
        let mut v = json!({"leaf": [1, 2]});
        for i in 0..FLAT_LEVELS + 5 {
            v = if i % 2 == 0 {
                json!([v, null])
            } else {
                json!({"x": v, "y": {}})
            };
        }
        assert_eq!(ours(&v), serde_json::to_string_pretty(&v).expect("serde"));
    }
}
