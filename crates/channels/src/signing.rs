//! HMAC-SHA256 (and SHA-256) helpers shared by every connector. Verification is constant-time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], data: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so the error arm is never taken; an all-zero block key keeps
    // this total without a panic path (no caller's signature would match it).
    let mut m = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default()),
    };
    m.update(data);
    m
}

/// The raw HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    mac(key, data).finalize().into_bytes().into()
}

/// Lower-case hex HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256_hex(key: &[u8], data: &[u8]) -> String {
    hex(&hmac_sha256(key, data))
}

/// Checks a hex signature in constant time. Upper- or lower-case hex is accepted.
pub fn verify_hex(key: &[u8], data: &[u8], signature_hex: &str) -> bool {
    let Some(sig) = unhex(signature_hex) else {
        return false;
    };
    mac(key, data).verify_slice(&sig).is_ok()
}

/// Checks a raw signature in constant time.
pub fn verify_raw(key: &[u8], data: &[u8], signature: &[u8]) -> bool {
    mac(key, data).verify_slice(signature).is_ok()
}

/// Lower-case hex SHA-256 of `data` (Zalo's webhook mac is a plain hash, not an HMAC).
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex(&Sha256::digest(data))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verify_accepts_only_the_right_signature() {
        let sig = hmac_sha256_hex(b"k", b"body");
        assert!(verify_hex(b"k", b"body", &sig));
        assert!(verify_hex(b"k", b"body", &sig.to_uppercase()));
        assert!(!verify_hex(b"k", b"body!", &sig));
        assert!(!verify_hex(b"other", b"body", &sig));
        assert!(!verify_hex(b"k", b"body", "zz"));
        assert!(!verify_hex(b"k", b"body", ""));
    }
}
