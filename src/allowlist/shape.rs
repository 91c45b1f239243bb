//! Sets of host names, and how two of them relate: does an allowlist's destination hold every
//! name a catalog pattern stands for, some of them, or none; does a catalog pattern hold every
//! name a destination lets through.
//!
//! A [`Shape`] is a run of labels, right-aligned, and what may stand left of them: nothing
//! (`login.microsoftonline.com`), one or more labels (`*.azureml.ms`, Azure Firewall's and the
//! catalog's wildcard), or zero or more (squid's `.azureml.ms`, the domain and every name under
//! it). A catalog pattern's unfilled placeholder is a label that may be any one label
//! ([`Lab::Var`]); a destination has literal labels only. `*` alone is every name.

use std::collections::BTreeMap;

use crate::catalog::{Label, Pattern, Placeholders};

/// One label of a shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lab {
    /// Exactly this (normalized) label.
    Lit(String),
    /// Any one label (an unfilled catalog placeholder, by its name).
    Var(String),
}

/// What may stand left of a shape's labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// Nothing: the shape is one name (or one name per placeholder value).
    Nothing,
    /// One or more labels (`*.a.b`).
    OneOrMore,
    /// Zero or more labels (squid's `.a.b`: `a.b` and every name under it).
    ZeroOrMore,
}

impl Left {
    fn allows_none(self) -> bool {
        matches!(self, Left::Nothing | Left::ZeroOrMore)
    }
    fn allows_some(self) -> bool {
        matches!(self, Left::OneOrMore | Left::ZeroOrMore)
    }
}

/// A set of host names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Left to right, as written.
    pub labels: Vec<Lab>,
    pub left: Left,
}

/// Placeholder values that make one shape hold another (placeholder -> the label it must be).
pub type Bindings = BTreeMap<String, String>;

impl Shape {
    /// Every name (`*`).
    pub fn every_name() -> Shape {
        Shape {
            labels: Vec::new(),
            left: Left::OneOrMore,
        }
    }

    /// A catalog pattern with the placeholders that have a value filled in; the others stay
    /// free labels.
    pub fn of_pattern(p: &Pattern, values: &Placeholders) -> Shape {
        Shape {
            labels: p
                .labels
                .iter()
                .map(|l| match l {
                    Label::Literal(s) => Lab::Lit(s.clone()),
                    Label::Placeholder(n) => match values.get(n) {
                        Some(v) => Lab::Lit(v.to_string()),
                        None => Lab::Var(n.clone()),
                    },
                })
                .collect(),
            left: if p.wildcard {
                Left::OneOrMore
            } else {
                Left::Nothing
            },
        }
    }

    /// A destination as an allowlist writes it, already normalized (lower case, no trailing
    /// dot): `a.b`, `*.a.b`, `.a.b` (with `squid_dot`: the domain and its subdomains), `*`.
    /// `None` for anything else (an empty label, `*` inside a name).
    pub fn of_destination(text: &str) -> Option<Shape> {
        if text == "*" {
            return Some(Shape::every_name());
        }
        let (left, rest) = if let Some(r) = text.strip_prefix("*.") {
            (Left::OneOrMore, r)
        } else if let Some(r) = text.strip_prefix('.') {
            (Left::ZeroOrMore, r)
        } else {
            (Left::Nothing, text)
        };
        if rest.is_empty() || rest.contains('*') {
            return None;
        }
        let labels: Vec<Lab> = rest.split('.').map(|l| Lab::Lit(l.to_string())).collect();
        if labels
            .iter()
            .any(|l| matches!(l, Lab::Lit(s) if s.is_empty()))
        {
            return None;
        }
        Some(Shape { labels, left })
    }

    /// `true` for `*` (every name).
    pub fn is_every_name(&self) -> bool {
        self.labels.is_empty()
    }

    /// The shape with squid's apex left out: `.a.b` read as `*.a.b` (used when asking whether a
    /// destination is broader than the catalog: squid has no way to write "subdomains only").
    pub fn without_apex(&self) -> Shape {
        Shape {
            labels: self.labels.clone(),
            left: match self.left {
                Left::ZeroOrMore => Left::OneOrMore,
                l => l,
            },
        }
    }
}

/// Whether `outer` holds every name of `inner`: `Some` with the placeholder values of `inner`
/// for which it does (empty: for every value), `None` when it does not. A placeholder of
/// `outer` matches any label of `inner`.
pub fn holds(outer: &Shape, inner: &Shape) -> Option<Bindings> {
    let (a, b) = (outer.labels.len(), inner.labels.len());
    // Every name of `inner` has at least `b` labels: `outer` must not ask for more of them
    // than `inner` fixes, or the names of `inner` with an arbitrary left part escape it.
    if b < a {
        return None;
    }
    let mut bound = Bindings::new();
    for (o, i) in outer.labels.iter().rev().zip(inner.labels.iter().rev()) {
        match (o, i) {
            (Lab::Lit(x), Lab::Lit(y)) if x != y => return None,
            (Lab::Lit(x), Lab::Var(v)) => match bound.get(v) {
                Some(prev) if prev != x => return None,
                _ => {
                    bound.insert(v.clone(), x.clone());
                }
            },
            _ => {}
        }
    }
    // What stands left of `outer`'s labels in a name of `inner`: `b - a` fixed labels, then
    // whatever `inner` allows on its left.
    let surplus = b - a;
    let ok = match outer.left {
        Left::Nothing => surplus == 0 && inner.left == Left::Nothing,
        Left::OneOrMore => surplus > 0 || inner.left == Left::OneOrMore,
        Left::ZeroOrMore => true,
    };
    ok.then_some(bound)
}

/// Whether some name is in both.
pub fn overlaps(x: &Shape, y: &Shape) -> bool {
    let (a, b) = (x.labels.len(), y.labels.len());
    let compatible = x
        .labels
        .iter()
        .rev()
        .zip(y.labels.iter().rev())
        .all(|pair| match pair {
            (Lab::Lit(p), Lab::Lit(q)) => p == q,
            _ => true,
        });
    if !compatible {
        return false;
    }
    match a.cmp(&b) {
        std::cmp::Ordering::Equal => {
            (x.left.allows_none() && y.left.allows_none())
                || (x.left.allows_some() && y.left.allows_some())
        }
        // The longer one's extra labels must come from the shorter one's left part.
        std::cmp::Ordering::Greater => y.left.allows_some(),
        std::cmp::Ordering::Less => x.left.allows_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> Shape {
        Shape::of_pattern(&Pattern::parse(s).unwrap(), &Placeholders::default())
    }
    fn dest(s: &str) -> Shape {
        Shape::of_destination(s).unwrap()
    }
    fn b(pairs: &[(&str, &str)]) -> Option<Bindings> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn a_wildcard_is_held_by_itself_or_a_broader_one_never_by_a_name() {
        let p = pat("*.azureml.ms");
        assert_eq!(holds(&dest("*.azureml.ms"), &p), b(&[]));
        assert_eq!(holds(&dest("*.ms"), &p), b(&[]));
        assert_eq!(holds(&dest(".azureml.ms"), &p), b(&[]));
        assert_eq!(holds(&dest("*"), &p), b(&[]));
        assert_eq!(holds(&dest("ws.azureml.ms"), &p), None);
        assert_eq!(holds(&dest("*.ws.azureml.ms"), &p), None);
        assert_eq!(holds(&dest("azureml.ms"), &p), None);
        assert_eq!(holds(&dest("*.xazureml.ms"), &p), None);
        assert!(overlaps(&dest("ws.azureml.ms"), &p));
        assert!(overlaps(&dest("*.ws.azureml.ms"), &p));
        assert!(!overlaps(&dest("azureml.ms"), &p));
        assert!(!overlaps(&dest("*.azureml.net"), &p));
    }

    #[test]
    fn an_unfilled_placeholder_is_held_for_the_label_a_name_gives_it() {
        let p = pat("<storage>.blob.core.windows.net");
        assert_eq!(
            holds(&dest("acct.blob.core.windows.net"), &p),
            b(&[("storage", "acct")])
        );
        assert_eq!(holds(&dest("*.blob.core.windows.net"), &p), b(&[]));
        assert_eq!(holds(&dest("*.windows.net"), &p), b(&[]));
        assert_eq!(holds(&dest("blob.core.windows.net"), &p), None);
        assert_eq!(holds(&dest("a.b.blob.core.windows.net"), &p), None);
        let p = pat("*.<region>.batch.azure.com");
        assert_eq!(
            holds(&dest("*.eastus.batch.azure.com"), &p),
            b(&[("region", "eastus")])
        );
        assert_eq!(holds(&dest("*.batch.azure.com"), &p), b(&[]));
        assert_eq!(holds(&dest("x.eastus.batch.azure.com"), &p), None);
        assert!(overlaps(&dest("x.eastus.batch.azure.com"), &p));
    }

    #[test]
    fn a_filled_placeholder_is_a_literal() {
        let mut v = Placeholders::default();
        v.set("storage", "acct").unwrap();
        let p = Shape::of_pattern(
            &Pattern::parse("<storage>.blob.core.windows.net").unwrap(),
            &v,
        );
        assert_eq!(holds(&dest("acct.blob.core.windows.net"), &p), b(&[]));
        assert_eq!(holds(&dest("other.blob.core.windows.net"), &p), None);
        assert!(!overlaps(&dest("other.blob.core.windows.net"), &p));
    }

    #[test]
    fn squid_dot_holds_the_domain_and_its_subdomains() {
        assert_eq!(holds(&dest(".azurecr.io"), &pat("azurecr.io")), b(&[]));
        assert_eq!(holds(&dest("*.azurecr.io"), &pat("azurecr.io")), None);
        assert!(overlaps(&dest(".azurecr.io"), &pat("azurecr.io")));
        // Broader-than-needed asks whether the catalog holds the destination, apex aside.
        let d = dest(".azureml.ms").without_apex();
        assert_eq!(holds(&pat("*.azureml.ms"), &d), b(&[]));
        assert_eq!(holds(&pat("*.azureml.ms"), &dest(".azureml.ms")), None);
    }

    #[test]
    fn the_catalog_holds_a_destination() {
        // Reversed: a catalog pattern's placeholder matches any label of the destination.
        assert!(holds(
            &pat("<storage>.blob.core.windows.net"),
            &dest("acct.blob.core.windows.net")
        )
        .is_some());
        assert!(holds(&pat("*.azureml.ms"), &dest("*.api.azureml.ms")).is_some());
        assert!(holds(&pat("*.blob.core.windows.net"), &dest("*.windows.net")).is_none());
        assert!(holds(&pat("login.microsoftonline.com"), &dest("*")).is_none());
    }

    #[test]
    fn destinations_parse() {
        assert_eq!(dest("*"), Shape::every_name());
        assert!(Shape::of_destination("a.*.b").is_none());
        assert!(Shape::of_destination("*.").is_none());
        assert!(Shape::of_destination(".").is_none());
        assert!(Shape::of_destination("a..b").is_none());
    }
}
