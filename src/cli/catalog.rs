//! `allowscope catalog ...`: list, match, export and check catalogs.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use crate::catalog::name::normalize;
use crate::catalog::{
    ports_text, schema, Catalog, CatalogError, CatalogOptions, CloudArg, Entry, Match, Proto,
    BUILTIN_TOML,
};
use crate::cli::{Error, Exit};
use crate::text::escape_terminal as esc;

const CATALOG_HELP: &str = "\
Scope: entries of the chosen --cloud (default public; entries of cloud `any` always count) and
of the scenarios in scope: `core`, the catalog's default scenarios, and every --scenario.

Host patterns: `a.b` is exactly that name; `*.a.b` is one or more labels before `.a.b` (never
`a.b` itself); `<region>`, `<storage>`, `<acr>`, `<workspace-id>` are exactly one label, filled by
the options of the same name or else matching any label (the label is reported).

Exit codes: 0 success (also when `match` finds nothing), 2 error (bad catalog file, bad option).

Examples:
  allowscope catalog list --cloud gov --scenario all
  allowscope catalog match myacct.blob.core.windows.net --port 443
  allowscope catalog match x.instances.azureml.ms --port 8787 --scenario private-endpoint
  allowscope catalog export > my-catalog.toml && allowscope catalog check my-catalog.toml
  allowscope catalog list --catalog ws-deps.json --catalog-mode replace --format json";

/// List, match, export and check the catalog of hosts, protocols and ports a service needs
#[derive(clap::Subcommand, Debug, Clone)]
#[command(after_help = CATALOG_HELP)]
pub enum CatalogCommand {
    /// List the catalog entries in scope
    #[command(after_help = CATALOG_HELP)]
    List {
        /// Output format
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        #[command(flatten)]
        opts: CatalogOptions,
    },
    /// Show which catalog entries a host name matches, most specific first, and why
    #[command(after_help = CATALOG_HELP)]
    Match {
        /// The host name (any case, trailing dot, Unicode or punycode)
        #[arg(value_name = "NAME")]
        name: String,
        /// Check this destination port against each entry's ports
        #[arg(long, value_name = "N")]
        port: Option<u16>,
        /// Check this protocol against each entry's protocol
        #[arg(long, value_enum, value_name = "PROTO")]
        proto: Option<Proto>,
        /// Output format
        #[arg(long, value_enum, default_value_t = MatchFormat::Text)]
        format: MatchFormat,
        #[command(flatten)]
        opts: CatalogOptions,
    },
    /// Print the built-in catalog as an editable TOML file (with options: the catalog they
    /// select, placeholders filled in)
    #[command(after_help = CATALOG_HELP)]
    Export {
        #[command(flatten)]
        opts: CatalogOptions,
    },
    /// Validate a catalog file (TOML, or a workspace's dependency JSON); errors name the line
    #[command(after_help = CATALOG_HELP)]
    Check {
        /// The file to check (`-` for standard input)
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// `catalog list` output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
    Toml,
}

/// `catalog match` output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MatchFormat {
    Text,
    Json,
}

/// Runs a `catalog` subcommand; returns the exit code (0 ok, 2 error).
pub fn run(cmd: &CatalogCommand) -> Result<Exit, Error> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let r = match cmd {
        CatalogCommand::List { format, opts } => list(&mut out, opts, *format),
        CatalogCommand::Match {
            name,
            port,
            proto,
            format,
            opts,
        } => match_cmd(&mut out, opts, name, *proto, *port, *format),
        CatalogCommand::Export { opts } => export(&mut out, opts),
        CatalogCommand::Check { file } => check(&mut out, file),
    };
    let r = r.and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match r {
        Ok(code) => Ok(code),
        // The output stopped at a write: the command ends there, with success unless the
        // write failed other than by a broken pipe.
        Err(Failure::Io(e)) => crate::cli::written(Err(e)).map(|()| Exit::Ok),
        Err(Failure::Catalog(e)) => {
            drop(out);
            Err(Error::Message(e.to_string()))
        }
    }
}

enum Failure {
    Io(io::Error),
    Catalog(CatalogError),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}
impl From<CatalogError> for Failure {
    fn from(e: CatalogError) -> Self {
        Failure::Catalog(e)
    }
}

type Res = Result<Exit, Failure>;

/// A match as written in JSON: the entry's fields, then port_ok, proto_ok, the placeholder
/// values bound and the labels the leading `*` stood for.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct MatchJson<'a> {
    #[serde(flatten)]
    pub entry: &'a Entry,
    pub port_ok: bool,
    pub proto_ok: bool,
    pub bound: std::collections::BTreeMap<&'a str, &'a str>,
    pub wildcard: Option<String>,
}

impl<'a> MatchJson<'a> {
    /// `name` is the normalized name that matched.
    pub fn new(c: &'a Catalog, m: &'a Match, name: &str) -> MatchJson<'a> {
        let entry = &c.entries()[m.entry];
        MatchJson {
            entry,
            port_ok: m.port_ok,
            proto_ok: m.proto_ok,
            bound: m
                .bound
                .iter()
                .map(|b| (&*b.placeholder, &*b.value))
                .collect(),
            wildcard: wildcard_part(entry, name),
        }
    }
}

fn scope_text(c: &Catalog) -> String {
    match c.scope() {
        Some(s) => format!(
            "cloud {}; scenarios {}",
            s.cloud.map_or("all", |c| c.name()),
            s.scenarios.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
        None => "whole catalog".into(),
    }
}

fn list(out: &mut dyn Write, opts: &CatalogOptions, format: ListFormat) -> Res {
    let c = opts.load()?;
    match format {
        ListFormat::Json => {
            crate::report::pretty::to_writer_pretty(&mut *out, c.entries())
                .map_err(io::Error::from)?;
            writeln!(out)?;
        }
        ListFormat::Toml => out.write_all(c.data().to_toml().as_bytes())?,
        ListFormat::Table => {
            let head = [
                "ID", "CLOUD", "PROTO", "PORTS", "REQ", "SCENARIO", "PATTERN", "PURPOSE",
            ];
            let rows: Vec<[String; 8]> = c
                .entries()
                .iter()
                .map(|e| {
                    [
                        esc(&e.id).into_owned(),
                        e.cloud.name().into(),
                        e.proto.name().into(),
                        ports_text(&e.ports).replace(' ', ""),
                        e.requirement.name().into(),
                        esc(&e.scenario).into_owned(),
                        esc(&e.pattern.text).into_owned(),
                        esc(&e.purpose).into_owned()
                            + if e.websocket { " [websocket]" } else { "" },
                    ]
                })
                .collect();
            write_table(out, &head, &rows)?;
            let tags = &c.data().service_tags;
            if !tags.is_empty() {
                writeln!(out, "\nService tags (IP-range rules):")?;
                let head = [
                    "ID", "CLOUD", "DIR", "PROTO", "PORTS", "SCENARIO", "TAG", "PURPOSE",
                ];
                let rows: Vec<[String; 8]> = tags
                    .iter()
                    .map(|t| {
                        [
                            esc(&t.id).into_owned(),
                            t.cloud.name().into(),
                            match t.direction {
                                crate::catalog::Direction::Outbound => "out".into(),
                                crate::catalog::Direction::Inbound => "in".into(),
                            },
                            t.proto.name().into(),
                            ports_text(&t.ports).replace(' ', ""),
                            esc(&t.scenario).into_owned(),
                            esc(&t.tag).into_owned(),
                            esc(&t.purpose).into_owned(),
                        ]
                    })
                    .collect();
                write_table(out, &head, &rows)?;
            }
            let zones = &c.data().private_endpoint_zones;
            if !zones.is_empty() {
                writeln!(out, "\nPrivate endpoint DNS zones:")?;
                let head = ["ZONE", "CLOUD", "SERVICE"];
                let rows: Vec<[String; 3]> = zones
                    .iter()
                    .map(|z| {
                        [
                            esc(&z.zone).into_owned(),
                            z.cloud.name().into(),
                            esc(&z.service).into_owned(),
                        ]
                    })
                    .collect();
                write_table(out, &head, &rows)?;
            }
            writeln!(out, "\n{} entries ({})", c.entries().len(), scope_text(&c))?;
        }
    }
    Ok(Exit::Ok)
}

fn write_table<const N: usize>(
    out: &mut dyn Write,
    head: &[&str; N],
    rows: &[[String; N]],
) -> io::Result<()> {
    let mut w = [0usize; N];
    for (i, h) in head.iter().enumerate() {
        w[i] = h.chars().count();
    }
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.extend(std::iter::repeat_n(' ', w[i] - c.chars().count() + 2));
            }
        }
        s
    };
    writeln!(out, "{}", line(head.to_vec()))?;
    for r in rows {
        writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// The labels a leading `*` stood for, when the pattern has one.
fn wildcard_part(e: &Entry, name: &str) -> Option<String> {
    if !e.pattern.wildcard {
        return None;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let k = labels.len().checked_sub(e.pattern.labels.len())?;
    Some(labels[..k].join("."))
}

fn match_cmd(
    out: &mut dyn Write,
    opts: &CatalogOptions,
    name: &str,
    proto: Option<Proto>,
    port: Option<u16>,
    format: MatchFormat,
) -> Res {
    let c = opts.load()?;
    let norm = normalize(name).map(|n| n.into_owned());
    let matches = c.match_endpoint(name, proto, port);
    let shown = esc(name);
    if format == MatchFormat::Json {
        let n = norm.as_deref().unwrap_or("");
        let v: Vec<MatchJson> = matches.iter().map(|m| MatchJson::new(&c, m, n)).collect();
        crate::report::pretty::to_writer_pretty(&mut *out, &v).map_err(io::Error::from)?;
        writeln!(out)?;
        return Ok(Exit::Ok);
    }
    let Some(n) = norm else {
        writeln!(
            out,
            "{shown}: not a host name that can match (empty, or an empty label)"
        )?;
        return Ok(Exit::Ok);
    };
    let asked = match (proto, port) {
        (None, None) => String::new(),
        (Some(pr), None) => format!(" ({})", pr.name()),
        (None, Some(po)) => format!(" (port {po})"),
        (Some(pr), Some(po)) => format!(" ({}/{po})", pr.name()),
    };
    let as_ascii = if n != name {
        format!(" = {}", esc(&n))
    } else {
        String::new()
    };
    if matches.is_empty() {
        writeln!(
            out,
            "{shown}{as_ascii}{asked}: no catalog entry matches ({})",
            scope_text(&c)
        )?;
        // Say where it would match outside the scope, if anywhere.
        let wide = CatalogOptions {
            cloud: Some(CloudArg::All),
            scenarios: vec!["all".into()],
            ..opts.clone()
        };
        if let Ok(all) = wide.load() {
            for m in all.match_name(name) {
                let e = &all.entries()[m.entry];
                let mut how = Vec::new();
                let cloud = c.scope().and_then(|s| s.cloud);
                if e.cloud != crate::catalog::Cloud::Any && cloud.is_some_and(|cl| cl != e.cloud) {
                    how.push(format!("--cloud {}", e.cloud.name()));
                }
                if c.scope()
                    .is_some_and(|s| !s.scenarios.contains(&e.scenario))
                {
                    how.push(format!("--scenario {}", esc(&e.scenario)));
                }
                writeln!(
                    out,
                    "  outside the scope: {} ({}, cloud {}, scenario {}){}",
                    esc(&e.id),
                    esc(&e.pattern.text),
                    e.cloud.name(),
                    esc(&e.scenario),
                    if how.is_empty() {
                        String::new()
                    } else {
                        format!(": in scope with {}", how.join(" "))
                    }
                )?;
            }
        }
        return Ok(Exit::Ok);
    }
    writeln!(
        out,
        "{shown}{as_ascii}{asked}: {} matching {}, most specific first ({})",
        matches.len(),
        if matches.len() == 1 {
            "entry"
        } else {
            "entries"
        },
        scope_text(&c)
    )?;
    for (i, m) in matches.iter().enumerate() {
        let e = &c.entries()[m.entry];
        writeln!(
            out,
            "{:>3}. {}  {}  [{}, scenario {}, cloud {}]",
            i + 1,
            esc(&e.id),
            esc(&e.pattern.text),
            e.requirement.name(),
            esc(&e.scenario),
            e.cloud.name()
        )?;
        let mut why = Vec::new();
        if !e.pattern.wildcard && m.bound.is_empty() {
            why.push("exact name".to_string());
        }
        if let Some(w) = wildcard_part(e, &n) {
            why.push(format!("`*` = {}", esc(&w)));
        }
        for b in m.bound.iter() {
            why.push(format!("<{}> = {}", esc(&b.placeholder), esc(&b.value)));
        }
        writeln!(out, "     why: {}", why.join(", "))?;
        let verdict = if port.is_none() && proto.is_none() {
            String::new()
        } else if m.port_ok {
            "  -> allowed".into()
        } else if !m.proto_ok {
            format!(
                "  -> protocol {} not listed",
                proto.map_or("?", |p| p.name())
            )
        } else {
            format!("  -> port {} not listed", port.unwrap_or(0))
        };
        writeln!(
            out,
            "     {} {}{}{verdict}",
            e.proto.name(),
            ports_text(&e.ports),
            if e.websocket { " (websocket)" } else { "" },
        )?;
        writeln!(out, "     purpose: {}", esc(&e.purpose))?;
        if let Some(cnd) = &e.condition {
            writeln!(out, "     condition: {}", esc(cnd))?;
        }
        if let Some(note) = &e.note {
            writeln!(out, "     note: {}", esc(note))?;
        }
        if !e.sources.is_empty() {
            let s: Vec<String> = e.sources.iter().map(|s| esc(s).into_owned()).collect();
            writeln!(out, "     sources: {}", s.join(", "))?;
        }
    }
    Ok(Exit::Ok)
}

fn export(out: &mut dyn Write, opts: &CatalogOptions) -> Res {
    if *opts == CatalogOptions::default() {
        out.write_all(BUILTIN_TOML.as_bytes())?;
        return Ok(Exit::Ok);
    }
    let placeholders = opts.placeholders()?;
    let (mut data, _) = opts.load_data()?;
    data.fill_placeholders(&placeholders);
    out.write_all(data.to_toml().as_bytes())?;
    Ok(Exit::Ok)
}

fn check(out: &mut dyn Write, file: &std::path::Path) -> Res {
    let origin = file.display().to_string();
    let text = if origin == "-" {
        let mut s = String::new();
        io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CatalogError::Io {
                path: origin.clone(),
                message: e.to_string(),
            })?;
        s
    } else {
        match std::fs::read(file) {
            Ok(b) => match String::from_utf8(b) {
                Ok(s) => s,
                Err(_) => {
                    return Err(CatalogError::Invalid {
                        origin,
                        message: "the file is not UTF-8 text".into(),
                    }
                    .into())
                }
            },
            Err(e) => {
                return Err(CatalogError::Io {
                    path: origin,
                    message: e.to_string(),
                }
                .into())
            }
        }
    };
    match schema::check_any(&text, &origin) {
        Ok(d) => {
            writeln!(
                out,
                "{}: ok: {} entries, {} service tags, {} private endpoint zones, scenarios: {}",
                esc(&origin),
                d.entries.len(),
                d.service_tags.len(),
                d.private_endpoint_zones.len(),
                d.scenario_names()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
            Ok(Exit::Ok)
        }
        Err(errors) => {
            let lines: Vec<&str> = text.lines().collect();
            let mut err = io::stderr().lock();
            for e in &errors {
                let _ = writeln!(err, "error: {e}");
                if let Some(l) = e.line().filter(|&l| l > 0) {
                    if let Some(src) = lines.get(l - 1) {
                        let _ = writeln!(err, "  {l:>4} | {}", esc(src.trim_end()));
                    }
                }
            }
            let _ = writeln!(
                err,
                "{}: {} error{}",
                esc(&origin),
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            Ok(Exit::Error)
        }
    }
}
