//! What produced a document (`provenance`, in every JSON document): the tool's version and
//! commit, the catalog (its title, entry count and digest), the cloud, scenarios and
//! placeholder values in scope, the options that shape the results, and the run's labels
//! (`--label key=value`, also on every input and NDJSON row). `allowscope merge` compares the
//! documents' provenance before it adds anything up (see `crate::audit::merge`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The tool that wrote a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    pub version: String,
    /// The git commit the binary was built from (null outside a git checkout).
    pub commit: Option<String>,
}

impl Tool {
    /// This build.
    pub fn this() -> Tool {
        let commit = env!("ALLOWSCOPE_COMMIT");
        Tool {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            commit: (!commit.is_empty()).then(|| commit.to_string()),
        }
    }
}

/// The catalog a document was judged against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogInfo {
    pub title: Option<String>,
    /// Entries in scope (the cloud's, of the scenarios in scope).
    pub entries: u64,
    /// `sha256:` and the SHA-256 of the catalog in scope as `allowscope catalog export` writes
    /// it (entries, service-tag rules, private endpoint zones, sources, scenarios): two runs
    /// with the same digest judged against the same catalog.
    pub digest: String,
}

impl CatalogInfo {
    pub fn of(catalog: &crate::catalog::Catalog) -> CatalogInfo {
        let data = catalog.data();
        CatalogInfo {
            title: data.title.clone(),
            entries: data.entries.len() as u64,
            digest: format!("sha256:{}", sha256_hex(data.to_toml().as_bytes())),
        }
    }
}

/// The options of a run that shape its results (the flow table's and the catalog's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    pub reassembly_cap: u64,
    pub max_flows: u64,
    pub tcp_idle_s: u64,
    pub udp_idle_s: u64,
    /// `--catalog` files, as given.
    pub catalog_files: Vec<String>,
    /// "merge" or "replace" (`--catalog-mode`).
    pub catalog_mode: String,
    pub no_default_scenarios: bool,
    /// `--service-tags` file, as given.
    pub service_tags: Option<String>,
}

impl Options {
    /// The flow table's options of `cfg`, with the built-in catalog and no service tags.
    pub fn of(cfg: &crate::flow::FlowConfig) -> Options {
        Options {
            reassembly_cap: cfg.reassembly_cap as u64,
            max_flows: cfg.max_flows as u64,
            tcp_idle_s: (cfg.tcp_idle_ns / 1_000_000_000) as u64,
            udp_idle_s: (cfg.udp_idle_ns / 1_000_000_000) as u64,
            catalog_files: Vec::new(),
            catalog_mode: "merge".into(),
            no_default_scenarios: false,
            service_tags: None,
        }
    }

    /// With the catalog options of a command line (`--catalog`, `--catalog-mode`,
    /// `--no-default-scenarios`) and its `--service-tags` file.
    pub fn with_catalog(
        mut self,
        c: &crate::catalog::CatalogOptions,
        service_tags: Option<&std::path::Path>,
    ) -> Options {
        self.catalog_files = c.catalogs.iter().map(|p| p.display().to_string()).collect();
        self.catalog_mode = match c.catalog_mode {
            crate::catalog::CatalogMode::Merge => "merge",
            crate::catalog::CatalogMode::Replace => "replace",
        }
        .into();
        self.no_default_scenarios = c.no_default_scenarios;
        self.service_tags = service_tags.map(|p| p.display().to_string());
        self
    }
}

/// What produced a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    pub tool: Tool,
    /// The command that wrote the document: "audit", "flows", "dns", "ws", "live", "merge".
    pub command: String,
    /// Null for a command that reads no catalog (`flows`, `dns`).
    pub catalog: Option<CatalogInfo>,
    /// The cloud in scope ("public", "gov", "china"; null: every cloud).
    pub cloud: Option<String>,
    /// The scenarios in scope, sorted.
    pub scenarios: Vec<String>,
    /// Placeholder values given (region, storage, acr, workspace-id).
    pub placeholders: BTreeMap<String, String>,
    /// Null for a merged document (each source has its own).
    pub options: Option<Options>,
    /// `--label key=value` of the run; a merged document's: the labels every source shares.
    pub labels: BTreeMap<String, String>,
    /// A merged document: the provenance of each document merged, in the order given (those
    /// of a merged document in its place).
    pub sources: Vec<Provenance>,
}

impl Provenance {
    /// The provenance of a run of `command` against `catalog` (none for `flows` and `dns`).
    pub fn of_run(
        command: &str,
        catalog: Option<&crate::catalog::Catalog>,
        options: Options,
        labels: &BTreeMap<String, String>,
    ) -> Provenance {
        let (cloud, scenarios) = match catalog.and_then(|c| c.scope()) {
            Some(s) => (
                s.cloud.map(|c| c.name().to_string()),
                s.scenarios.iter().cloned().collect(),
            ),
            None => (None, Vec::new()),
        };
        Provenance {
            tool: Tool::this(),
            command: command.into(),
            catalog: catalog.map(CatalogInfo::of),
            cloud,
            scenarios,
            placeholders: catalog
                .map(|c| c.placeholders().0.clone())
                .unwrap_or_default(),
            options: Some(options),
            labels: labels.clone(),
            sources: Vec::new(),
        }
    }
}

/// One `--label key=value`: a key of letters, digits, `_`, `-` and `.` (at most 64), a value
/// of at most 256 bytes without control characters (clap's value parser: the error is said
/// with the argument).
pub fn parse_label(a: &str) -> Result<(String, String), String> {
    let Some((k, v)) = a.split_once('=') else {
        return Err("expected KEY=VALUE".into());
    };
    let key_ok = !k.is_empty()
        && k.len() <= 64
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !key_ok {
        return Err("the key must be 1-64 letters, digits, '_', '-' or '.'".into());
    }
    if v.len() > 256 || v.chars().any(char::is_control) {
        return Err("the value must be at most 256 bytes, without control characters".into());
    }
    Ok((k.to_string(), v.to_string()))
}

/// A run's labels, from its `--label` arguments (a key given again takes the later value).
pub fn labels(args: &[(String, String)]) -> BTreeMap<String, String> {
    args.iter().cloned().collect()
}

/// `k=v,k2=v2` (sorted by key): how a merge of documents with different labels names their
/// inputs (`host=a:trace.pcap`).
pub fn labels_text(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub use crate::capture::{hex, sha256_hex};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_and_refuse() {
        assert_eq!(parse_label("host=a=b"), Ok(("host".into(), "a=b".into())));
        let l = labels(&[
            parse_label("site=west eu").unwrap(),
            parse_label("host=a").unwrap(),
            parse_label("host=b").unwrap(),
        ]);
        assert_eq!(labels_text(&l), "host=b,site=west eu");
        for bad in ["host", "=a", "ho st=a", "host=\u{1b}[31m", "a:b=c"] {
            assert!(parse_label(bad).is_err(), "{bad}");
        }
        assert!(parse_label(&format!("k={}", "v".repeat(257))).is_err());
        assert!(parse_label(&format!("{}=v", "k".repeat(65))).is_err());
    }

    #[test]
    fn sha256_of_a_known_string() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_builtin_catalog_has_a_stable_digest() {
        let a = CatalogInfo::of(&crate::catalog::Catalog::builtin());
        let b = CatalogInfo::of(&crate::catalog::Catalog::builtin());
        assert_eq!(a, b);
        assert!(a.digest.starts_with("sha256:") && a.digest.len() == 7 + 64);
        assert!(a.entries > 50);
    }
}
