//! Host names and host patterns: normalization (case, trailing dot, IDNA to ASCII) and the
//! pattern grammar (`*.` prefix, `<placeholder>` labels, literal labels).

use std::borrow::Cow;
use std::fmt;

/// Longest name accepted, in bytes of its ASCII form (DNS allows 253; a little slack is kept so
/// that a name with a trailing dot or an odd SNI is still compared, never truncated).
pub const MAX_NAME_LEN: usize = 1024;

/// Brings a host name to the form every comparison uses: ASCII lower case, no trailing dot,
/// each non-ASCII label replaced by its punycode A-label (`xn--...`). The full stops that IDNA
/// maps to `.` (U+3002, U+FF0E, U+FF61) separate labels too.
///
/// Returns `None` for a name that can match nothing: empty, an empty label (`a..b`, `.a`),
/// longer than [`MAX_NAME_LEN`], or a label punycode cannot encode.
///
/// Only lower-casing and the full stops are taken from the UTS 46 mapping; Unicode
/// normalization (NFC) is not applied, so a name spelled with combining marks stays distinct
/// from its precomposed form.
pub fn normalize(name: &str) -> Option<Cow<'_, str>> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let b = name.as_bytes();
    if b.is_empty() || b.len() > MAX_NAME_LEN {
        return None;
    }
    // One pass over ASCII names: upper case? empty label? non-ASCII?
    let mut upper = false;
    let mut ascii = true;
    let mut prev = b'.';
    for &c in b {
        if c == b'.' && prev == b'.' {
            return None;
        }
        upper |= c.is_ascii_uppercase();
        ascii &= c.is_ascii();
        prev = c;
    }
    if ascii {
        if prev == b'.' {
            return None;
        }
        return Some(if upper {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        });
    }
    // Non-ASCII: map the IDNA full stops, lower-case, punycode each non-ASCII label.
    let mapped: String = name
        .chars()
        .map(|c| match c {
            '\u{3002}' | '\u{ff0e}' | '\u{ff61}' => '.',
            c => c,
        })
        .collect();
    let mapped = mapped.strip_suffix('.').unwrap_or(&mapped);
    let mut out = String::with_capacity(mapped.len() + 8);
    for (i, label) in mapped.split('.').enumerate() {
        if label.is_empty() {
            return None;
        }
        if i > 0 {
            out.push('.');
        }
        if label.is_ascii() {
            out.extend(label.chars().map(|c| c.to_ascii_lowercase()));
        } else {
            let lower: Vec<char> = label.chars().flat_map(char::to_lowercase).collect();
            out.push_str("xn--");
            out.push_str(&punycode_encode(&lower)?);
        }
    }
    if out.is_empty() || out.len() > MAX_NAME_LEN {
        return None;
    }
    Some(Cow::Owned(out))
}

/// Punycode (RFC 3492) encoding of one label, without the `xn--` prefix. `None` on overflow.
pub fn punycode_encode(input: &[char]) -> Option<String> {
    const BASE: u32 = 36;
    const T_MIN: u32 = 1;
    const T_MAX: u32 = 26;
    const SKEW: u32 = 38;
    const DAMP: u32 = 700;
    const INITIAL_BIAS: u32 = 72;
    const INITIAL_N: u32 = 128;

    fn adapt(mut delta: u32, points: u32, first: bool) -> u32 {
        delta /= if first { DAMP } else { 2 };
        delta += delta / points;
        let mut k = 0;
        while delta > ((BASE - T_MIN) * T_MAX) / 2 {
            delta /= BASE - T_MIN;
            k += BASE;
        }
        k + (BASE - T_MIN + 1) * delta / (delta + SKEW)
    }
    fn digit(d: u32) -> char {
        // 0..=25 are a..z, 26..=35 are 0..9
        if d < 26 {
            (b'a' + d as u8) as char
        } else {
            (b'0' + (d - 26) as u8) as char
        }
    }

    let mut out: String = input.iter().filter(|c| c.is_ascii()).collect();
    let basic = out.len() as u32;
    if basic > 0 {
        out.push('-');
    }
    let total = input.len() as u32;
    let mut handled = basic;
    let mut n = INITIAL_N;
    let mut delta: u32 = 0;
    let mut bias = INITIAL_BIAS;
    while handled < total {
        let m = input.iter().map(|&c| c as u32).filter(|&c| c >= n).min()?;
        delta = delta.checked_add((m - n).checked_mul(handled + 1)?)?;
        n = m;
        for &c in input {
            let c = c as u32;
            if c < n {
                delta = delta.checked_add(1)?;
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = if k <= bias {
                        T_MIN
                    } else if k >= bias + T_MAX {
                        T_MAX
                    } else {
                        k - bias
                    };
                    if q < t {
                        break;
                    }
                    out.push(digit(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                out.push(digit(q));
                bias = adapt(delta, handled + 1, handled == basic);
                delta = 0;
                handled += 1;
            }
        }
        delta = delta.checked_add(1)?;
        n = n.checked_add(1)?;
    }
    Some(out)
}

/// One label of a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Label {
    /// Must equal this (normalized) label.
    Literal(String),
    /// `<name>`: exactly one label, any value unless filled.
    Placeholder(String),
}

/// A parsed host pattern: an optional leading `*.` (one or more labels) followed by literal and
/// placeholder labels, left to right as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    /// The normalized text, e.g. `*.tundra.<region>.api.azureml.ms`.
    pub text: String,
    /// `true` when the pattern starts with `*.`.
    pub wildcard: bool,
    /// The labels after the wildcard, left to right.
    pub labels: Vec<Label>,
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Placeholder names accepted in patterns: lower-case letters, digits and `-`, starting with a
/// letter (`region`, `storage`, `acr`, `workspace-id`, or any other the catalog uses).
pub fn valid_placeholder_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// A literal label of a pattern (after normalization): letters, digits, `-` and `_`, at most
/// 63 bytes.
pub fn valid_literal_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
}

impl Pattern {
    /// Parses a host pattern. Grammar (after trimming spaces): `[*.]label(.label)*`, where a
    /// label is a literal (letters, digits, `-`, `_`, or Unicode, stored as its punycode
    /// A-label) or a `<placeholder>`; at least one label must be a literal; a trailing dot is
    /// ignored; case does not matter.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(PatternError("empty host pattern".into()));
        }
        let (wildcard, rest) = match t.strip_prefix("*.") {
            Some(r) => (true, r),
            None => (false, t),
        };
        if rest.contains('*') {
            return Err(PatternError(format!(
                "`{t}`: `*` may only stand alone as the first label (`*.example.com`)"
            )));
        }
        let norm = normalize(rest)
            .ok_or_else(|| PatternError(format!("`{t}`: empty label or not a valid host name")))?;
        let mut labels = Vec::new();
        for l in norm.split('.') {
            if let Some(inner) = l.strip_prefix('<') {
                let Some(name) = inner.strip_suffix('>') else {
                    return Err(PatternError(format!(
                        "`{t}`: placeholder `{l}` must be a whole label written `<name>`"
                    )));
                };
                if !valid_placeholder_name(name) {
                    return Err(PatternError(format!(
                        "`{t}`: bad placeholder name `{name}` (use letters, digits and `-`)"
                    )));
                }
                labels.push(Label::Placeholder(name.to_string()));
            } else if l.contains(['<', '>']) {
                return Err(PatternError(format!(
                    "`{t}`: placeholder in `{l}` must be a whole label written `<name>`"
                )));
            } else if !valid_literal_label(l) {
                return Err(PatternError(format!(
                    "`{t}`: label `{l}` has characters a host name cannot have (or is longer than 63)"
                )));
            } else {
                labels.push(Label::Literal(l.to_string()));
            }
        }
        if !labels.iter().any(|l| matches!(l, Label::Literal(_))) {
            return Err(PatternError(format!(
                "`{t}`: a pattern needs at least one literal label"
            )));
        }
        let text = if wildcard {
            format!("*.{norm}")
        } else {
            norm.into_owned()
        };
        Ok(Pattern {
            text,
            wildcard,
            labels,
        })
    }

    /// The placeholder names used, left to right.
    pub fn placeholders(&self) -> impl Iterator<Item = &str> {
        self.labels.iter().filter_map(|l| match l {
            Label::Placeholder(p) => Some(p.as_str()),
            Label::Literal(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn punycode_vectors() {
        let enc = |s: &str| punycode_encode(&s.chars().collect::<Vec<_>>()).unwrap();
        assert_eq!(enc("münchen"), "mnchen-3ya");
        assert_eq!(enc("bücher"), "bcher-kva");
        // RFC 3492 section 7.1 (A) Arabic (Egyptian) and (B) Chinese (simplified)
        assert_eq!(
            enc("\u{644}\u{64a}\u{647}\u{645}\u{627}\u{628}\u{62a}\u{643}\u{644}\u{645}\u{648}\u{634}\u{639}\u{631}\u{628}\u{64a}\u{61f}"),
            "egbpdaj6bu4bxfgehfvwxn"
        );
        assert_eq!(enc("他们为什么不说中文"), "ihqwcrb4cv8a8dqg056pqjye");
    }

    #[test]
    fn normalize_forms() {
        assert_eq!(
            normalize("Login.MicrosoftOnline.COM.").unwrap(),
            "login.microsoftonline.com"
        );
        assert_eq!(
            normalize("bücher.example").unwrap(),
            "xn--bcher-kva.example"
        );
        assert_eq!(
            normalize("BÜCHER。example").unwrap(),
            "xn--bcher-kva.example"
        );
        assert_eq!(
            normalize("XN--BCHER-KVA.example").unwrap(),
            "xn--bcher-kva.example"
        );
        assert!(normalize("").is_none());
        assert!(normalize(".").is_none());
        assert!(normalize("a..b").is_none());
        assert!(normalize(".a").is_none());
        assert!(normalize("a.b..").is_none());
    }

    #[test]
    fn pattern_grammar() {
        let p = Pattern::parse("*.Tundra.<region>.api.azureml.ms.").unwrap();
        assert!(p.wildcard);
        assert_eq!(p.text, "*.tundra.<region>.api.azureml.ms");
        assert_eq!(p.placeholders().collect::<Vec<_>>(), ["region"]);
        for bad in [
            "", "*", "*.", "a.*.b", "a*.b", "<x>", "*.<x>", "a.<x", "a.x<y>", "a..b", "a.<X Y>",
            "a b.com",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
