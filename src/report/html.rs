//! The audit as one self-contained HTML page, for an admin to open, share or attach to a
//! ticket: no external resource (it works offline), a Content-Security-Policy that lets only
//! the page's own style and script run (by their hashes), every string from the wire or a file
//! name escaped for its context (text or a quoted attribute, never a URL or a script), and the
//! same sections as the other formats, picked once in [`super::audit::Sections`]. The page
//! reads without JavaScript; the script only adds sorting and filtering to the long tables.
//! Nothing in it depends on the time of the run, so the same capture gives the same page.

use std::io::{self, Write};

use super::audit::{
    cell, closing_notes, per_file_lines, plural_u64, private_endpoint_group_line, serde_plain,
    AuditView, AuditWriter,
};
use crate::audit::ws::{WsFlow, WsInstance};
use crate::audit::{Finding, FlowSample, Mechanism, SAMPLE_FLOWS};
use crate::flow::Proto;
use crate::text::escape_html as esc;

/// The audit as a self-contained HTML page.
pub struct Html;

impl AuditWriter for Html {
    fn write(&self, out: &mut dyn Write, v: &AuditView<'_>) -> io::Result<()> {
        page(out, v)
    }
}

/// Rows of a table beyond which the rest is only counted (the JSON has every one).
const MAX_ROWS: usize = 2000;
/// Connections drawn in one instance's timeline.
const MAX_BARS: usize = 200;

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 40px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:18px 0 6px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #d5d9e0;padding-bottom:3px}h3{font-size:15px;margin:14px 0 4px}
nav{font-size:13px;color:#556}nav a{margin-right:10px;color:#2456a6}
.headline{font-size:16px;font-weight:600;padding:10px 12px;border-radius:6px;background:#eef2f8;border-left:5px solid #2456a6}
.headline.bad{background:#fdeeee;border-left-color:#c0392b}
.incomplete{background:#fdeeee;border:1px solid #c0392b;padding:8px 12px;border-radius:6px}
.note{color:#556}.none{color:#667;font-style:italic}
table{border-collapse:collapse;margin:6px 0;font-size:13px}th,td{border:1px solid #d5d9e0;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f5f8}td.n{text-align:right;font-variant-numeric:tabular-nums}
.name,code{font-family:ui-monospace,Menlo,Consolas,monospace;overflow-wrap:anywhere;unicode-bidi:isolate}
.v{font-weight:600;white-space:nowrap}.v-required-blocked,.v-dns-failure,.p-bad{color:#b03020}.v-optional-blocked{color:#b86e00}.v-unexpected-reached{color:#8a6d00}.v-required-reached,.v-optional-reached,.p-healthy{color:#1e7d3a}
details{margin:4px 0;border:1px solid #e0e4ea;border-radius:5px;padding:4px 8px}summary{cursor:pointer}
details.finding>p{margin:4px 0}dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;margin:6px 0}dt{color:#556}dd{margin:0}
.ws svg{display:block;max-width:100%;height:auto;border:1px solid #e0e4ea;background:#fcfcfd}
svg text{font:11px ui-monospace,Menlo,Consolas,monospace;fill:#1d2330}svg .axis{stroke:#c5cad3}svg .tick{fill:#667}
.bar{fill:#a9c6e8}.bar.ws-upgrade-failed{fill:#e6c06e}.bar.never-established{fill:#d0d4da}.bar.healthy{fill:#a9dcb6}
.idle{fill:#c0392b;fill-opacity:.7}.hs{stroke:#1d2330;stroke-width:2}.lc{fill:#2456a6}.ls{fill:#7a3fa0}
.legend span{display:inline-block;margin-right:12px}.sw{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:middle}
.sw.idle{background:#c0392b;opacity:.7}.sw.hs{background:#1d2330;width:3px}.sw.lc{background:#2456a6}.sw.ls{background:#7a3fa0}
table.cov td{text-align:center;min-width:22px;padding:2px 4px}table.cov td.e{text-align:left}
table.cov th.f{writing-mode:vertical-rl;transform:rotate(180deg);max-height:16em;overflow-wrap:anywhere;font-weight:normal}
.c-reached{background:#bfe5c8}.c-blocked{background:#f3b7ae}.c-blocked-reached{background:#f6d58f}.c-resolved,.c-seen{background:#e6ecf4}.c-none{background:#fff;color:#aab}
tr.unexercised td.e{color:#b03020}
th.sortable{cursor:pointer}th.sortable::after{content:' \\2195';color:#99a}
input.filter{font:inherit;padding:3px 6px;margin:4px 0;width:24em}
.warn{color:#b86e00}.err{color:#b03020;font-weight:600}
footer{margin-top:30px;color:#556;font-size:12px}
";

/// Sorting (click a column's head) and filtering (type in the box) for the tables marked
/// `sortable`; marks the page when it ran to its end, which the browser tests read.
const SCRIPT: &str = "
(function(){
'use strict';
function cellValue(row,i){var c=row.cells[i];return c?c.textContent.trim():'';}
function sortBy(table,i,th){
var body=table.tBodies[0];if(!body)return;
var rows=Array.prototype.slice.call(body.rows);
var desc=th.getAttribute('aria-sort')==='ascending';
var numeric=rows.every(function(r){var v=cellValue(r,i);return v===''||!isNaN(Number(v));});
rows.sort(function(a,b){var x=cellValue(a,i),y=cellValue(b,i);
var d=numeric?(Number(x)-Number(y)):x.localeCompare(y);return desc?-d:d;});
rows.forEach(function(r){body.appendChild(r);});
Array.prototype.forEach.call(table.tHead.rows[0].cells,function(c){c.removeAttribute('aria-sort');});
th.setAttribute('aria-sort',desc?'descending':'ascending');
}
Array.prototype.forEach.call(document.querySelectorAll('table.sortable'),function(table){
if(!table.tHead)return;
Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
th.classList.add('sortable');th.tabIndex=0;
th.addEventListener('click',function(){sortBy(table,i,th);});
th.addEventListener('keydown',function(e){if(e.key==='Enter'){sortBy(table,i,th);}});
});
var input=document.getElementById(table.id+'-filter');
if(input){input.hidden=false;input.addEventListener('input',function(){
var q=input.value.toLowerCase();
Array.prototype.forEach.call(table.tBodies[0].rows,function(r){
r.hidden=q!==''&&r.textContent.toLowerCase().indexOf(q)<0;});});}
});
document.documentElement.setAttribute('data-script','ok');
})();
";

/// `sha256-BASE64` of a script or style, for the Content-Security-Policy.
fn csp_hash(s: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    format!("sha256-{}", base64(d.as_ref()))
}

/// Standard base64 with padding (RFC 4648).
fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &x)| n | u32::from(x) << (16 - 8 * i));
        for i in 0..4 {
            if i <= c.len() {
                s.push(char::from(A[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// The page's Content-Security-Policy: nothing from anywhere, only its own style and script.
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; style-src '{}'; script-src '{}'; base-uri 'none'; form-action 'none'",
        csp_hash(STYLE),
        csp_hash(SCRIPT)
    )
}

fn plural(n: usize, one: &str, many: &str) -> String {
    plural_u64(n as u64, one, many)
}

fn mechanism(m: Option<Mechanism>) -> &'static str {
    m.map_or("-", |m| m.name())
}

/// `tcp/443`, or `dns` for a lookup without a port.
fn proto_port(f: &Finding) -> String {
    match f.dst_port {
        Some(p) => format!("{}/{p}", esc(&f.proto)),
        None => esc(&f.proto),
    }
}

/// A section: its heading and a `data-count` the tests (and scripts) can read.
fn open_section(out: &mut dyn Write, id: &str, title: &str, count: usize) -> io::Result<()> {
    writeln!(
        out,
        "<section id=\"{id}\" data-count=\"{count}\">\n<h2>{title}</h2>"
    )
}

fn none(out: &mut dyn Write, what: &str) -> io::Result<()> {
    writeln!(out, "<p class=\"none\">{what}</p>")
}

/// "... and N more" after a cut list.
fn more(out: &mut dyn Write, shown: usize, total: usize, what: &str) -> io::Result<()> {
    if total > shown {
        writeln!(
            out,
            "<p class=\"note\">{} more {what} not shown (the JSON report has every one).</p>",
            total - shown
        )?;
    }
    Ok(())
}

fn page(out: &mut dyn Write, v: &AuditView<'_>) -> io::Result<()> {
    let sec = &v.sections;
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
    )?;
    writeln!(
        out,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
        content_security_policy()
    )?;
    writeln!(
        out,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"allowscope {}\">\n<title>allowscope audit</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        env!("CARGO_PKG_VERSION")
    )?;
    writeln!(out, "<header>\n<h1>allowscope audit</h1>")?;
    writeln!(
        out,
        "<nav><a href=\"#blocked\">Blocked</a><a href=\"#rules\">Rules to add</a><a href=\"#websockets\">Websockets</a><a href=\"#unexpected\">Unexpected</a><a href=\"#dns-failures\">DNS failures</a><a href=\"#private-endpoints\">Private endpoints</a><a href=\"#coverage\">Coverage</a><a href=\"#inputs\">Inputs</a></nav>\n</header>\n<main>"
    )?;
    // Inputs that failed are said first: an empty report must not look clean.
    if !v.failed.is_empty() {
        writeln!(
            out,
            "<div class=\"incomplete\" id=\"incomplete\" data-count=\"{}\"><strong>{}.</strong>\n<ul>",
            v.failed.len(),
            esc(&super::text::incomplete_heading(v.failed.len()))
        )?;
        for f in v.failed {
            writeln!(out, "<li class=\"name\">{}</li>", esc(&f.error))?;
        }
        writeln!(out, "</ul></div>")?;
    }
    let bad = !sec.blocked.is_empty() || !sec.websocket_problems.is_empty() || !v.failed.is_empty();
    writeln!(
        out,
        "<p class=\"headline{}\" id=\"headline\">{}</p>",
        if bad { " bad" } else { "" },
        esc(&sec.headline)
    )?;
    if !sec.undecoded.is_empty() {
        writeln!(out, "<div id=\"undecoded\"><h3>Undecoded frames</h3><ul>")?;
        for n in &sec.undecoded {
            writeln!(out, "<li class=\"warn\">{}</li>", esc(n))?;
        }
        writeln!(out, "</ul></div>")?;
    }
    blocked(out, v)?;
    rules(out, v)?;
    websockets(out, v)?;
    unexpected(out, v)?;
    other_findings(out, v)?;
    dns_failures(out, v)?;
    private_endpoints(out, v)?;
    coverage(out, v)?;
    reached(out, v)?;
    inputs(out, v)?;
    writeln!(out, "<section id=\"notes\">")?;
    for note in closing_notes(v.audit, sec, esc) {
        writeln!(out, "<p>{note}.</p>")?;
    }
    writeln!(
        out,
        "<p id=\"summary\" class=\"note\">{}</p>\n</section>\n</main>",
        esc(&sec.summary)
    )?;
    writeln!(
        out,
        "<footer>Written by allowscope {}: every name from the capture is shown as captured, escaped; the page loads nothing from anywhere.</footer>",
        env!("CARGO_PKG_VERSION")
    )?;
    writeln!(out, "<script>{SCRIPT}</script>\n</body>\n</html>")
}

fn blocked(out: &mut dyn Write, v: &AuditView<'_>) -> io::Result<()> {
    let sec = &v.sections;
    open_section(
        out,
        "blocked",
        "Required (or optional) but blocked",
        sec.blocked.len(),
    )?;
    if sec.blocked.is_empty() {
        return none(
            out,
            if v.failed.is_empty() {
                "None."
            } else {
                "None in what was read (the audit is incomplete)."
            },
        )
        .and_then(|_| writeln!(out, "</section>"));
    }
    for (n, f) in sec.blocked.iter().enumerate() {
        if n == MAX_ROWS {
            more(out, n, sec.blocked.len(), "findings")?;
            break;
        }
        let count = if f.flows > 0 {
            plural_u64(f.flows, "flow", "flows")
        } else {
            plural_u64(f.lookups, "lookup", "lookups")
        };
        writeln!(
            out,
            "<details class=\"finding\" data-verdict=\"{0}\"><summary><span class=\"v v-{0}\">{0}</span> <span class=\"name\">{1}</span> {2}: {3}{4}, {count}</summary>",
            f.verdict.name(),
            esc(&f.name),
            proto_port(f),
            mechanism(f.mechanism),
            f.confidence
                .map(|c| format!(", {} confidence", serde_plain(&c)))
                .unwrap_or_default(),
        )?;
        writeln!(out, "<p>{}</p>\n<dl>", esc(&f.evidence))?;
        if let Some(e) = &f.entry {
            writeln!(
                out,
                "<dt>catalog entry</dt><dd><code>{}</code> ({}, {}): {}</dd>",
                esc(&e.pattern),
                esc(&e.id),
                esc(&e.requirement),
                esc(&e.purpose)
            )?;
        }
        let ips: Vec<String> = f.dst_ips.iter().map(|a| esc(a)).collect();
        if !ips.is_empty() {
            writeln!(
                out,
                "<dt>addresses</dt><dd class=\"name\">{}</dd>",
                ips.join(", ")
            )?;
        }
        writeln!(out, "<dt>first seen</dt><dd>{}</dd>", esc(&f.first_seen))?;
        if let (Some(w), Some(b)) = (f.worst_outcome, f.best_outcome) {
            writeln!(
                out,
                "<dt>outcomes</dt><dd>worst {}, best {}</dd>",
                w.name(),
                b.name()
            )?;
        }
        let files: Vec<String> = f.files.iter().map(|x| esc(x)).collect();
        writeln!(
            out,
            "<dt>inputs</dt><dd class=\"name\">{}</dd>\n</dl>",
            files.join(", ")
        )?;
        // A finding read back from a document has no flows, nor a sample.
        let proto = [Proto::Tcp, Proto::Udp, Proto::Icmp, Proto::Icmpv6]
            .into_iter()
            .find(|p| p.name() == f.proto);
        let sample = proto.and_then(|p| {
            let key = (f.verdict, f.mechanism, p, f.dst_port.unwrap_or(0));
            v.audit.folded.sample(&f.name, &key)
        });
        if let Some(list) = sample.filter(|_| f.flows > 0) {
            flow_table(out, list, f.flows)?;
        }
        writeln!(out, "</details>")?;
    }
    writeln!(out, "</section>")
}

/// The flows of one finding (the first of them in input and flow order, as the audit kept
/// them): input, client, server, outcome, how long, what it says.
fn flow_table(out: &mut dyn Write, list: &[FlowSample], total: u64) -> io::Result<()> {
    writeln!(
        out,
        "<table class=\"flows\"><thead><tr><th>input</th><th>client</th><th>server</th><th>outcome</th><th>duration</th><th>evidence</th></tr></thead><tbody>"
    )?;
    let mut shown = 0usize;
    for f in list.iter().take(SAMPLE_FLOWS) {
        shown += 1;
        writeln!(
            out,
            "<tr><td class=\"name\">{}</td><td class=\"name\">{}</td><td class=\"name\">{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(&f.file),
            esc(&super::endpoint(&f.client)),
            esc(&super::endpoint(&f.server)),
            f.outcome.name(),
            esc(&crate::time::human_duration(f.duration_ns)),
            esc(&f.evidence)
        )?;
    }
    writeln!(out, "</tbody></table>")?;
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    if total > shown {
        // The audit keeps the first flows of a finding and counts the rest.
        writeln!(
            out,
            "<p class=\"note\">The first {shown} of {total} flows are listed (<code>allowscope audit --format ndjson</code> lists every flow with its verdict).</p>"
        )?;
    }
    Ok(())
}

fn rules(out: &mut dyn Write, v: &AuditView<'_>) -> io::Result<()> {
    let lines = super::rules::summary_lines(v.sections.rules, esc);
    open_section(out, "rules", "Rules to add", lines.len())?;
    if lines.is_empty() {
        none(out, "None: nothing required was blocked by the firewall.")?;
    } else {
        writeln!(
            out,
            "<p class=\"note\">In a firewall's language: <code>allowscope audit --rules azure-firewall</code> (or <code>azure-firewall-arm</code>, <code>squid</code>, <code>nftables</code>, <code>fqdn-list</code>).</p>\n<ul>"
        )?;
        for l in lines {
            writeln!(out, "<li class=\"name\">{l}</li>")?;
        }
        writeln!(out, "</ul>")?;
    }
    writeln!(out, "</section>")
}

fn websockets(out: &mut dyn Write, v: &AuditView<'_>) -> io::Result<()> {
    let sec = &v.sections;
    open_section(out, "websockets", "Websockets", sec.websockets.len())?;
    if sec.websockets.is_empty() {
        none(out, "No websocket-capable connection in the capture.")?;
        return writeln!(out, "</section>");
    }
    writeln!(
        out,
        "<p class=\"note\">{} with a problem of {}. Each connection is a bar from its start to its end (or the end of the capture); the legend: <span class=\"legend\"><span><i class=\"sw hs\"></i>handshake answered</span><span><i class=\"sw lc\"></i>last data from the client</span><span><i class=\"sw ls\"></i>last data from the server</span><span><i class=\"sw idle\"></i>idle gap before the end</span></span></p>",
        plural(sec.websocket_problems.len(), "instance", "instances"),
        sec.websockets.len()
    )?;
    let conns = &v.audit.websockets.connections;
    for i in sec.websockets {
        let mine: Vec<&WsFlow> = conns.iter().filter(|c| c.name == i.name).collect();
        instance(out, i, &mine)?;
    }
    writeln!(out, "</section>")
}

fn instance(out: &mut dyn Write, i: &WsInstance, conns: &[&WsFlow]) -> io::Result<()> {
    let class = if i.problem == "healthy" {
        "p-healthy"
    } else {
        "p-bad"
    };
    writeln!(
        out,
        "<article class=\"ws\" data-problem=\"{0}\" data-connections=\"{1}\">\n<h3><span class=\"name\">{2}</span>: <span class=\"{class}\">{0}</span>, {3}</h3>",
        esc(&i.problem),
        conns.len(),
        esc(&i.name),
        plural(i.connections, "connection", "connections")
    )?;
    writeln!(out, "<p>{}</p>", esc(&i.diagnosis))?;
    if let Some(a) = &i.advice {
        writeln!(out, "<p><strong>What to change:</strong> {}</p>", esc(a))?;
    }
    timeline(out, conns)?;
    writeln!(
        out,
        "<details><summary>The connections</summary><table><thead><tr><th>client</th><th>server</th><th>leg</th><th>transport</th><th>start</th><th>lived (s)</th><th>idle before end (s)</th><th>ended by</th><th>timer</th><th>diagnosis</th></tr></thead><tbody>"
    )?;
    for c in conns.iter().take(MAX_ROWS) {
        writeln!(
            out,
            "<tr><td class=\"name\">{}</td><td class=\"name\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{:.3}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.client),
            esc(&c.server),
            esc(&c.leg),
            esc(&c.transport),
            esc(&c.start),
            c.duration_s,
            c.idle_before_end_s.map_or("-".to_string(), |s| format!("{s:.3}")),
            esc(c.ended_by.as_deref().unwrap_or("open at the end")),
            esc(c.timer.as_deref().unwrap_or("-")),
            c.diagnosis.name()
        )?;
    }
    writeln!(out, "</tbody></table>")?;
    let total = i.legs.client.connections + i.legs.upstream.connections;
    if total > conns.len() as u64 {
        writeln!(
            out,
            "<p class=\"note\">The first {} of {total} connections (every leg) are listed: an audit lists at most {} per instance and counts them all; <code>allowscope ws</code> lists every one.</p>",
            conns.len(),
            crate::audit::ws::SAMPLE_CONNECTIONS
        )?;
    } else {
        more(out, conns.len().min(MAX_ROWS), conns.len(), "connections")?;
    }
    writeln!(out, "</details>\n</article>")
}

/// A round step for about `n` ticks over `span` seconds: 1, 2 or 5 times a power of ten.
fn tick_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(1e-6);
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

/// One instance's connections on a common time axis, as inline SVG.
fn timeline(out: &mut dyn Write, conns: &[&WsFlow]) -> io::Result<()> {
    if conns.is_empty() {
        return Ok(());
    }
    let drawn = &conns[..conns.len().min(MAX_BARS)];
    let starts: Vec<i64> = drawn
        .iter()
        .map(|c| crate::time::parse_rfc3339(&c.start).unwrap_or(0))
        .collect();
    let t0 = starts.iter().copied().min().unwrap_or(0);
    let offset = |k: usize| (starts.get(k).copied().unwrap_or(t0) - t0) as f64 / 1e9;
    let end_of = |c: &WsFlow| c.timeline.end_s.unwrap_or(c.duration_s).max(c.duration_s);
    let span = drawn
        .iter()
        .enumerate()
        .map(|(k, c)| offset(k) + end_of(c))
        .fold(0.0f64, f64::max)
        .max(0.001);
    const LABEL: f64 = 200.0;
    const CHART: f64 = 560.0;
    const ENDS: f64 = 200.0;
    const ROW: f64 = 24.0;
    const TOP: f64 = 22.0;
    let width = LABEL + CHART + ENDS;
    let height = TOP + ROW * drawn.len() as f64 + 6.0;
    let x = |t: f64| LABEL + (t / span).clamp(0.0, 1.0) * CHART;
    writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" viewBox=\"0 0 {width:.0} {height:.0}\" width=\"{width:.0}\" height=\"{height:.0}\" role=\"img\" aria-label=\"websocket timeline\">"
    )?;
    let step = tick_step(span, 8.0);
    let mut t = 0.0;
    while t <= span + step * 1e-9 {
        let tx = x(t);
        writeln!(
            out,
            "<line class=\"axis\" x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{height:.1}\"/><text class=\"tick\" x=\"{tx:.1}\" y=\"12\" text-anchor=\"middle\">{}s</text>",
            TOP - 4.0,
            tick_text(t, step)
        )?;
        t += step;
    }
    for (k, c) in drawn.iter().enumerate() {
        let y = TOP + ROW * k as f64 + 4.0;
        let s0 = offset(k);
        let (xa, xb) = (x(s0), x(s0 + end_of(c)).max(x(s0) + 1.0));
        let ended = c.ended_by.as_deref().unwrap_or("open at the end");
        writeln!(
            out,
            "<g class=\"conn\" data-diagnosis=\"{}\"><title>{} -&gt; {}: {}, {:.3} s, {}{}</title>",
            c.diagnosis.name(),
            esc(&c.client),
            esc(&c.server),
            c.diagnosis.name(),
            c.duration_s,
            esc(ended),
            c.timer
                .as_deref()
                .map(|t| format!("; matches {}", esc(t)))
                .unwrap_or_default()
        )?;
        writeln!(
            out,
            "<text x=\"4\" y=\"{:.1}\">{}</text>",
            y + 12.0,
            esc(&c.client)
        )?;
        writeln!(
            out,
            "<rect class=\"bar {}\" x=\"{xa:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"16\" rx=\"2\"/>",
            c.diagnosis.name(),
            xb - xa
        )?;
        // A gap long enough to be a timer's (the diagnosis's threshold) is highlighted.
        let gap = c
            .idle_before_end_s
            .filter(|g| *g >= crate::audit::ws::IDLE_CLOSE_S);
        if let (Some(g), Some(e)) = (gap, c.timeline.end_s) {
            let (ga, gb) = (x(s0 + (e - g).max(0.0)), x(s0 + e));
            writeln!(
                out,
                "<rect class=\"idle\" x=\"{ga:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"16\"><title>idle {g:.1} s before the end</title></rect>",
                (gb - ga).max(1.0)
            )?;
        }
        if let Some(h) = c.timeline.handshake_s {
            let hx = x(s0 + h);
            writeln!(
                out,
                "<line class=\"hs\" x1=\"{hx:.1}\" y1=\"{:.1}\" x2=\"{hx:.1}\" y2=\"{:.1}\"/>",
                y - 1.0,
                y + 17.0
            )?;
        }
        if let Some(l) = c.timeline.last_client_data_s {
            let lx = x(s0 + l);
            writeln!(
                out,
                "<path class=\"lc\" d=\"M{:.1} {:.1}l4 -5h-8z\"/>",
                lx,
                y + 5.0
            )?;
        }
        if let Some(l) = c.timeline.last_server_data_s {
            let lx = x(s0 + l);
            writeln!(
                out,
                "<path class=\"ls\" d=\"M{:.1} {:.1}l4 5h-8z\"/>",
                lx,
                y + 11.0
            )?;
        }
        // The timer in words is in the tooltip and the table: too long for the chart.
        let closing = match gap {
            Some(g) if c.timeline.end_s.is_some() => format!("{}, idle {g:.1} s", esc(ended)),
            _ => esc(ended),
        };
        writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            xb + 4.0,
            y + 12.0,
            closing
        )?;
    }
    writeln!(out, "</svg>")?;
    if conns.len() > drawn.len() {
        writeln!(
            out,
            "<p class=\"note\">The first {} of {} connections are drawn.</p>",
            drawn.len(),
            conns.len()
        )?;
    }
    Ok(())
}

/// A tick's label: as many decimals as the step needs.
fn tick_text(t: f64, step: f64) -> String {
    let decimals = (-step.log10()).ceil().clamp(0.0, 6.0) as usize;
    format!("{t:.decimals$}")
}

fn unexpected(out: &mut dyn Write, v: &AuditView<'_>) -> io::Result<()> {
    let rows = &v.sections.unexpected_reached;
    open_section(
        out,
        "unexpected",
        "Allowed but unexpected (reached, not in the catalog)",
        rows.len(),
    )?;
    if rows.is_empty() {
        none(out, "None.")?;
        return writeln!(out, "</section>");
    }
    writeln!(
        out,
        "<input type=\"search\" class=\"filter\" id=\"unexpected-table-filter\" placeholder=\"Filter\" aria-label=\"Filter the hosts\" hidden>"
    )?;
    writeln!(
        out,
        "<table class=\"sortable\" id=\"unexpected-table\"><thead><tr><th>name</th><th>proto/port</th><th>flows</th><th>addresses</th><th>first seen</th></tr></thead><tbody>"
    )?;
    for f in rows.iter().take(MAX_ROWS) {
        let ips: Vec<String> = f.dst_ips.iter().map(|a| esc(a)).collect();
        writeln!(
            out,
            "<tr><td class=\"name\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"name\">{}</td><td>{}</td></tr>",
            esc(&f.name),
            proto_port(f),
            f.flows,
            ips.join(", "),
            esc(&f.first_seen)
        )?;
    }
    writeln!(out, "</tbody></table>")?;
    more(out, rows.len().min(MAX_ROWS), rows.len(), "hosts")?;
    writeln!(out, "</section>")
}

/// A table of findings with their mechanism and evidence (unexpected blocked, other port).
fn finding_table(out: &mut dyn Write, rows: &[&Finding]) -> io::Result<()> {
    writeln!(
        out,
        "<table><thead><tr><th>verdict</th><th>name</th><th>proto/port</th><th>mechanism</th><th>flows</th><th>evidence</th></tr></thead><tbody>"
    )?;
    for f in rows.iter().take(MAX_ROWS) {
        writeln!(
            out,
            "<tr><td class=\"v v-{0}\">{0}</td><td class=\"name\">{1}</td><td>{2}</td><td>{3}</td><td class=\"n\">{4}</td><td>{5}</td></tr>",
            f.verdict.name(),
            esc(&f.name),
            proto_port(f),
            mechanism(f.mechanism),
            f.flows.max(f.lookups),
            esc(&f.evidence)
        )?;
    }
    writeln!(out, "</tbody></table>")?;
    more(out, rows.len().min(MAX_ROWS), rows.len(), "findings")
}

fn other_findings(out: &mut dyn Write, v: &AuditView<'_>) -> io::Result<()> {
    let sec = &v.sections;
    if !sec.unexpected_blocked.is_empty() {
        open_section(
            out,
            "unexpected-blocked",
            "Blocked, not in the catalog",
            sec.unexpected_blocked.len(),
        )?;
        finding_table(out, &sec.unexpected_blocked)?;
        writeln!(out, "</section>")?;
    }
    if !sec.other_port.is_empty() {
        open_section(
            out,
            "other-port",
            "Catalog hosts on a protocol or port their entry does not list",
            sec.other_port.len(),
        )?;
        finding_table(out, &sec.other_port)?;
        writeln!(out, "</section>")?;
    }
    Ok(())
}

fn dns_failures(out: &mut dyn Write, v: &AuditView<'_>) -> io::Result<()> {
    let rows: Vec<&Finding> = v.audit.dns_failures.iter().collect();
    open_section(out, "dns-failures", "DNS failures", rows.len())?;
    if rows.is_empty() {
        none(out, "None.")?;
    } else {
        writeln!(
            out,
            "<table><thead><tr><th>verdict</th><th>name</th><th>lookups</th><th>first seen</th><th>evidence</th></tr></thead><tbody>"
        )?;
        for f in rows.iter().take(MAX_ROWS) {
            writeln!(
                out,
                "<tr><td class=\"v v-{0}\">{0}</td><td class=\"name\">{1}</td><td class=\"n\">{2}</td><td>{3}</td><td>{4}</td></tr>",
                f.verdict.name(),
                esc(&f.name),
                f.lookups,
                esc(&f.first_seen),
                esc(&f.evidence)
            )?;
        }
        writeln!(out, "</tbody></table>")?;
        more(out, rows.len().min(MAX_ROWS), rows.len(), "names")?;
    }
    writeln!(out, "</section>")
}

fn private_endpoints(out: &mut dyn Write, v: &AuditView<'_>) -> io::Result<()> {
    let groups = &v.sections.private_endpoint_groups;
    open_section(
        out,
        "private-endpoints",
        "Private endpoint DNS not applied",
        groups.len(),
    )?;
    if groups.is_empty() {
        none(out, "None.")?;
    } else {
        writeln!(out, "<ul>")?;
        for g in groups {
            writeln!(
                out,
                "<li class=\"name\">{}</li>",
                private_endpoint_group_line(g, esc)
            )?;
        }
        writeln!(out, "</ul>")?;
    }
    writeln!(out, "</section>")
}

/// A coverage cell's class and short text.
fn cell_look(c: &str) -> (&'static str, &'static str) {
    match c {
        "reached" => ("c-reached", "R"),
        "blocked" => ("c-blocked", "B"),
        "blocked+reached" => ("c-blocked-reached", "B+R"),
        "resolved" => ("c-resolved", "dns"),
        "seen" => ("c-seen", "seen"),
        _ => ("c-none", ""),
    }
}

fn coverage(out: &mut dyn Write, v: &AuditView<'_>) -> io::Result<()> {
    let (a, sec) = (v.audit, &v.sections);
    open_section(
        out,
        "coverage",
        "Coverage: catalog entry by input",
        a.coverage.len(),
    )?;
    writeln!(
        out,
        "<p>{} of {} required entries exercised. Cells: <span class=\"c-reached\">R</span> reached, <span class=\"c-blocked\">B</span> blocked, <span class=\"c-blocked-reached\">B+R</span> both, <span class=\"c-resolved\">dns</span> only resolved, <span class=\"c-seen\">seen</span> seen otherwise, empty: not exercised by that input.</p>",
        sec.required_entries - sec.not_exercised.len(),
        sec.required_entries
    )?;
    let files: Vec<&str> = a.per_file.iter().map(|p| p.file.as_str()).collect();
    writeln!(
        out,
        "<div class=\"scroll\"><table class=\"cov\" data-files=\"{}\"><thead><tr><th>entry</th><th>requirement</th>",
        files.len()
    )?;
    for f in &files {
        writeln!(out, "<th class=\"f name\" title=\"{0}\">{0}</th>", esc(f))?;
    }
    writeln!(out, "</tr></thead><tbody>")?;
    for c in &a.coverage {
        let row_class = if !c.exercised && c.entry.requirement == "required" {
            " class=\"unexercised\""
        } else {
            ""
        };
        write!(
            out,
            "<tr{row_class}><td class=\"e\"><code>{}</code> <span class=\"note\">{}</span></td><td>{}</td>",
            esc(&c.entry.pattern),
            esc(&c.entry.id),
            esc(&c.entry.requirement)
        )?;
        for f in &files {
            let word = cell(c.by_file.get(*f));
            let (class, text) = cell_look(word);
            let title = if word == "-" { "not exercised" } else { word };
            write!(out, "<td class=\"{class}\" title=\"{title}\">{text}</td>")?;
        }
        writeln!(out, "</tr>")?;
    }
    writeln!(out, "</tbody></table></div>")?;
    if !sec.not_exercised.is_empty() {
        writeln!(
            out,
            "<details id=\"not-exercised\" data-count=\"{}\"><summary>Required but not exercised: {} of {} entries</summary><ul>",
            sec.not_exercised.len(),
            sec.not_exercised.len(),
            sec.required_entries
        )?;
        for c in &sec.not_exercised {
            writeln!(
                out,
                "<li><code>{}</code> ({}): {}</li>",
                esc(&c.entry.pattern),
                esc(&c.entry.id),
                esc(&c.entry.purpose)
            )?;
        }
        writeln!(out, "</ul></details>")?;
    }
    writeln!(out, "</section>")
}

fn reached(out: &mut dyn Write, v: &AuditView<'_>) -> io::Result<()> {
    let rows = &v.sections.reached;
    open_section(out, "reached", "Reached (OK)", rows.len())?;
    if rows.is_empty() {
        none(out, "None.")?;
        return writeln!(out, "</section>");
    }
    writeln!(
        out,
        "<details><summary>{}</summary><table><thead><tr><th>verdict</th><th>name</th><th>proto/port</th><th>flows</th></tr></thead><tbody>",
        plural(rows.len(), "catalog host reached", "catalog hosts reached")
    )?;
    for f in rows.iter().take(MAX_ROWS) {
        writeln!(
            out,
            "<tr><td class=\"v v-{0}\">{0}</td><td class=\"name\">{1}</td><td>{2}</td><td class=\"n\">{3}</td></tr>",
            f.verdict.name(),
            esc(&f.name),
            proto_port(f),
            f.flows
        )?;
    }
    writeln!(out, "</tbody></table></details>")?;
    more(out, rows.len().min(MAX_ROWS), rows.len(), "hosts")?;
    writeln!(out, "</section>")
}

fn inputs(out: &mut dyn Write, v: &AuditView<'_>) -> io::Result<()> {
    open_section(out, "inputs", "Inputs read", v.results.len())?;
    writeln!(
        out,
        "<table id=\"inputs-table\"><thead><tr><th>input</th><th>format</th><th>packets</th><th>flows</th><th>warnings and errors</th></tr></thead><tbody>"
    )?;
    for (i, r) in v.results.iter().enumerate() {
        let s = &r.summary;
        // Flows per input as the audit counted them (0 for a merged document's inputs).
        let flows = v.audit.folded.flows_per_input.get(i).copied().unwrap_or(0);
        let mut notes: Vec<String> = s
            .warnings
            .iter()
            .map(|w| format!("<div class=\"warn\">{}</div>", esc(w)))
            .collect();
        if let Some(n) = super::undecoded_note(s) {
            notes.push(format!("<div class=\"warn\">{}</div>", esc(&n)));
        }
        if let Some(e) = &s.error {
            notes.push(format!("<div class=\"err\">{}</div>", esc(e)));
        }
        writeln!(
            out,
            "<tr data-failed=\"{}\"><td class=\"name\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            s.error.is_some(),
            esc(&s.file),
            esc(s.format.as_deref().unwrap_or("-")),
            s.packets,
            flows,
            notes.join("")
        )?;
    }
    // Inputs never opened have no result; they are failed inputs all the same.
    for f in v
        .failed
        .iter()
        .filter(|f| !v.results.iter().any(|r| r.summary.file == f.file))
    {
        writeln!(
            out,
            "<tr data-failed=\"true\"><td class=\"name\">{}</td><td>-</td><td class=\"n\">0</td><td class=\"n\">0</td><td><div class=\"err\">{}</div></td></tr>",
            esc(&f.file),
            esc(&f.error)
        )?;
    }
    writeln!(out, "</tbody></table>")?;
    let lines = per_file_lines(v.audit, esc);
    if v.per_file || lines.len() > 1 {
        writeln!(out, "<details><summary>Verdicts per input</summary><ul>")?;
        for l in lines {
            writeln!(out, "<li class=\"name\">{l}</li>")?;
        }
        writeln!(out, "</ul></details>")?;
    }
    writeln!(out, "</section>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_as_rfc_4648_says() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(100.0, 8.0), 20.0);
        assert_eq!(tick_step(7.0, 8.0), 1.0);
        assert_eq!(tick_step(0.3, 8.0), 0.05);
        assert_eq!(tick_text(0.0015, 0.0005), "0.0015");
        assert_eq!(tick_text(20.0, 5.0), "20");
        assert_eq!(tick_text(0.5, 0.1), "0.5");
    }
}
