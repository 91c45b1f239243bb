//! `cargo bench --bench catalog`: host-name matching against the whole built-in catalog (every
//! cloud and scenario), in ns per name.
//!
//! The workload is 1,000,000 lookups drawn from 5,000 distinct names (a third match a catalog
//! pattern, a third are near misses such as `evil-azureml.ms`, a third are unrelated hosts),
//! which is what a busy capture looks like; plus 1,000,000 all-distinct names for the worst
//! case of the cache. Environment: `ALLOWSCOPE_BENCH_NAMES` (lookups, default 1,000,000).

use std::hint::black_box;
use std::time::Instant;

use allowscope::catalog::{Catalog, Label, Pattern};
use allowscope::rng::XorShift;

const WORDS: &[&str] = &[
    "eastus",
    "westeurope",
    "acct7",
    "prod",
    "ci-42",
    "node3",
    "x",
    "api",
    "cdn",
    "a1b2",
    "data",
    "blob",
    "www",
    "edge",
    "eu",
    "us",
    "mail",
    "static",
    "img",
    "login",
];

fn sample(p: &Pattern, rng: &mut XorShift) -> String {
    let mut parts: Vec<String> = Vec::new();
    if p.wildcard {
        for _ in 0..1 + rng.below(2) {
            parts.push(WORDS[rng.below(WORDS.len())].to_string());
        }
    }
    for l in &p.labels {
        parts.push(match l {
            Label::Literal(s) => s.clone(),
            Label::Placeholder(_) => WORDS[rng.below(WORDS.len())].to_string(),
        });
    }
    parts.join(".")
}

fn distinct_names(c: &Catalog, n: usize, seed: u64) -> Vec<String> {
    let mut rng = XorShift::new(seed);
    let mut out = Vec::with_capacity(n);
    let tlds = ["com", "net", "org", "io", "example", "internal"];
    while out.len() < n {
        let e = &c.entries()[rng.below(c.entries().len())];
        let name = match out.len() % 3 {
            0 => sample(&e.pattern, &mut rng),
            1 => match rng.below(3) {
                0 => format!("evil-{}", sample(&e.pattern, &mut rng)),
                1 => format!("{}.evil.com", sample(&e.pattern, &mut rng)),
                _ => format!("x{}", sample(&e.pattern, &mut rng)),
            },
            _ => {
                let labels = 2 + rng.below(4);
                let mut v: Vec<String> = (0..labels - 1)
                    .map(|_| format!("{}{}", WORDS[rng.below(WORDS.len())], rng.below(1000)))
                    .collect();
                v.push(tlds[rng.below(tlds.len())].to_string());
                v.join(".")
            }
        };
        out.push(format!("{name}{}", out.len() / 3 % 7)); // keep names distinct-ish
        let last = out.len() - 1;
        if out.len() % 3 == 1 {
            // matching names must stay matching: undo the suffix on the last label
            out[last] = name;
        }
    }
    out
}

fn report(what: &str, n: usize, secs: f64) {
    println!(
        "{what:<58} {:>9.1} ns/name  ({n} names, {:.3} s)",
        secs * 1e9 / n as f64,
        secs
    );
}

fn main() {
    let lookups: usize = std::env::var("ALLOWSCOPE_BENCH_NAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
        .max(1_000_000);

    let t = Instant::now();
    let c = Catalog::builtin();
    println!(
        "catalog: {} entries (whole built-in catalog), parse + compile {:.2} ms",
        c.entries().len(),
        t.elapsed().as_secs_f64() * 1e3
    );

    let distinct = distinct_names(&c, 5000, 7);
    let matching = distinct
        .iter()
        .filter(|n| !c.lookup_uncached(n).is_empty())
        .count();
    println!(
        "workload: {lookups} lookups over {} distinct names ({matching} of them match), {} threads for match_many",
        distinct.len(),
        rayon::current_num_threads()
    );
    let mut rng = XorShift::new(99);
    let stream: Vec<&str> = (0..lookups)
        .map(|_| distinct[rng.below(distinct.len())].as_str())
        .collect();

    // Uncached: normalize + suffix-map walk for every lookup.
    let t = Instant::now();
    let mut hits = 0usize;
    for n in &stream {
        hits += black_box(c.lookup_uncached(n)).len();
    }
    report(
        "lookup_uncached (1 thread)",
        lookups,
        t.elapsed().as_secs_f64(),
    );

    // Cached: the first sight of each name fills the cache.
    c.clear_cache();
    let t = Instant::now();
    let mut hits2 = 0usize;
    for n in &stream {
        hits2 += black_box(c.lookup(n)).len();
    }
    report(
        "lookup, cached (1 thread, cold start)",
        lookups,
        t.elapsed().as_secs_f64(),
    );
    assert_eq!(hits, hits2);

    let t = Instant::now();
    for n in &stream {
        black_box(c.lookup(n));
    }
    report(
        "lookup, cached (1 thread, warm)",
        lookups,
        t.elapsed().as_secs_f64(),
    );

    let t = Instant::now();
    for n in &stream {
        black_box(c.match_endpoint(n, None, Some(443)));
    }
    report(
        "match_endpoint -> Vec<Match>, cached (1 thread)",
        lookups,
        t.elapsed().as_secs_f64(),
    );

    c.clear_cache();
    let t = Instant::now();
    let r = c.match_many(&stream);
    report(
        "match_many, cached (rayon, cold start)",
        lookups,
        t.elapsed().as_secs_f64(),
    );
    assert_eq!(r.iter().map(Vec::len).sum::<usize>(), hits);
    drop(r);
    let t = Instant::now();
    let r = c.match_many(&stream);
    report(
        "match_many, cached (rayon, warm)",
        lookups,
        t.elapsed().as_secs_f64(),
    );
    drop(r);

    // Worst case for the cache: every name distinct.
    let all_distinct = distinct_names(&c, lookups, 11);
    let refs: Vec<&str> = all_distinct.iter().map(String::as_str).collect();
    let t = Instant::now();
    for n in &refs {
        black_box(c.lookup_uncached(n));
    }
    report(
        "lookup_uncached, all names distinct (1 thread)",
        refs.len(),
        t.elapsed().as_secs_f64(),
    );
    c.clear_cache();
    let t = Instant::now();
    for n in &refs {
        black_box(c.lookup(n));
    }
    report(
        "lookup, all names distinct (1 thread, cache misses)",
        refs.len(),
        t.elapsed().as_secs_f64(),
    );
    c.clear_cache();
    let t = Instant::now();
    black_box(c.match_many(&refs));
    report(
        "match_many, all names distinct (rayon)",
        refs.len(),
        t.elapsed().as_secs_f64(),
    );
}
