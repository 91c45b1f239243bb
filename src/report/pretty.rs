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

impl Pretty {
    /// A line break (after a comma unless `first`) and the current indentation.
    fn line<W: ?Sized + Write>(&self, w: &mut W, comma: bool) -> io::Result<()> {
        let start = if comma { 0 } else { 1 };
        let flat = self.depth.min(FLAT_LEVELS);
        w.write_all(&BREAKS[start..2 + 2 * flat])?;
        for _ in flat..self.depth {
            w.write_all(b"  ")?;
        }
        Ok(())
    }

    fn open<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.line(w, false)?;
        }
        w.write_all(bracket)
    }
}

impl Formatter for Pretty {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.line(w, !first)
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
        self.line(w, !first)
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
    let mut ser = serde_json::Serializer::with_formatter(w, Pretty::default());
    value.serialize(&mut ser)
}

#[cfg(test)]
mod tests {
    use super::*;
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
