//! The address ranges of Azure service tags, from the JSON file Microsoft publishes per cloud
//! ("Azure IP Ranges and Service Tags", `ServiceTags_Public_YYYYMMDD.json`), and the lookup
//! that names an address by the tag whose range holds it (`--service-tags FILE`).
//!
//! The file's shape (fields not listed here are ignored):
//!
//! ```json
//! {"changeNumber": 1, "cloud": "Public", "values": [
//!   {"name": "AzureMachineLearning.EastUS", "id": "AzureMachineLearning.EastUS",
//!    "properties": {"region": "eastus", "systemService": "AzureMachineLearning",
//!                   "addressPrefixes": ["13.82.0.0/28", "2603:1030::/64"]}}]}
//! ```
//!
//! # Which tag names an address
//!
//! The longest prefix that holds the address wins. When several tags hold that same prefix,
//! a tag of a service beats one of no service (`AzureCloud`, `AzureCloud.eastus`: the ranges
//! of the whole cloud), then a regional tag (`properties.region` set: `Storage.EastUS`) beats
//! a cloud-wide one (`Storage`), then the first name in byte order.
//!
//! # Bounds
//!
//! The file is read up to [`Limits::max_bytes`]; tags and prefixes are counted against
//! [`Limits`]; a bad prefix (`10.0.0.0/33`, host bits set, not an address) is an error that
//! names the tag and the prefix. Lookups binary-search a table of disjoint ranges built once:
//! nothing is allocated per lookup.

use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

/// What a service-tags file may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of the file (Microsoft's public cloud file is a few MB).
    pub max_bytes: u64,
    /// Entries of `values`.
    pub max_tags: usize,
    /// Address prefixes over all tags.
    pub max_prefixes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: 64 << 20,
            max_tags: 100_000,
            max_prefixes: 2_000_000,
        }
    }
}

/// Why a service-tags file could not be used: the file and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangesError {
    pub file: String,
    pub message: String,
}

impl fmt::Display for RangesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

impl std::error::Error for RangesError {}

#[derive(Deserialize)]
struct RawFile {
    values: Vec<RawTag>,
}

#[derive(Deserialize)]
struct RawTag {
    name: String,
    properties: RawProperties,
}

#[derive(Deserialize)]
struct RawProperties {
    #[serde(default)]
    region: String,
    #[serde(default, rename = "systemService")]
    system_service: String,
    #[serde(rename = "addressPrefixes")]
    address_prefixes: Vec<String>,
}

/// One tag of the file.
#[derive(Debug, Clone)]
struct Tag {
    name: String,
    /// `properties.region` is set.
    regional: bool,
    /// `properties.systemService` is set.
    service: bool,
}

/// Disjoint ranges of one address family: `starts[i]` begins a range named by `tags[i]` that
/// runs to the next start (`NONE`: no tag).
#[derive(Debug, Clone, Default)]
struct Family {
    starts: Vec<u128>,
    tags: Vec<u32>,
}

const NONE: u32 = u32::MAX;

impl Family {
    /// The tag of the range that holds `a`.
    fn lookup(&self, a: u128) -> Option<u32> {
        let i = self.starts.partition_point(|&s| s <= a);
        let t = *self.tags.get(i.checked_sub(1)?)?;
        (t != NONE).then_some(t)
    }

    /// Records that from `at` on the tag is `tag` (`at` never goes back).
    fn boundary(&mut self, at: u128, tag: u32) {
        if self.starts.last() == Some(&at) {
            self.starts.pop();
            self.tags.pop();
        }
        if self.tags.last().copied().unwrap_or(NONE) != tag {
            self.starts.push(at);
            self.tags.push(tag);
        }
    }

    /// Builds the ranges from prefixes `(first, last, len, tag)` of one family, where `rank`
    /// orders the tags of one prefix (the least wins).
    fn build(mut prefixes: Vec<(u128, u128, u8, u32)>, rank: impl Fn(u32) -> usize) -> Family {
        // Each prefix once, held by its best tag; a prefix before the ones inside it.
        prefixes.sort_unstable_by_key(|&(first, _, len, tag)| (first, len, rank(tag)));
        prefixes.dedup_by_key(|p| (p.0, p.2));
        let mut f = Family::default();
        // The prefixes holding the current address, innermost last: (last address, tag).
        let mut open: Vec<(u128, u32)> = Vec::new();
        for (first, last, _, tag) in prefixes {
            // Prefixes nest or are disjoint: close the ones that end before this one.
            while let Some(&(end, _)) = open.last().filter(|o| o.0 < first) {
                open.pop();
                f.boundary(end + 1, open.last().map_or(NONE, |o| o.1));
            }
            f.boundary(first, tag);
            open.push((last, tag));
        }
        while let Some((end, _)) = open.pop() {
            if let Some(next) = end.checked_add(1) {
                f.boundary(next, open.last().map_or(NONE, |o| o.1));
            }
        }
        f
    }
}

/// The service tags' address ranges, ready for lookups.
#[derive(Debug, Clone, Default)]
pub struct TagRanges {
    tags: Vec<Tag>,
    v4: Family,
    v6: Family,
    prefixes: usize,
}

/// Parses `a.b.c.d/n` or `x::/n` into (first address, last address, length, is IPv6), in the
/// family's own width (IPv4 in the low 32 bits).
fn parse_prefix(s: &str) -> Result<(u128, u128, u8, bool), String> {
    let (addr, len) = s.split_once('/').ok_or_else(|| "no /length".to_string())?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an address"))?;
    let bits: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let len: u8 = len
        .parse()
        .ok()
        .filter(|&l| l <= bits)
        .ok_or_else(|| format!("length {len:?} is not 0 to {bits}"))?;
    let a = addr_bits(addr);
    let host = if len == bits {
        0
    } else {
        u128::MAX >> (128 - u32::from(bits - len))
    };
    if a & host != 0 {
        return Err("host bits are set".to_string());
    }
    Ok((a, a | host, len, addr.is_ipv6()))
}

fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Whether a tag name is one Microsoft would publish: 1 to 128 letters, digits, `.`, `-`, `_`.
fn good_name(n: &str) -> bool {
    (1..=128).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

impl TagRanges {
    /// Reads and checks a service-tags file.
    pub fn load(path: &Path) -> Result<TagRanges, RangesError> {
        TagRanges::load_with(path, Limits::default())
    }

    /// [`TagRanges::load`] with other limits.
    pub fn load_with(path: &Path, limits: Limits) -> Result<TagRanges, RangesError> {
        let file = path.display().to_string();
        let err = |message: String| RangesError {
            file: file.clone(),
            message,
        };
        let f = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
        let mut text = Vec::new();
        f.take(limits.max_bytes.saturating_add(1))
            .read_to_end(&mut text)
            .map_err(|e| err(e.to_string()))?;
        if text.len() as u64 > limits.max_bytes {
            return Err(err(format!(
                "larger than {} bytes: not a service-tags file",
                limits.max_bytes
            )));
        }
        TagRanges::from_json(&text, limits).map_err(err)
    }

    /// Parses the JSON text of a service-tags file.
    pub fn from_json(text: &[u8], limits: Limits) -> Result<TagRanges, String> {
        let raw: RawFile = serde_json::from_slice(text).map_err(|e| {
            format!("not a service-tags file (Azure IP Ranges and Service Tags JSON): {e}")
        })?;
        if raw.values.len() > limits.max_tags {
            return Err(format!(
                "{} tags, more than the {} allowed",
                raw.values.len(),
                limits.max_tags
            ));
        }
        let total: usize = raw
            .values
            .iter()
            .map(|v| v.properties.address_prefixes.len())
            .fold(0, usize::saturating_add);
        if total > limits.max_prefixes {
            return Err(format!(
                "{total} address prefixes, more than the {} allowed",
                limits.max_prefixes
            ));
        }
        let mut tags = Vec::with_capacity(raw.values.len());
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (i, v) in raw.values.into_iter().enumerate() {
            if !good_name(&v.name) {
                return Err(format!(
                    "values[{i}]: the name {:?} is not a service tag name (1 to 128 letters, digits, '.', '-', '_')",
                    crate::text::escape_terminal(&v.name)
                ));
            }
            let t = tags.len() as u32;
            for p in &v.properties.address_prefixes {
                let (first, last, len, is_v6) = parse_prefix(p).map_err(|why| {
                    format!(
                        "{}: bad address prefix {:?}: {why}",
                        v.name,
                        crate::text::escape_terminal(p)
                    )
                })?;
                let to = if is_v6 { &mut v6 } else { &mut v4 };
                to.push((first, last, len, t));
            }
            tags.push(Tag {
                name: v.name,
                regional: !v.properties.region.is_empty(),
                service: !v.properties.system_service.is_empty(),
            });
        }
        // The order of the tags of one prefix: of a service, regional, then by name.
        let mut order: Vec<u32> = (0..tags.len() as u32).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&tags[a as usize], &tags[b as usize]);
            (!a.service, !a.regional, &a.name).cmp(&(!b.service, !b.regional, &b.name))
        });
        let mut rank = vec![0usize; tags.len()];
        for (r, &t) in order.iter().enumerate() {
            rank[t as usize] = r;
        }
        let rank = |t: u32| rank[t as usize];
        Ok(TagRanges {
            v4: Family::build(v4, rank),
            v6: Family::build(v6, rank),
            tags,
            prefixes: total,
        })
    }

    /// The tag that names `addr`, if a range of the file holds it. An IPv4-mapped IPv6
    /// address is looked up as IPv6 (as the file lists it).
    pub fn lookup(&self, addr: IpAddr) -> Option<&str> {
        let t = match addr {
            IpAddr::V4(a) => self.v4.lookup(u128::from(u32::from(a))),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a)),
        }?;
        Some(&self.tags[t as usize].name)
    }

    /// Tags in the file.
    pub fn tags(&self) -> usize {
        self.tags.len()
    }

    /// Address prefixes in the file.
    pub fn prefixes(&self) -> usize {
        self.prefixes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A file of `(name, region, service, prefixes)`.
    fn file(tags: &[(&str, &str, &str, &[&str])]) -> Vec<u8> {
        let values: Vec<serde_json::Value> = tags
            .iter()
            .map(|(n, r, s, p)| {
                serde_json::json!({"name": n, "id": n, "properties": {
                    "changeNumber": 1, "region": r, "regionId": 0, "platform": "Azure",
                    "systemService": s, "addressPrefixes": p, "networkFeatures": ["NSG"]}})
            })
            .collect();
        serde_json::to_vec(
            &serde_json::json!({"changeNumber": 7, "cloud": "Public", "values": values}),
        )
        .unwrap()
    }

    fn ranges(tags: &[(&str, &str, &str, &[&str])]) -> TagRanges {
        TagRanges::from_json(&file(tags), Limits::default()).unwrap()
    }

    fn bad(text: &[u8], limits: Limits) -> String {
        TagRanges::from_json(text, limits).unwrap_err()
    }

    #[test]
    fn the_longest_prefix_names_an_address() {
        let r = ranges(&[
            ("AzureCloud", "", "", &["13.0.0.0/8", "2603::/16"]),
            (
                "AzureMachineLearning",
                "",
                "AzureMachineLearning",
                &["13.82.0.0/28"],
            ),
            (
                "Storage",
                "",
                "AzureStorage",
                &["13.82.0.8/29", "2603:1030::/64"],
            ),
        ]);
        assert_eq!(r.tags(), 3);
        assert_eq!(r.prefixes(), 5);
        assert_eq!(r.lookup(ip("13.82.0.0")), Some("AzureMachineLearning"));
        assert_eq!(r.lookup(ip("13.82.0.7")), Some("AzureMachineLearning"));
        assert_eq!(r.lookup(ip("13.82.0.8")), Some("Storage"));
        assert_eq!(r.lookup(ip("13.82.0.15")), Some("Storage"));
        assert_eq!(r.lookup(ip("13.82.0.16")), Some("AzureCloud"));
        assert_eq!(r.lookup(ip("13.255.255.255")), Some("AzureCloud"));
        assert_eq!(r.lookup(ip("12.255.255.255")), None);
        assert_eq!(r.lookup(ip("14.0.0.0")), None);
        assert_eq!(r.lookup(ip("2603:1030::1")), Some("Storage"));
        assert_eq!(r.lookup(ip("2603:1031::1")), Some("AzureCloud"));
        assert_eq!(r.lookup(ip("2604::1")), None);
        // IPv4 and IPv6 are apart: ::13.82.0.1 is not 13.82.0.1.
        assert_eq!(r.lookup(ip("::d52:1")), None);
    }

    #[test]
    fn one_prefix_in_several_tags_goes_to_the_service_then_the_region_then_the_name() {
        let r = ranges(&[
            ("AzureCloud.eastus", "eastus", "", &["10.0.0.0/24"]),
            (
                "Storage",
                "",
                "AzureStorage",
                &["10.0.0.0/24", "10.0.1.0/24"],
            ),
            ("Storage.EastUS", "eastus", "AzureStorage", &["10.0.0.0/24"]),
            ("B", "", "B", &["10.0.1.0/24", "10.0.2.0/24"]),
            ("A", "", "A", &["10.0.2.0/24"]),
        ]);
        assert_eq!(r.lookup(ip("10.0.0.1")), Some("Storage.EastUS"));
        assert_eq!(r.lookup(ip("10.0.1.1")), Some("B"));
        assert_eq!(r.lookup(ip("10.0.2.1")), Some("A"));
        // The same file in another order gives the same names.
        let r = ranges(&[
            ("A", "", "A", &["10.0.2.0/24"]),
            ("Storage.EastUS", "eastus", "AzureStorage", &["10.0.0.0/24"]),
            ("B", "", "B", &["10.0.2.0/24", "10.0.1.0/24"]),
            (
                "Storage",
                "",
                "AzureStorage",
                &["10.0.1.0/24", "10.0.0.0/24"],
            ),
            ("AzureCloud.eastus", "eastus", "", &["10.0.0.0/24"]),
        ]);
        assert_eq!(r.lookup(ip("10.0.0.1")), Some("Storage.EastUS"));
        assert_eq!(r.lookup(ip("10.0.1.1")), Some("B"));
        assert_eq!(r.lookup(ip("10.0.2.1")), Some("A"));
    }

    #[test]
    fn nested_and_edge_prefixes() {
        let r = ranges(&[
            ("All", "", "x", &["0.0.0.0/0", "::/0"]),
            ("Top", "", "x", &["255.255.255.0/24", "ffff::/16"]),
            ("Host", "", "x", &["255.255.255.255/32", "10.1.2.3/32"]),
            ("Mid", "", "x", &["10.0.0.0/8"]),
            ("Inner", "", "x", &["10.1.0.0/16"]),
        ]);
        assert_eq!(r.lookup(ip("0.0.0.0")), Some("All"));
        assert_eq!(r.lookup(ip("255.255.255.254")), Some("Top"));
        assert_eq!(r.lookup(ip("255.255.255.255")), Some("Host"));
        assert_eq!(r.lookup(ip("10.1.2.2")), Some("Inner"));
        assert_eq!(r.lookup(ip("10.1.2.3")), Some("Host"));
        assert_eq!(r.lookup(ip("10.1.2.4")), Some("Inner"));
        assert_eq!(r.lookup(ip("10.2.0.0")), Some("Mid"));
        assert_eq!(r.lookup(ip("11.0.0.0")), Some("All"));
        assert_eq!(
            r.lookup(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
            Some("Top")
        );
        assert_eq!(r.lookup(ip("fffe::")), Some("All"));
        // Ranges that end together close together.
        let r = ranges(&[
            ("Outer", "", "x", &["10.0.0.0/8"]),
            ("Tail", "", "x", &["10.255.255.0/24"]),
        ]);
        assert_eq!(r.lookup(ip("10.255.255.255")), Some("Tail"));
        assert_eq!(r.lookup(ip("11.0.0.0")), None);
        assert_eq!(r.lookup(ip("10.255.254.255")), Some("Outer"));
    }

    #[test]
    fn bad_prefixes_are_errors_that_name_the_tag() {
        for (p, why) in [
            ("10.0.0.0/33", "length \"33\" is not 0 to 32"),
            ("10.0.0.1/24", "host bits are set"),
            ("2603::1/64", "host bits are set"),
            ("2603::/129", "is not 0 to 128"),
            ("10.0.0.0", "no /length"),
            ("10.0.0/8", "is not an address"),
            ("10.0.0.0/-1", "is not 0 to 32"),
            ("10.0.0.0/ 8", "is not 0 to 32"),
            ("\u{1b}[31m/8", "is not an address"),
        ] {
            let e = bad(&file(&[("Storage", "", "s", &[p])]), Limits::default());
            assert!(e.starts_with("Storage: bad address prefix"), "{e}");
            assert!(e.contains(why), "{p}: {e}");
            assert!(!e.contains('\u{1b}'), "{e}");
        }
    }

    #[test]
    fn hostile_files_are_errors() {
        let l = Limits::default();
        for text in [
            &b""[..],
            b"[]",
            b"{}",
            b"{\"values\": 3}",
            b"{\"values\": [{\"name\": \"A\"}]}",
            b"{\"values\": [{\"name\": \"A\", \"properties\": {\"addressPrefixes\": [1]}}]}",
            b"{\"values\": [",
            &[0xff, 0xfe, 0x00][..],
        ] {
            let e = bad(text, l);
            assert!(e.starts_with("not a service-tags file"), "{e}");
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(bad(deep.as_bytes(), l).starts_with("not a service-tags file"));
        let e = bad(&file(&[("bad name\u{1b}", "", "", &[])]), l);
        assert!(
            e.contains("is not a service tag name") && !e.contains('\u{1b}'),
            "{e}"
        );
        // Huge counts stop before any table is built.
        let many: Vec<String> = (0..300u32)
            .map(|i| format!("10.0.{}.0/24", i % 256))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let small = Limits {
            max_prefixes: 299,
            ..l
        };
        assert_eq!(
            bad(&file(&[("A", "", "", &many)]), small),
            "300 address prefixes, more than the 299 allowed"
        );
        let small = Limits { max_tags: 1, ..l };
        assert_eq!(
            bad(&file(&[("A", "", "", &[]), ("B", "", "", &[])]), small),
            "2 tags, more than the 1 allowed"
        );
        // The same prefix many times over is one range.
        let r = TagRanges::from_json(&file(&[("A", "", "", &many)]), l).unwrap();
        assert_eq!(r.v4.starts.len(), 2);
        assert_eq!(r.lookup(ip("10.0.255.1")), Some("A"));
    }

    proptest::proptest! {
        /// The table gives what a scan of every prefix gives: the longest holding the
        /// address, of a service, regional, then by name.
        #[test]
        fn lookups_agree_with_a_scan(
            tags in proptest::collection::vec(
                (0u8..4, proptest::bool::ANY, proptest::bool::ANY,
                 proptest::collection::vec((0u32..1024, 22u8..=32), 0..6)),
                1..6),
            probes in proptest::collection::vec(0u32..1024, 32),
        ) {
            let named: Vec<(String, String, String, Vec<String>)> = tags
                .iter()
                .enumerate()
                .map(|(i, (n, regional, service, ps))| {
                    let prefixes = ps
                        .iter()
                        .map(|&(a, len)| {
                            let a = (10u32 << 24 | a << 2) & (u32::MAX << (32 - len));
                            format!("{}/{len}", std::net::Ipv4Addr::from(a))
                        })
                        .collect();
                    (
                        format!("T{n}.{i}"),
                        if *regional { "eastus" } else { "" }.to_string(),
                        if *service { "S" } else { "" }.to_string(),
                        prefixes,
                    )
                })
                .collect();
            let spec: Vec<(&str, &str, &str, Vec<&str>)> = named
                .iter()
                .map(|(n, r, s, p)| (n.as_str(), r.as_str(), s.as_str(), p.iter().map(String::as_str).collect()))
                .collect();
            let spec: Vec<(&str, &str, &str, &[&str])> =
                spec.iter().map(|(n, r, s, p)| (*n, *r, *s, &p[..])).collect();
            let r = ranges(&spec);
            for a in probes {
                let addr = 10u32 << 24 | a << 2 | (a & 3);
                let want = named
                    .iter()
                    .flat_map(|(n, reg, svc, ps)| ps.iter().map(move |p| (n, reg, svc, p)))
                    .filter_map(|(n, reg, svc, p)| {
                        let (first, last, len, _) = parse_prefix(p).unwrap();
                        (first..=last)
                            .contains(&u128::from(addr))
                            .then_some((std::cmp::Reverse(len), svc.is_empty(), reg.is_empty(), n))
                    })
                    .min()
                    .map(|w| w.3.as_str());
                proptest::prop_assert_eq!(r.lookup(IpAddr::V4(addr.into())), want);
            }
        }
    }

    #[test]
    fn a_file_too_large_is_refused_unread() {
        let dir = std::env::temp_dir().join(format!("allowscope-ranges-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("tags.json");
        std::fs::write(&p, file(&[("A", "", "", &["10.0.0.0/8"])])).unwrap();
        let small = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        let e = TagRanges::load_with(&p, small).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("tags.json: larger than 10 bytes: not a service-tags file"),
            "{e}"
        );
        assert_eq!(
            TagRanges::load(&p).unwrap().lookup(ip("10.9.9.9")),
            Some("A")
        );
        let e = TagRanges::load(&dir.join("missing.json")).unwrap_err();
        assert!(e.to_string().contains("missing.json: "), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
