//! `allowscope audit --format html` (issue 19): a golden page per recorded audit capture, a
//! capture of hostile names (and a hostile file name) whose page escapes every one of them,
//! and the pages loaded in a real browser (headless Chromium): the expected sections and
//! counts in the DOM, the page's own script ran to its end and nothing else did, no console
//! message, and a screenshot kept under target/html-artifacts/.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where the pages and screenshots are kept for people to look at.
fn artifacts() -> PathBuf {
    let d = root().join("target").join("html-artifacts");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The HTML page of `args` (run from the project's root, one thread), and the exit code.
fn html(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_allowscope"))
        .args(["audit", "-q", "--threads", "1", "--format", "html"])
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("the page is UTF-8"),
    )
}

const GOLDEN: [&str; 4] = [
    "audit-client.pcap",
    "audit-firewall.pcapng",
    "ws-client.pcap",
    "ws-firewall.pcapng",
];

#[test]
fn golden_pages_of_the_recorded_captures() {
    let bless = std::env::var_os("ALLOWSCOPE_BLESS").is_some();
    for cap in GOLDEN {
        let (_, page) = html(&[&format!("captures/{cap}")]);
        // Deterministic: a second run gives the same bytes.
        assert_eq!(page, html(&[&format!("captures/{cap}")]).1, "{cap}");
        let stem = cap.split('.').next().unwrap();
        let golden = root().join(format!("tests/golden/html/{stem}.html"));
        std::fs::write(artifacts().join(format!("{stem}.html")), &page).unwrap();
        if bless {
            std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
            std::fs::write(&golden, &page).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e} (ALLOWSCOPE_BLESS=1 writes it)", golden.display()));
        assert!(
            page == want,
            "{cap}: the page differs from {} (ALLOWSCOPE_BLESS=1 rewrites it; look at the diff)",
            golden.display()
        );
    }
}

#[test]
fn html_beside_another_format_is_the_same_page() {
    let dir = scratch("beside");
    let file = dir.join("page.html");
    let out = Command::new(env!("CARGO_BIN_EXE_allowscope"))
        .args([
            "audit",
            "-q",
            "--threads",
            "1",
            "--format",
            "json",
            "--html",
        ])
        .arg(&file)
        .arg("captures/audit-client.pcap")
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.starts_with(b"{"),
        "stdout keeps the chosen format"
    );
    let (_, page) = html(&["captures/audit-client.pcap"]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), page);
    // An unwritable FILE is exit 2, said.
    let (code, _, err) = common::run(&[
        "audit",
        "-q",
        "--html",
        "/nonexistent/dir/page.html",
        common::cap("audit-client.pcap").to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/dir/page.html"), "{err}");
}

/// The page's sections after the headline, in order.
const SECTIONS: [&str; 9] = [
    "blocked",
    "rules",
    "websockets",
    "unexpected",
    "dns-failures",
    "private-endpoints",
    "coverage",
    "reached",
    "inputs",
];

#[test]
fn the_page_is_self_contained_and_says_its_sections() {
    let (_, page) = html(&["captures/audit-client.pcap"]);
    for id in std::iter::once("headline").chain(SECTIONS) {
        assert!(page.contains(&format!("id=\"{id}\"")), "section {id}");
    }
    // Nothing from elsewhere: no URL but in-page anchors (the SVG namespace is a name).
    let without_ns = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!without_ns.contains("http://") && !without_ns.contains("https://"));
    assert!(!page.contains(" src="));
    for href in page.split("href=\"").skip(1) {
        assert!(href.starts_with('#'), "an href out of the page: {href:.40}");
    }
    assert!(page.contains("Content-Security-Policy"));
    assert!(!page.contains("unsafe-inline"));
    // One script and one style, each allowed by its hash, which the test computes again.
    assert_eq!(page.matches("<script").count(), 1);
    assert_eq!(page.matches("<style").count(), 1);
    let between = |open: &str, close: &str| -> String {
        let a = page.find(open).unwrap() + open.len();
        let b = page[a..].find(close).unwrap() + a;
        page[a..b].to_string()
    };
    for body in [
        between("<script>", "</script>"),
        between("<style>", "</style>"),
    ] {
        let hash = sha256_base64(&body);
        assert!(
            page.contains(&format!("'sha256-{hash}'")),
            "the policy lists {hash}"
        );
    }
}

/// SHA-256 in base64, by the system's tools (as a reader of the page would check it).
fn sha256_base64(s: &str) -> String {
    let dir = scratch("hash");
    let f = dir.join("body");
    std::fs::write(&f, s).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg("openssl dgst -sha256 -binary \"$0\" | base64")
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl and base64 are needed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("allowscope-html-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// On traffic with more connections to a websocket instance, and more flows under a blocked
/// finding, than an audit lists (synthetic traffic, 10 MB, and 60 connections to a required host
/// reset after the ClientHello), the page says how many of how many it lists and where to find
/// every one.
#[test]
fn sampled_lists_say_how_much_they_list() {
    let dir = scratch("sampled");
    let file = dir.join("synth.pcap");
    let w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    allowscope::synth::write_pcap(w, 10 << 20, 64, 5).unwrap();
    // Sixty connections to a required host, each reset after its ClientHello.
    let blocked = dir.join("blocked.pcap");
    let mut p = Pcap::new();
    for i in 0..60 {
        p.tls(
            40000 + i,
            [203, 0, 113, 40],
            "acct.blob.core.windows.net",
            false,
        );
    }
    std::fs::write(&blocked, &p.bytes).unwrap();
    let (code, page) = html(&[file.to_str().unwrap(), blocked.to_str().unwrap()]);
    std::fs::write(artifacts().join("sampled.html"), &page).unwrap();
    assert_eq!(code, 1, "required hosts are blocked");
    let listed = |what: &str| {
        let tail = format!(" {what}");
        page.split("The first 50 of ")
            .skip(1)
            .filter_map(|rest| rest.split_once(&tail))
            .filter_map(|(n, _)| n.parse::<u64>().ok())
            .filter(|&n| n > 50)
            .count()
    };
    assert!(
        listed("connections (every leg) are listed") >= 1,
        "websocket rows"
    );
    assert!(page.contains("<code>allowscope ws</code> lists every one"));
    assert!(listed("flows are listed") >= 1, "a finding's flows");
    assert!(page.contains("<code>allowscope audit --format ndjson</code> lists every flow"));
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// A capture of hostile names

/// Names an attacker on the wire (or whoever named the file) could choose.
const HOSTILE: [&str; 6] = [
    "<script>alert(1)</script>.example.net",
    "\"onmouseover=\"alert(2)\".example.net",
    "javascript:alert(3)//x.example.net",
    "'><img src=x onerror=alert(4)>.example.net",
    "rtl\u{202e}ten.elpmaxe.example.net",
    "ctl\x1b[31m\x07\x00.example.net",
];

use common::Pcap;

/// The hostile capture's connections.
impl Pcap {
    /// A DNS query for `name` answered NXDOMAIN.
    fn nxdomain(&mut self, id: u16, name: &[u8]) {
        const C: [u8; 4] = [10, 0, 0, 2];
        const R: [u8; 4] = [10, 0, 0, 53];
        let mut q = Vec::new();
        for label in name.split(|&b| b == b'.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label);
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        let msg = |flags: [u8; 2]| {
            let mut m = id.to_be_bytes().to_vec();
            m.extend_from_slice(&flags);
            m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
            m.extend_from_slice(&q);
            m
        };
        let udp = |sport: u16, dport: u16, m: &[u8]| {
            let mut u = sport.to_be_bytes().to_vec();
            u.extend_from_slice(&dport.to_be_bytes());
            u.extend_from_slice(&((8 + m.len()) as u16).to_be_bytes());
            u.extend_from_slice(&[0, 0]);
            u.extend_from_slice(m);
            u
        };
        let port = 40000 + id;
        self.frame(C, R, 17, &udp(port, 53, &msg([1, 0])));
        self.frame(R, C, 17, &udp(53, port, &msg([0x81, 0x83])));
    }
}

/// A TLS 1.2 record holding a ClientHello with one SNI name.
/// The capture of hostile names, in a file whose own name is hostile.
fn hostile_capture() -> PathBuf {
    let mut p = Pcap::new();
    for (i, name) in HOSTILE.iter().enumerate() {
        let i = i as u16;
        // Reached and not in the catalog: the unexpected hosts' table.
        p.tls(50000 + i, [203, 0, 113, 10 + i as u8], name, true);
        // Blocked: a catalog-shaped name (required) and the bare name (not in the catalog).
        let catalog = format!("{}.blob.core.windows.net", name.replace('.', "-"));
        p.tls(51000 + i, [203, 0, 113, 40], &catalog, false);
        p.tls(52000 + i, [203, 0, 113, 41], name, false);
        p.nxdomain(i, name.as_bytes());
        p.nxdomain(
            100 + i,
            format!("{}.blob.core.windows.net", name.replace('.', "-")).as_bytes(),
        );
    }
    let dir = scratch("hostile");
    let file = dir
        .join("<script>alert(5)<\u{2f}script>\"onmouseover='x'\u{202e}\x07.pcap".replace('/', "_"));
    std::fs::write(&file, &p.bytes).unwrap();
    file
}

/// Whether the page holds `s` anywhere, in the clear.
fn assert_no_raw(page: &str, what: &str) {
    assert!(!page.contains(what), "the page holds {what:?} unescaped");
}

#[test]
fn hostile_names_are_escaped_everywhere() {
    let file = hostile_capture();
    let (code, page) = html(&[file.to_str().unwrap()]);
    assert_eq!(code, 1, "a required host is blocked");
    std::fs::write(artifacts().join("hostile.html"), &page).unwrap();
    // The names reached the report (escaped), in the sections they belong to.
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;.example.net"));
    assert!(page.contains("&quot;onmouseover=&quot;alert(2)&quot;.example.net"));
    assert!(page.contains("rtl\\u{202e}ten"));
    for raw in [
        "<script>alert",
        "<img",
        "onmouseover=\"",
        "onmouseover='",
        "'><",
        "\u{202e}",
        "\x1b",
        "\x07",
        "\0",
    ] {
        assert_no_raw(&page, raw);
    }
    assert_eq!(page.matches("<script").count(), 1);
    for href in page.split("href=").skip(1) {
        assert!(href.starts_with("\"#"), "an href from the wire: {href:.40}");
    }
    let count = |id: &str| -> usize {
        let at = page
            .find(&format!("id=\"{id}\" data-count=\""))
            .unwrap_or_else(|| panic!("{id}"));
        let rest = &page[at + id.len() + 18..];
        rest[..rest.find('"').unwrap()].parse().unwrap()
    };
    assert_eq!(
        count("unexpected"),
        HOSTILE.len(),
        "one reached host per name"
    );
    assert!(
        count("blocked") >= 1,
        "the catalog-shaped names are blocked"
    );
    assert!(count("dns-failures") >= HOSTILE.len());
    if let Some(dom) = browser_dom(&artifacts().join("hostile.html"), "hostile") {
        assert!(
            dom.contains("data-script=\"ok\""),
            "the page's own script ran"
        );
        assert_eq!(
            dom.matches("<script").count(),
            1,
            "no other script in the DOM"
        );
        assert!(!dom.contains("<img"), "no element from a name");
        assert!(dom.contains("<title>allowscope audit</title>"));
    }
}

// ---------------------------------------------------------------------------------------------
// In a browser

/// Chromium's command, or None (said) when it is missing; under CI a missing Chromium fails.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new("sh")
                .args(["-c", &format!("command -v {c}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .or_else(|| {
            assert!(
                std::env::var_os("CI").is_none(),
                "chromium is missing and CI must not skip (.ci/run installs it)"
            );
            eprintln!("skipped: chromium not installed");
            None
        })
}

/// Loads `page` in headless Chromium: the DOM after the page's script ran (`--dump-dom`),
/// with a check that the console said nothing, and a screenshot as `<name>.png` beside it.
fn browser_dom(page: &Path, name: &str) -> Option<String> {
    let bin = chromium()?;
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let run = |extra: &[&str]| {
        let profile = scratch(&format!("chromium-{name}-{}", extra.len()));
        let out = Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(&url)
            .output()
            .expect("run chromium");
        let _ = std::fs::remove_dir_all(&profile);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "chromium failed on {name}: {err}");
        // Every console message (an error, a blocked script or style, a policy violation) is
        // logged as CONSOLE; the page writes none.
        let console: Vec<&str> = err.lines().filter(|l| l.contains(":CONSOLE")).collect();
        assert!(console.is_empty(), "{name}: the console said {console:#?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shot = artifacts().join(format!("{name}.png"));
    run(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1280,2000",
    ]);
    assert!(
        shot.metadata().is_ok_and(|m| m.len() > 1000),
        "a screenshot"
    );
    Some(run(&["--dump-dom"]))
}

/// `data-count` of the element with `id` in a dumped DOM.
fn dom_count(dom: &str, id: &str) -> usize {
    let key = format!("id=\"{id}\" data-count=\"");
    let at = dom
        .find(&key)
        .unwrap_or_else(|| panic!("no {id} in the DOM"))
        + key.len();
    dom[at..dom[at..].find('"').unwrap() + at].parse().unwrap()
}

#[test]
fn recorded_captures_in_a_browser() {
    for cap in GOLDEN {
        let (_, page) = html(&[&format!("captures/{cap}")]);
        let stem = cap.split('.').next().unwrap();
        let file = artifacts().join(format!("browser-{stem}.html"));
        std::fs::write(&file, &page).unwrap();
        let Some(dom) = browser_dom(&file, stem) else {
            return;
        };
        assert!(dom.contains("data-script=\"ok\""), "{cap}: the script ran");
        // The DOM holds what the page said: the same sections and counts.
        for id in SECTIONS {
            assert_eq!(dom_count(&dom, id), dom_count(&page, id), "{cap}: {id}");
        }
        // Counts the JSON report agrees with.
        let (_, json, _) = common::run(&[
            "audit",
            "-q",
            "--threads",
            "1",
            "--format",
            "json",
            common::cap(cap).to_str().unwrap(),
        ]);
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        let instances = doc["websockets"]["instances"].as_array().unwrap();
        assert_eq!(dom_count(&dom, "websockets"), instances.len(), "{cap}");
        assert_eq!(
            dom.matches("<article class=\"ws\"").count(),
            instances.len(),
            "{cap}: one timeline per instance"
        );
        let connections = doc["websockets"]["connections"].as_array().unwrap().len();
        assert_eq!(
            dom.matches("<g class=\"conn\"").count(),
            connections,
            "{cap}: one bar per connection"
        );
        assert_eq!(
            dom_count(&dom, "dns-failures"),
            doc["dns_failures"].as_array().unwrap().len(),
            "{cap}"
        );
        assert_eq!(
            dom_count(&dom, "coverage"),
            doc["coverage"].as_array().unwrap().len(),
            "{cap}"
        );
    }
}

#[test]
fn every_capture_at_once_stays_small() {
    let (_, page) = html(&["--per-file", "captures"]);
    let file = artifacts().join("captures.html");
    std::fs::write(&file, &page).unwrap();
    assert!(
        page.len() < 2 << 20,
        "the page of every capture is {} bytes",
        page.len()
    );
    // One coverage column per input read.
    let files = page.matches("<th class=\"f name\"").count();
    assert!(files > 40, "{files} columns");
    if let Some(dom) = browser_dom(&file, "captures") {
        assert!(dom.contains("data-script=\"ok\""));
    }
}
