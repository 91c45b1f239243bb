//! Command-line options that choose and fill a catalog; shared by `catalog` and `audit`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{
    Catalog, CatalogData, CatalogError, Cloud, Placeholders, ScenarioSel, Scope, CORE_SCENARIO,
};

/// How `--catalog` files combine with the built-in catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CatalogMode {
    /// Add the files' entries to the built-in ones; an entry with an id already loaded replaces it
    #[default]
    Merge,
    /// Use only the files' entries
    Replace,
}

/// `--cloud` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CloudArg {
    Public,
    Gov,
    China,
    /// Every cloud
    All,
}

impl CloudArg {
    pub fn cloud(self) -> Option<Cloud> {
        match self {
            CloudArg::Public => Some(Cloud::Public),
            CloudArg::Gov => Some(Cloud::Gov),
            CloudArg::China => Some(Cloud::China),
            CloudArg::All => None,
        }
    }
}

/// Which catalog to use, for which cloud and scenarios, with which placeholder values.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogOptions {
    /// A catalog file: TOML in the catalog schema (see `allowscope catalog export`), or the JSON a
    /// workspace's outboundNetworkDependenciesEndpoints call returns (recognized by content).
    /// Repeatable
    #[arg(long = "catalog", value_name = "FILE")]
    pub catalogs: Vec<PathBuf>,
    /// How --catalog files combine with the built-in catalog
    #[arg(long, value_enum, default_value_t = CatalogMode::Merge, value_name = "MODE")]
    pub catalog_mode: CatalogMode,
    /// The workspace's cloud [default: public]
    #[arg(long, value_enum, value_name = "CLOUD")]
    pub cloud: Option<CloudArg>,
    /// A scenario to put in scope besides the default ones (repeatable, or comma-separated),
    /// e.g. private-endpoint, hbi-workspace, vscode, python-packages; `all` for every scenario.
    /// `allowscope catalog list --scenario all` shows them
    #[arg(long = "scenario", value_name = "NAME", value_delimiter = ',')]
    pub scenarios: Vec<String>,
    /// Keep only `core` and the --scenario ones, not the catalog's default scenarios
    #[arg(long)]
    pub no_default_scenarios: bool,
    /// The workspace's Azure region, e.g. eastus (fills `<region>`; unfilled it matches any label)
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// The workspace's default storage account name (fills `<storage>`)
    #[arg(long, value_name = "ACCOUNT")]
    pub storage: Option<String>,
    /// The workspace's container registry name (fills `<acr>`)
    #[arg(long, value_name = "NAME")]
    pub acr: Option<String>,
    /// The workspace GUID (fills `<workspace-id>`)
    #[arg(long, value_name = "GUID")]
    pub workspace_id: Option<String>,
}

impl CatalogOptions {
    /// The placeholder values given.
    pub fn placeholders(&self) -> Result<Placeholders, CatalogError> {
        let mut p = Placeholders::default();
        for (name, v) in [
            ("region", &self.region),
            ("storage", &self.storage),
            ("acr", &self.acr),
            ("workspace-id", &self.workspace_id),
        ] {
            if let Some(v) = v {
                p.set(name, v)?;
            }
        }
        Ok(p)
    }

    /// Loads the catalogs, merges or replaces, checks the scenario names, keeps the entries of
    /// the cloud and scenarios in scope, and compiles the matcher.
    pub fn load_data(&self) -> Result<(CatalogData, Scope), CatalogError> {
        let mut data = match self.catalog_mode {
            CatalogMode::Merge => CatalogData::builtin(),
            CatalogMode::Replace if self.catalogs.is_empty() => {
                return Err(CatalogError::Options {
                    message: "--catalog-mode replace needs at least one --catalog FILE".into(),
                })
            }
            CatalogMode::Replace => CatalogData::default(),
        };
        for f in &self.catalogs {
            data.merge(CatalogData::load_file(f)?);
        }
        let known = data.scenario_names();
        let mut wanted = BTreeSet::new();
        let mut all = false;
        for s in &self.scenarios {
            let s = s.trim().to_ascii_lowercase();
            if s == "all" {
                all = true;
            } else if s.is_empty() {
                continue;
            } else if known.contains(&s) {
                wanted.insert(s);
            } else {
                return Err(CatalogError::Options {
                    message: format!(
                        "unknown scenario `{s}`; this catalog has: all, {}",
                        known.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        }
        let scenarios = if all {
            ScenarioSel::All
        } else {
            if !self.no_default_scenarios {
                wanted.extend(data.default_scenarios());
            }
            wanted.insert(CORE_SCENARIO.to_string());
            ScenarioSel::Set(wanted)
        };
        let cloud = self.cloud.unwrap_or(CloudArg::Public).cloud();
        data.retain_scope(cloud, &scenarios);
        let names = match &scenarios {
            ScenarioSel::All => known,
            ScenarioSel::Set(s) => s.clone(),
        };
        Ok((
            data,
            Scope {
                cloud,
                scenarios: names,
            },
        ))
    }

    /// [`CatalogOptions::load_data`], compiled with the placeholder values.
    pub fn load(&self) -> Result<Catalog, CatalogError> {
        let placeholders = self.placeholders()?;
        let (data, scope) = self.load_data()?;
        let mut c = Catalog::new(data, placeholders);
        c.scope = Some(scope);
        Ok(c)
    }
}
