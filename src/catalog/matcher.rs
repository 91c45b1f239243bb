//! The compiled matcher.
//!
//! Every pattern is split into an *anchor* (its longest run of literal labels at the right end,
//! filled placeholders counting as literals) and a *head* (the labels left of the anchor, plus
//! the leading `*`). Patterns are filed in one hash map under their anchor. A name is looked up
//! at each of its label boundaries (`a.b.c` -> `a.b.c`, `b.c`, `c`), so `evilazureml.ms` never
//! reaches the anchor `azureml.ms`; each pattern found there then checks the name's labels left
//! of the boundary against its head: an exact name needs none, `*.x` needs one or more,
//! `<storage>.x` exactly one (which it binds), and so on. Patterns that end in an unfilled
//! placeholder (no anchor) are checked against every name; the built-in catalog has none.
//!
//! Results are cached per distinct name in a sharded map behind read-write locks, usable from
//! many threads. Names come from captures and are attacker-controlled, so the cache must stay
//! bounded and must not be open to hash flooding: a shard that grows past its cap is emptied,
//! and names are hashed with the standard library's randomly keyed SipHash (once per lookup;
//! the 64-bit hash is the map key, and the stored name is compared on a hit).

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::{Arc, RwLock};

use rustc_hash::FxHashMap;

use super::name::{normalize, Label};
use super::{Entry, Placeholders};

/// A placeholder and the value it had in a match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Binding {
    pub placeholder: Arc<str>,
    pub value: Box<str>,
}

/// The placeholder values of one match, left to right as in the pattern; derefs to a slice.
/// Empty costs nothing to clone (no allocation, no shared counter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bound(Option<Arc<[Binding]>>);

impl Bound {
    fn new(v: Vec<Binding>) -> Bound {
        if v.is_empty() {
            Bound(None)
        } else {
            Bound(Some(v.into()))
        }
    }
    /// The value bound to `placeholder`, if the pattern has it.
    pub fn get(&self, placeholder: &str) -> Option<&str> {
        self.iter()
            .find(|b| &*b.placeholder == placeholder)
            .map(|b| &*b.value)
    }
}

impl std::ops::Deref for Bound {
    type Target = [Binding];
    fn deref(&self) -> &[Binding] {
        self.0.as_deref().unwrap_or(&[])
    }
}

/// One matching entry for a name, before protocol and port are looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Index into the catalog's entries.
    pub entry: u32,
    /// Placeholder values, left to right as in the pattern.
    pub bound: Bound,
}

#[derive(Debug)]
enum HeadLabel {
    Lit(Box<str>),
    /// An unfilled placeholder; the index into `Compiled::slots`.
    Free(usize),
}

#[derive(Debug)]
enum Slot {
    Filled(Binding),
    Free(Arc<str>),
}

#[derive(Debug)]
struct Compiled {
    wildcard: bool,
    head: Box<[HeadLabel]>,
    /// Every placeholder of the pattern, left to right.
    slots: Box<[Slot]>,
    /// When no placeholder is free: the bindings every match reports.
    fixed_bound: Option<Bound>,
    /// Sort key, smaller is more specific.
    rank: (std::cmp::Reverse<u16>, std::cmp::Reverse<u16>, bool, u32),
}

const SUFFIX_SEED: u64 = 0x243f_6a88_85a3_08d3;

/// Folds one label (hashed 8 bytes at a time) into the hash of the labels to its right.
#[inline]
fn suffix_hash_step(h: u64, label: &[u8]) -> u64 {
    const K: u64 = 0xf135_7aea_2e62_a9c5;
    let mut x = (h ^ label.len() as u64).wrapping_mul(K);
    let mut chunks = label.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        x = (x.rotate_left(26) ^ w).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        x = (x.rotate_left(26) ^ u64::from_le_bytes(buf)).wrapping_mul(K);
    }
    // One more round and a separator so that label boundaries matter.
    (x.rotate_left(26) ^ 0x2e).wrapping_mul(K)
}

const SHARDS: usize = 32;
/// Names per shard before it is emptied: 65,536 in all, far more than the distinct names of a
/// real capture (a few thousand), and about 8 MB when a flood of new names fills it (8,192 a
/// shard held some 30 MB on the DNS flood).
const SHARD_CAP: usize = 2048;

/// A cache shard: the seeded hash of the name -> (the name, its hits).
type Shard = RwLock<HashMap<u64, (Box<str>, Arc<[Hit]>), BuildHasherDefault<KeyHasher>>>;

/// Passes an already keyed 64-bit hash through unchanged.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; mix anything else all the same.
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Debug)]
pub(crate) struct Matcher {
    /// Suffix hash (see [`suffix_hash_step`]) -> indexes into `anchors`.
    by_anchor: FxHashMap<u64, Vec<u32>>,
    /// Each anchor's text and the patterns filed under it.
    anchors: Vec<(Box<str>, Vec<u32>)>,
    unanchored: Vec<u32>,
    compiled: Vec<Compiled>,
    /// Most labels of any anchor: suffixes with more labels are not looked up.
    max_anchor_labels: usize,
    cache: Box<[Shard]>,
    /// Names come from the wire: the key hash is seeded (a collision only costs a miss,
    /// the name is compared).
    cache_key: CacheKey,
}

/// The cache's seeded hash (its seed is not worth printing).
struct CacheKey(rustc_hash::FxSeededState);

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey")
    }
}

impl Matcher {
    pub(crate) fn new(entries: &[Entry], values: &Placeholders) -> Matcher {
        let mut names: FxHashMap<String, Arc<str>> = FxHashMap::default();
        let mut by_text: FxHashMap<String, usize> = FxHashMap::default();
        let mut anchors: Vec<(Box<str>, Vec<u32>)> = Vec::new();
        let mut unanchored = Vec::new();
        let mut compiled = Vec::with_capacity(entries.len());
        let mut max_anchor_labels = 0;
        for (i, e) in entries.iter().enumerate() {
            let mut slots = Vec::new();
            // Labels after filling: Ok(literal) or Err(slot index of a free placeholder).
            let mut labels: Vec<Result<String, usize>> = Vec::new();
            let mut literals = 0u16;
            for l in &e.pattern.labels {
                match l {
                    Label::Literal(s) => {
                        literals += 1;
                        labels.push(Ok(s.clone()));
                    }
                    Label::Placeholder(p) => {
                        let name = names
                            .entry(p.clone())
                            .or_insert_with(|| Arc::from(p.as_str()))
                            .clone();
                        match values.get(p) {
                            Some(v) => {
                                literals += 1;
                                labels.push(Ok(v.to_string()));
                                slots.push(Slot::Filled(Binding {
                                    placeholder: name,
                                    value: v.into(),
                                }));
                            }
                            None => {
                                labels.push(Err(slots.len()));
                                slots.push(Slot::Free(name));
                            }
                        }
                    }
                }
            }
            let split = labels
                .iter()
                .rposition(|l| l.is_err())
                .map(|p| p + 1)
                .unwrap_or(0);
            let anchor: Vec<&str> = labels[split..]
                .iter()
                .map(|l| l.as_ref().map(String::as_str).unwrap_or(""))
                .collect();
            let head: Box<[HeadLabel]> = labels[..split]
                .iter()
                .map(|l| match l {
                    Ok(s) => HeadLabel::Lit(s.as_str().into()),
                    Err(slot) => HeadLabel::Free(*slot),
                })
                .collect();
            let fixed_bound = if slots.iter().all(|s| matches!(s, Slot::Filled(_))) {
                Some(Bound::new(
                    slots
                        .iter()
                        .filter_map(|s| match s {
                            Slot::Filled(b) => Some(b.clone()),
                            Slot::Free(_) => None,
                        })
                        .collect(),
                ))
            } else {
                None
            };
            let fixed = labels.len() as u16;
            compiled.push(Compiled {
                wildcard: e.pattern.wildcard,
                head,
                slots: slots.into_boxed_slice(),
                fixed_bound,
                rank: (
                    std::cmp::Reverse(fixed),
                    std::cmp::Reverse(literals),
                    e.pattern.wildcard,
                    i as u32,
                ),
            });
            if anchor.is_empty() {
                unanchored.push(i as u32);
            } else {
                max_anchor_labels = max_anchor_labels.max(anchor.len());
                let text = anchor.join(".");
                let at = *by_text.entry(text.clone()).or_insert_with(|| {
                    anchors.push((text.into_boxed_str(), Vec::new()));
                    anchors.len() - 1
                });
                anchors[at].1.push(i as u32);
            }
        }
        let mut by_anchor: FxHashMap<u64, Vec<u32>> = FxHashMap::default();
        for (at, (text, _)) in anchors.iter().enumerate() {
            let h = text
                .rsplit('.')
                .fold(SUFFIX_SEED, |h, l| suffix_hash_step(h, l.as_bytes()));
            by_anchor.entry(h).or_default().push(at as u32);
        }
        let cache = (0..SHARDS).map(|_| RwLock::default()).collect();
        Matcher {
            by_anchor,
            anchors,
            unanchored,
            compiled,
            max_anchor_labels,
            cache,
            cache_key: CacheKey(crate::flow::seeded_hash()),
        }
    }

    /// Cached lookup (see the module documentation).
    pub(crate) fn lookup(&self, name: &str) -> Arc<[Hit]> {
        let key = self.cache_key.0.hash_one(name);
        let shard = &self.cache[(key >> 40) as usize % SHARDS];
        if let Some((n, v)) = shard.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
            if **n == *name {
                return v.clone();
            }
        }
        let v: Arc<[Hit]> = self.lookup_uncached(name).into();
        let mut w = shard.write().unwrap_or_else(|e| e.into_inner());
        if w.len() >= SHARD_CAP {
            w.clear();
        }
        // A 64-bit collision (never seen in practice) replaces the other name's result.
        w.insert(key, (name.into(), v.clone()));
        v
    }

    pub(crate) fn clear_cache(&self) {
        for s in self.cache.iter() {
            s.write().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    pub(crate) fn lookup_uncached(&self, name: &str) -> Vec<Hit> {
        let Some(n) = normalize(name) else {
            return Vec::new();
        };
        let n: &str = &n;
        let bytes = n.as_bytes();
        let mut hits: Vec<Hit> = Vec::new();
        // Label boundaries, right to left, as far as the longest anchor reaches; the hash of
        // each suffix is built from the previous one, so each byte is hashed once.
        let mut end = bytes.len();
        let mut h = SUFFIX_SEED;
        let mut seen = 0;
        while seen < self.max_anchor_labels {
            let mut start = end;
            while start > 0 && bytes[start - 1] != b'.' {
                start -= 1;
            }
            h = suffix_hash_step(h, &bytes[start..end]);
            seen += 1;
            if let Some(ats) = self.by_anchor.get(&h) {
                let suffix = &n[start..];
                for &at in ats {
                    let (text, list) = &self.anchors[at as usize];
                    if **text != *suffix {
                        continue;
                    }
                    let head = if start == 0 { "" } else { &n[..start - 1] };
                    for &c in list {
                        if let Some(b) = self.check_head(&self.compiled[c as usize], head) {
                            hits.push(Hit { entry: c, bound: b });
                        }
                    }
                }
            }
            if start == 0 {
                break;
            }
            end = start - 1;
        }
        for &c in &self.unanchored {
            if let Some(b) = self.check_head(&self.compiled[c as usize], n) {
                hits.push(Hit { entry: c, bound: b });
            }
        }
        // Compiled patterns are numbered as the entries are.
        hits.sort_by_key(|h| self.compiled[h.entry as usize].rank);
        hits
    }

    /// Checks the labels left of the anchor (`head`, "" when none) against a pattern's head.
    fn check_head(&self, p: &Compiled, head: &str) -> Option<Bound> {
        if p.head.is_empty() {
            // Exact (`a.b`) or `*.a.b`.
            return if head.is_empty() != p.wildcard {
                p.fixed_bound.clone()
            } else {
                None
            };
        }
        if head.is_empty() {
            return None;
        }
        // The label each free placeholder took, by slot (inline for up to 16 placeholders).
        let mut inline = [""; 16];
        let mut spill: Vec<&str>;
        let vals: &mut [&str] = if p.slots.len() <= inline.len() {
            &mut inline[..p.slots.len()]
        } else {
            spill = vec![""; p.slots.len()];
            &mut spill
        };
        let mut labels = head.rsplit('.');
        for want in p.head.iter().rev() {
            let got = labels.next()?;
            match want {
                HeadLabel::Lit(l) => {
                    if **l != *got {
                        return None;
                    }
                }
                HeadLabel::Free(slot) => vals[*slot] = got,
            }
        }
        // Left over labels: one or more for `*`, none otherwise.
        if labels.next().is_some() != p.wildcard {
            return None;
        }
        if let Some(b) = &p.fixed_bound {
            return Some(b.clone());
        }
        let bound: Arc<[Binding]> = p
            .slots
            .iter()
            .zip(vals.iter())
            .map(|(s, v)| match s {
                Slot::Filled(b) => b.clone(),
                Slot::Free(name) => Binding {
                    placeholder: name.clone(),
                    value: (*v).into(),
                },
            })
            .collect();
        Some(Bound(Some(bound)))
    }
}
