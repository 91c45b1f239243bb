//! QUIC client Initials that decrypt: the input is a ClientHello (any bytes) that the target
//! seals into one or two real client Initials, so the fuzzer reaches the CRYPTO frame
//! reassembly and the ClientHello reading behind the decryption (mutated ciphertext of the
//! `quic` target almost never authenticates). Layout: a byte choosing the version (v1, v2,
//! draft-29), a byte for the DCID length (0 to 20) and the DCID, a byte saying where the hello
//! splits between the two Initials (and whether the second comes first), then the hello.
#![no_main]

use allowscope::proto::quic;
use libfuzzer_sys::fuzz_target;

const VERSIONS: [u32; 3] = [1, 0x6b33_43cf, 0xff00_001d];

/// A CRYPTO frame (type 6) at `offset` carrying `data`, lengths as 4-byte varints.
fn crypto(offset: usize, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0x06];
    f.extend((0x8000_0000u32 | offset as u32).to_be_bytes());
    f.extend((0x8000_0000u32 | data.len() as u32).to_be_bytes());
    f.extend_from_slice(data);
    // PADDING to a full-sized Initial, as clients send them.
    f.resize(f.len().max(1162), 0);
    f
}

fuzz_target!(|data: &[u8]| {
    let [v, n, rest @ ..] = data else { return };
    let version = VERSIONS[usize::from(*v) % VERSIONS.len()];
    let n = usize::from(*n % 21).min(rest.len());
    let (dcid, rest) = rest.split_at(n);
    let [split, hello @ ..] = rest else { return };
    if hello.len() > 16_000 {
        return;
    }
    let at = (usize::from(*split & 0x7f) * hello.len()) / 127;
    let (a, b) = hello.split_at(at);
    let mut datagrams = Vec::new();
    for (pn, (offset, part)) in [(0, a), (at, b)].into_iter().enumerate() {
        if part.is_empty() && pn == 1 {
            break;
        }
        if let Some(d) =
            quic::protect_client_initial(version, dcid, pn as u32, &crypto(offset, part))
        {
            datagrams.push(d);
        }
    }
    if split & 0x80 != 0 {
        datagrams.reverse();
    }
    let facts = quic::client_initial(datagrams.iter().map(Vec::as_slice));
    std::hint::black_box(&facts);
    std::hint::black_box(quic::flow_facts(
        datagrams.iter().map(Vec::as_slice),
        std::iter::empty::<&[u8]>(),
    ));
});
