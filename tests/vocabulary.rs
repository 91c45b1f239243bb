//! The README's vocabularies name every value the code writes: each flow outcome, verdict and
//! mechanism appears in README.md as `name`. A new value cannot ship undocumented (the README is
//! the one place besides the enum that a new mechanism or outcome touches).

use allowscope::audit::{Mechanism, Verdict};
use allowscope::flow::Outcome;

fn readme() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    std::fs::read_to_string(path).expect("README.md")
}

fn missing<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let text = readme();
    names
        .into_iter()
        .filter(|n| !text.contains(&format!("`{n}`")))
        .collect()
}

#[test]
fn readme_names_every_outcome_verdict_and_mechanism() {
    let gone = missing(
        Outcome::ALL
            .iter()
            .map(|o| o.name())
            .chain(Verdict::ALL.iter().map(|v| v.name()))
            .chain(Mechanism::ALL.iter().map(|m| m.name())),
    );
    assert!(gone.is_empty(), "README.md does not name {gone:?}");
}
