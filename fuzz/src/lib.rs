//! What the fuzz targets share: the framing of inputs that carry several byte strings (frames,
//! datagrams, a client and a server stream). `scripts/fuzz-seeds.sh` writes seeds in it.

/// Splits `data` into records, each a 2-byte big-endian length then that many bytes; the last
/// record is whatever remains when its length runs past the end (so every input means
/// something, and a cut record is still a record).
pub fn records(data: &[u8]) -> Records<'_> {
    Records { rest: data }
}

/// The iterator of [`records`].
pub struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Records<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (len, body) = match self.rest {
            [] => return None,
            [_] => return Some(std::mem::take(&mut self.rest)),
            [a, b, body @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), body),
        };
        let (rec, rest) = body.split_at(len.min(body.len()));
        self.rest = rest;
        Some(rec)
    }
}

/// Parses `text` as a catalog file; when it parses, builds the catalog, matches a few names
/// against it, and checks that its TOML export reads back to the same entries.
pub fn catalog_round_trip(text: &str) {
    use allowscope::catalog::{Catalog, CatalogData, Placeholders};
    let Ok(data) = CatalogData::parse(text, "fuzz.toml") else {
        return;
    };
    let exported = data.to_toml();
    let back = match CatalogData::parse(&exported, "fuzz.toml") {
        Ok(back) => back,
        Err(e) => panic!("the export does not read back: {e}\n{exported}"),
    };
    let strip = |d: &CatalogData| {
        let mut d = d.clone();
        d.entries.iter_mut().for_each(|e| e.origin.clear());
        d.private_endpoint_zones
            .iter_mut()
            .for_each(|z| z.origin.clear());
        (d.entries, d.private_endpoint_zones)
    };
    assert_eq!(strip(&back), strip(&data), "{exported}");
    let catalog = Catalog::new(data, Placeholders::default());
    for name in [
        "example.com",
        "x.blob.core.windows.net",
        "eastus.api.azureml.ms",
        "a.b.c.d.e",
        "",
    ] {
        std::hint::black_box(catalog.match_name(name));
        std::hint::black_box(catalog.lookup(name));
    }
}
