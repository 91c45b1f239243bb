//! The flow table's map from flow key to flow: open addressing with linear probing over slots of
//! 16 bytes (a key's hash and its boxed flow).
//!
//! The key is not stored: it is computed from the flow's endpoints, which sit in the cache line
//! a packet reads first anyway, so a lookup compares the full 64-bit hashes of the probed slots
//! and then one key. Against a general map of key and box (48-byte entries) this reads fewer
//! cache lines per packet.
//! Removal shifts the later entries of the run back, so there are no tombstones, and the map
//! is kept at most half full, so probe runs stay short.

use std::hash::BuildHasher;

use super::Key;

/// What the map holds: something with a flow key (a flow, or a flow's first packet).
pub(super) trait Keyed {
    fn key(&self) -> Key;
}

struct Slot<T> {
    hash: u64,
    flow: Option<Box<T>>,
}

impl<T> Slot<T> {
    const EMPTY: Slot<T> = Slot {
        hash: 0,
        flow: None,
    };
}

pub(super) struct FlowMap<T> {
    hasher: rustc_hash::FxSeededState,
    slots: Vec<Slot<T>>,
    /// log2 of the number of slots (slots are picked by the hash's top bits).
    bits: u32,
    len: usize,
}

const MIN_BITS: u32 = 6;

/// A seed for the key hash that an input cannot predict: packets are attacker-controlled, and
/// keys crafted to share slots under a known hash would make every lookup walk a long run.
fn random_seed() -> usize {
    use std::hash::Hasher;
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish() as usize
}

/// The fast hash seeded from the process's random state, for maps keyed by what came off the
/// wire (see [`random_seed`]).
pub fn seeded_hash() -> rustc_hash::FxSeededState {
    rustc_hash::FxSeededState::with_seed(random_seed())
}

impl<T: Keyed> FlowMap<T> {
    #[cfg(test)]
    pub(super) fn new() -> FlowMap<T> {
        FlowMap::with_hasher(seeded_hash())
    }

    /// An empty map whose keys hash with `hasher` (two maps given the same one store a key
    /// under the same hash).
    pub(super) fn with_hasher(hasher: rustc_hash::FxSeededState) -> FlowMap<T> {
        FlowMap {
            hasher,
            slots: (0..1usize << MIN_BITS).map(|_| Slot::EMPTY).collect(),
            bits: MIN_BITS,
            len: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        (hash >> (64 - self.bits)) as usize
    }

    /// Where `key` is, or the empty slot that ends its run.
    #[inline]
    fn find(&self, key: &Key, hash: u64) -> (usize, bool) {
        self.find_by(hash, |f| f.key() == *key)
    }

    /// Where the flow with the key of hash `hash` is (`is` tells whether a flow has that key),
    /// or the empty slot that ends its run.
    #[inline]
    fn find_by(&self, hash: u64, is: impl Fn(&T) -> bool) -> (usize, bool) {
        let mask = self.mask();
        let mut i = self.home(hash);
        loop {
            let s = &self.slots[i];
            match &s.flow {
                None => return (i, false),
                Some(f) if s.hash == hash && is(f) => return (i, true),
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    pub(super) fn get(&self, key: &Key) -> Option<&T> {
        match self.find(key, self.hasher.hash_one(key)) {
            (i, true) => self.slots[i].flow.as_deref(),
            _ => None,
        }
    }

    pub(super) fn contains_key(&self, key: &Key) -> bool {
        self.find(key, self.hasher.hash_one(key)).1
    }

    /// The hash a key is stored under (what [`FlowMap::get_mut_by`] and
    /// [`FlowMap::remove_by`] look up by, with a test of the flow instead of its key).
    #[inline]
    pub(super) fn hash(&self, key: &Key) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The first flow stored under `hash` for which `is` holds.
    pub(super) fn get_mut_by(&mut self, hash: u64, is: impl Fn(&T) -> bool) -> Option<&mut T> {
        match self.find_by(hash, is) {
            (i, true) => self.slots[i].flow.as_deref_mut(),
            _ => None,
        }
    }

    /// The flow of `key`, made by `make` (whose flow must have that key; it is given the hash
    /// the flow is stored under) if there is none; none if there is none and `make` made none.
    /// `is` tells whether a flow has `key` (cheaper than computing each candidate's key).
    #[inline]
    pub(super) fn get_or_try_insert_with(
        &mut self,
        key: &Key,
        is: impl Fn(&T) -> bool,
        make: impl FnOnce(u64) -> Option<Box<T>>,
    ) -> Option<&mut T> {
        let hash = self.hasher.hash_one(key);
        let (mut i, found) = self.find_by(hash, is);
        if !found {
            let f = make(hash)?;
            debug_assert!(f.key() == *key);
            if (self.len + 1) * 2 > self.slots.len() {
                self.grow();
                i = self.vacant(hash);
            }
            self.slots[i] = Slot {
                hash,
                flow: Some(f),
            };
            self.len += 1;
        }
        self.slots[i].flow.as_deref_mut()
    }

    /// Stores `item` under `key` (which no item of the map has).
    pub(super) fn insert(&mut self, key: &Key, item: Box<T>) {
        let inserted = self.get_or_try_insert_with(key, |_| false, |_| Some(item));
        debug_assert!(inserted.is_some());
    }

    pub(super) fn remove(&mut self, key: &Key) -> Option<Box<T>> {
        let hash = self.hasher.hash_one(key);
        self.remove_by(hash, |f| f.key() == *key)
    }

    /// Takes out the first flow stored under `hash` for which `is` holds.
    pub(super) fn remove_by(&mut self, hash: u64, is: impl Fn(&T) -> bool) -> Option<Box<T>> {
        let (mut i, found) = self.find_by(hash, is);
        if !found {
            return None;
        }
        let out = self.slots[i].flow.take();
        self.len -= 1;
        // Shift back each later entry of the run that may sit in the hole (its home is not
        // between the hole and itself, cyclically).
        let mask = self.mask();
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            if self.slots[j].flow.is_none() {
                break;
            }
            let home = self.home(self.slots[j].hash);
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(i) & mask) {
                self.slots.swap(i, j);
                i = j;
            }
        }
        out
    }

    /// The first empty slot of the run that starts at `hash`'s home.
    fn vacant(&self, hash: u64) -> usize {
        let mask = self.mask();
        let mut i = self.home(hash);
        while self.slots[i].flow.is_some() {
            i = (i + 1) & mask;
        }
        i
    }

    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        self.bits += 1;
        self.slots = (0..1usize << self.bits).map(|_| Slot::EMPTY).collect();
        for s in old.into_iter().filter(|s| s.flow.is_some()) {
            let i = self.vacant(s.hash);
            self.slots[i] = s;
        }
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|s| s.flow.as_deref())
    }

    /// Every flow with the hash it is stored under.
    pub(super) fn entries(&self) -> impl Iterator<Item = (u64, &T)> {
        self.slots
            .iter()
            .filter_map(|s| Some((s.hash, s.flow.as_deref()?)))
    }

    /// Takes every flow out, leaving the map empty.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = Box<T>> + '_ {
        self.len = 0;
        self.slots.iter_mut().filter_map(|s| s.flow.take())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Endpoint, Flow, Key, Proto};
    use super::FlowMap;
    use std::collections::HashMap;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn flow(i: u32) -> Box<Flow> {
        // Few distinct addresses and ports, IPv4 and IPv6: many keys share a home slot in a
        // small map, so runs form, wrap around the end and get shifted back on removal.
        let ip = |x: u32| -> IpAddr {
            if x % 3 == 0 {
                IpAddr::V6(Ipv6Addr::from(u128::from(x)))
            } else {
                IpAddr::V4(Ipv4Addr::from(x))
            }
        };
        let (a, b) = (i % 7, i / 7);
        let client = Endpoint {
            ip: ip(a),
            port: (b % 5) as u16,
        };
        let server = Endpoint {
            ip: ip(a + 100),
            port: (b / 5) as u16,
        };
        Box::new(Flow::new(Proto::Tcp, client, server, i as i64))
    }

    #[test]
    fn behaves_as_a_map_through_growth_and_removals() {
        let mut m = FlowMap::new();
        let mut model: HashMap<Key, i64> = HashMap::new();
        let mut rng = crate::rng::XorShift::new(0x9e37_79b9_7f4a_7c15);
        for step in 0..40_000u32 {
            // The key and the operation from separate draws (independent of each other).
            let f = flow(rng.below(700) as u32);
            let key = f.key();
            if rng.below(5) < 3 {
                let first = f.first_ns;
                let got = m
                    .get_or_try_insert_with(&key, |g: &Flow| g.key() == key, |_| Some(f))
                    .unwrap();
                assert_eq!(got.key(), key);
                let want = *model.entry(key).or_insert(first);
                assert_eq!(got.first_ns, want, "step {step}");
            } else {
                let got = m.remove(&key).map(|f| f.first_ns);
                assert_eq!(got, model.remove(&key), "step {step}");
            }
            assert_eq!(m.len(), model.len());
            if step % 997 == 0 {
                // Every entry is still found, and nothing else is there.
                for (k, v) in &model {
                    assert_eq!(m.get(k).map(|f| f.first_ns), Some(*v));
                    assert!(m.contains_key(k));
                }
                assert_eq!(m.values().count(), model.len());
                let k = flow(10_000).key();
                assert!(
                    m.get(&k).is_none() && m.get_mut_by(m.hash(&k), |f| f.key() == k).is_none()
                );
            }
        }
        let mut all: Vec<i64> = m.drain().map(|f| f.first_ns).collect();
        let mut want: Vec<i64> = model.values().copied().collect();
        all.sort_unstable();
        want.sort_unstable();
        assert_eq!(all, want);
        assert_eq!(m.len(), 0);
        assert_eq!(m.values().count(), 0);
    }
}
