//! The audit's vocabularies: verdicts, confidences and `--fail-on` levels, with their names
//! (the mechanisms live with the rules that pick them, in `mechanism.rs`).

use crate::vocab_macro::vocabulary;

vocabulary! {
    /// Verdict of one flow against the catalog, in the order of findings in a report.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Verdict {
        RequiredBlocked = "required-blocked",
        OptionalBlocked = "optional-blocked",
        UnexpectedReached = "unexpected-reached",
        UnexpectedBlocked = "unexpected-blocked",
        RequiredReached = "required-reached",
        OptionalReached = "optional-reached",
        /// The wire cannot tell: a handshake with no data either way, or a capture that began
        /// after the flow did and shows nothing from the far end. Not in the design's first
        /// list: calling these reached would claim what the far end never proved, calling them
        /// blocked would turn every browser preconnect into a finding.
        Inconclusive = "inconclusive",
        /// No name could be given to the flow.
        Unattributed = "unattributed",
        /// A catalog name reached on a protocol or port its entry does not list.
        OtherPortReached = "other-port-reached",
        /// A catalog name blocked on a protocol or port its entry does not list (QUIC to a host
        /// listed for TCP 443 among them: clients fall back to TCP, so it costs only latency).
        OtherPortBlocked = "other-port-blocked",
    }
}

impl Verdict {
    pub fn blocked(self) -> bool {
        matches!(
            self,
            Verdict::RequiredBlocked
                | Verdict::OptionalBlocked
                | Verdict::UnexpectedBlocked
                | Verdict::OtherPortBlocked
        )
    }
}

vocabulary! {
    /// How sure a mechanism is, from the surest.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    pub enum Confidence {
        High = "high",
        Medium = "medium",
        Low = "low",
    }
}

/// `--fail-on`: the least severe finding that makes the exit code 1; each level includes the
/// ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// A required host was blocked (the default).
    RequiredBlocked,
    /// Also: a websocket instance whose diagnosis is not healthy.
    WebsocketProblem,
    /// Also: something the catalog does not expect got through.
    UnexpectedReached,
    /// Any blocked or unexpected finding.
    Any,
    /// Never: exit 0 unless an input failed.
    Never,
}

impl FailOn {
    /// Whether a finding with this verdict (its JSON name) makes the exit code 1. A weak
    /// finding counts only for `any`: a low-confidence local-block (resolved, never connected:
    /// browsers resolve names they never use), or one whose every flow was named by a guess
    /// (another client's DNS answer, a service tag). The one rule for `audit`, `live` and
    /// `merge` (which only has the JSON).
    pub fn hit(self, verdict: &str, weak: bool) -> bool {
        let firm_required = verdict == Verdict::RequiredBlocked.name() && !weak;
        match self {
            FailOn::RequiredBlocked | FailOn::WebsocketProblem => firm_required,
            FailOn::UnexpectedReached => {
                firm_required || verdict == Verdict::UnexpectedReached.name()
            }
            FailOn::Any => {
                verdict.ends_with("-blocked") || verdict == Verdict::UnexpectedReached.name()
            }
            FailOn::Never => false,
        }
    }

    /// Whether a websocket instance whose diagnosis is not healthy makes the exit code 1.
    pub fn websockets(self) -> bool {
        matches!(
            self,
            FailOn::WebsocketProblem | FailOn::UnexpectedReached | FailOn::Any
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::Mechanism;
    use super::{Confidence, FailOn, Verdict};

    /// Every name reads back as its value, the JSON writes the same names, and `ALL` holds
    /// each value once in the enum's order (the order `merge` sorts findings by).
    #[test]
    fn names_round_trip_in_order() {
        fn check<T: Copy + Ord + std::fmt::Debug + serde::Serialize>(
            all: &[T],
            name: fn(T) -> &'static str,
            from_name: fn(&str) -> Option<T>,
        ) {
            assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
            for &v in all {
                assert_eq!(from_name(name(v)), Some(v));
                assert_eq!(serde_json::to_value(v).unwrap(), name(v));
            }
            assert_eq!(from_name("no-such-name"), None);
        }
        check(&Verdict::ALL, Verdict::name, Verdict::from_name);
        check(&Mechanism::ALL, Mechanism::name, Mechanism::from_name);
        check(&Confidence::ALL, Confidence::name, Confidence::from_name);
        for (i, v) in Verdict::ALL.into_iter().enumerate() {
            assert_eq!(v as usize, i);
        }
    }

    #[test]
    fn fail_on_levels() {
        let (t, f) = (true, false);
        let rows = [
            ("required-blocked", f, [t, t, t, t, f]),
            ("required-blocked", t, [f, f, f, t, f]),
            ("optional-blocked", f, [f, f, f, t, f]),
            ("unexpected-blocked", f, [f, f, f, t, f]),
            ("unexpected-reached", f, [f, f, t, t, f]),
            ("required-reached", f, [f, f, f, f, f]),
            ("inconclusive", f, [f, f, f, f, f]),
        ];
        let levels = [
            FailOn::RequiredBlocked,
            FailOn::WebsocketProblem,
            FailOn::UnexpectedReached,
            FailOn::Any,
            FailOn::Never,
        ];
        for (verdict, local, want) in rows {
            for (level, w) in levels.iter().zip(want) {
                assert_eq!(
                    level.hit(verdict, local),
                    w,
                    "{verdict} local={local} {level:?}"
                );
            }
        }
        let ws: Vec<bool> = levels.iter().map(|l| l.websockets()).collect();
        assert_eq!(ws, [f, t, t, t, f]);
    }
}
