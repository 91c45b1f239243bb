//! Text for people: escaping for the terminal, Markdown and HTML, and addresses written as
//! their `Display` writes them.
//! The ground floor of the house: every stage may use it, and it uses none of them (see
//! docs/ARCHITECTURE.md).

/// An address and port as text: `a.b.c.d:port`, or `[v6]:port`.
pub fn socket_text(ip: std::net::IpAddr, port: u16) -> String {
    let mut s = String::with_capacity(24);
    if ip.is_ipv6() {
        s.push('[');
        push_ip(&mut s, ip);
        s.push(']');
    } else {
        push_ip(&mut s, ip);
    }
    s.push(':');
    push_decimal(&mut s, u32::from(port));
    s
}

/// Addresses as text, separated by ", ".
pub fn ips_text(ips: &[std::net::IpAddr]) -> String {
    let mut s = String::with_capacity(ips.len() * 17);
    for (i, &ip) in ips.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        push_ip(&mut s, ip);
    }
    s
}

/// An address as text, as its `Display` writes it.
pub fn ip_text(ip: std::net::IpAddr) -> String {
    let mut s = String::with_capacity(15);
    push_ip(&mut s, ip);
    s
}

/// Appends an address as its `Display` writes it; IPv4 digit by digit (the reports write
/// addresses for every flow and lookup, and the formatting machinery costs several times
/// more).
pub fn push_ip(out: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(a) => {
            for (i, o) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_decimal(out, u32::from(o));
            }
        }
        std::net::IpAddr::V6(a) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{a}");
        }
    }
}

fn push_decimal(out: &mut String, v: u32) {
    if v >= 10 {
        push_decimal(out, v / 10);
    }
    out.push(char::from(b'0' + (v % 10) as u8));
}

/// Makes a string safe to print on a terminal: control characters (including ESC, so no
/// terminal escape sequence gets through), backslashes and Unicode bidi/format controls are
/// written as `\xNN` / `\u{NNNN}` escapes. Names that come from the wire or from file names
/// found in a directory pass through here before they reach a terminal.
pub fn escape_terminal(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| {
        c.is_control()
            || c == '\\'
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !bad(c) {
            out.push(c);
        } else if c == '\\' {
            out.push_str("\\\\");
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Escapes a wire string for Markdown (a table cell, a list item): terminal escaping, then a
/// backslash before each character Markdown gives meaning to, so no name from the wire can
/// close a cell, start a link or emphasis, or open an HTML tag.
pub fn escape_markdown(s: &str) -> String {
    let t = escape_terminal(s);
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        if matches!(
            c,
            '|' | '*' | '_' | '`' | '[' | ']' | '<' | '>' | '#' | '~' | '!' | '(' | ')'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A Markdown code span of `s` (terminal-escaped) that nothing in `s` can end or break: its
/// fence is one backtick more than the longest run of backticks in it (CommonMark), padded
/// with a space where `s` starts or ends with a backtick, and `|` is escaped (GitHub tables
/// split cells at a `|` even inside a code span).
pub fn code_markdown(s: &str) -> String {
    let t = escape_terminal(s).replace('|', "\\|");
    let mut longest = 0;
    let mut run = 0;
    for c in t.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if t.starts_with('`') || t.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{t}{pad}{fence}")
}

/// Escapes a wire string for HTML text and for a quoted attribute value: terminal escaping
/// (control and bidi characters become visible `\xNN` escapes), then the five characters HTML
/// gives meaning to as character references.
pub fn escape_html(s: &str) -> String {
    let t = escape_terminal(s);
    let mut out = String::with_capacity(t.len() + 8);
    for c in t.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_code_spans_cannot_be_broken() {
        assert_eq!(code_markdown("*.azureml.ms"), "`*.azureml.ms`");
        assert_eq!(code_markdown("a|b"), "`a\\|b`");
        assert_eq!(code_markdown("a`b"), "``a`b``");
        assert_eq!(code_markdown("`x``"), "``` `x`` ```");
        assert_eq!(code_markdown("a\x1bb"), "`a\\x1bb`");
    }

    #[test]
    fn terminal_escaping() {
        assert_eq!(escape_terminal("plain.pcap"), "plain.pcap");
        assert_eq!(escape_terminal("a\x1b[31mred"), "a\\x1b[31mred");
        assert_eq!(escape_terminal("new\nline\ttab"), "new\\x0aline\\x09tab");
        assert_eq!(escape_terminal("back\\slash"), "back\\\\slash");
        assert_eq!(escape_terminal("rtl\u{202e}gnp.exe"), "rtl\\u{202e}gnp.exe");
        assert_eq!(escape_terminal("\u{85}"), "\\x85");
        assert_eq!(escape_terminal("ünïcode.pcap"), "ünïcode.pcap");
    }

    #[test]
    fn markdown_escaping() {
        assert_eq!(escape_markdown("a|b"), "a\\|b");
        assert_eq!(escape_markdown("[x](http://e)"), "\\[x\\]\\(http://e\\)");
        assert_eq!(escape_markdown("<script>"), "\\<script\\>");
        assert_eq!(escape_markdown("e\x1bvil"), "e\\x1bvil");
    }

    #[test]
    fn html_escaping() {
        assert_eq!(
            escape_html("<img src=x onerror='a(\"b\")'>&"),
            "&lt;img src=x onerror=&#39;a(&quot;b&quot;)&#39;&gt;&amp;"
        );
        assert_eq!(escape_html("e\x1b[31m\u{202e}"), "e\\x1b[31m\\u{202e}");
        assert_eq!(escape_html("plain.example"), "plain.example");
    }

    #[test]
    fn addresses_read_as_display_writes_them() {
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        let mut rng = crate::rng::XorShift::new(0x9e37_79b9_7f4a_7c15);
        for i in 0..20_000u32 {
            let x = rng.next_u64();
            let ip = if i % 4 == 0 {
                IpAddr::V6(Ipv6Addr::from(u128::from(x) << (i % 64)))
            } else {
                // Octets of one, two and three digits, and zeros.
                IpAddr::V4(Ipv4Addr::from((x as u32) >> (i % 8)))
            };
            let port = (x >> 40) as u16 >> (i % 16);
            assert_eq!(ip_text(ip), ip.to_string());
            assert_eq!(
                socket_text(ip, port),
                std::net::SocketAddr::new(ip, port).to_string()
            );
        }
        let ips = [
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            "192.0.2.10".parse().unwrap(),
        ];
        assert_eq!(ips_text(&ips), "0.0.0.0, ::1, 192.0.2.10");
        assert_eq!(ips_text(&[]), "");
    }
}
