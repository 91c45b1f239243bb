//! TLS record framing: the 5-byte header of a record (content type, version, body length) and
//! which headers are plausible. The flow table follows it to stop buffering a direction at its
//! first ApplicationData record (the encrypted bypass, see [`super::Stream::encrypted_from`]);
//! the TLS reader (`crate::proto::tls`) reads records by the same rules, from here.

use crate::wire::be16;

/// Field offsets of a record header (RFC 8446 section 5.1).
pub mod field {
    use crate::wire::Field;
    pub const TYPE: usize = 0;
    pub const MAJOR: usize = 1;
    pub const MINOR: usize = 2;
    pub const LENGTH: Field = 3..5;
    pub const BODY: usize = 5;
}

pub const REC_CHANGE_CIPHER_SPEC: u8 = 20;
pub const REC_ALERT: u8 = 21;
pub const REC_HANDSHAKE: u8 = 22;
pub const REC_APPLICATION_DATA: u8 = 23;
pub const REC_HEARTBEAT: u8 = 24;
/// Largest record body: 2^14 plaintext plus the 2048 bytes of expansion TLS 1.2 allows.
pub const MAX_RECORD: usize = (1 << 14) + 2048;

/// Whether `h` (1 to 5 bytes) can start a record header; `want` restricts the content type.
pub fn plausible_header(h: &[u8], want: Option<u8>) -> bool {
    let type_ok = |t: u8| match want {
        Some(w) => t == w,
        None => (REC_CHANGE_CIPHER_SPEC..=REC_HEARTBEAT).contains(&t),
    };
    use field as f;
    h.get(f::TYPE).is_some_and(|&t| type_ok(t))
        && h.get(f::MAJOR).is_none_or(|&major| major == 3)
        && h.get(f::MINOR).is_none_or(|&minor| minor <= 4)
        && h.get(f::LENGTH.start)
            .is_none_or(|&hi| (hi as usize) << 8 <= MAX_RECORD)
        && be16(h, f::LENGTH).is_none_or(|len| len as usize <= MAX_RECORD)
}

/// The content type and body length of a plausible record header (`None` when the 5 bytes
/// cannot start a TLS record): what the flow table's encrypted bypass walks by.
pub fn record_header(h: [u8; 5]) -> Option<(u8, usize)> {
    if !plausible_header(&h, None) {
        return None;
    }
    Some((h[field::TYPE], usize::from(be16(&h, field::LENGTH)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_whole_and_partial() {
        assert_eq!(record_header([23, 3, 3, 0, 40]), Some((23, 40)));
        assert_eq!(record_header([22, 3, 1, 0x48, 0]), Some((22, 0x4800)));
        // too long a body, an unknown type, another major version
        assert_eq!(record_header([22, 3, 1, 0x48, 1]), None);
        assert_eq!(record_header([25, 3, 3, 0, 1]), None);
        assert_eq!(record_header([22, 2, 0, 0, 1]), None);
        // a prefix of a header: plausible as far as it goes
        assert!(plausible_header(&[22, 3], Some(REC_HANDSHAKE)));
        assert!(!plausible_header(&[21, 3], Some(REC_HANDSHAKE)));
        assert!(!plausible_header(&[22, 3, 3, 0x49], None));
        assert!(!plausible_header(&[], None));
    }
}
