//! Signed, expiring links to one stored file, for providers that fetch what we send by URL
//! (Messenger, Instagram, WhatsApp's `link`, Telegram): `GET /media/s/{id}?exp=<unix>&sig=<hex>`
//! on our public URL, with `sig = HMAC-SHA256(key, "<id>.<exp>")`. The key is derived from the
//! server key kept in the store (the one that signs visitor tokens), so every node of a cluster
//! signs and verifies alike. A link is made when the outbox sends (not when the message is
//! queued), so a retry an hour later still hands the provider a fresh one.

use switchboard_channels::signing::{hmac_sha256, hmac_sha256_hex, verify_hex};
use switchboard_core::Timestamp;

/// How long a link works: long enough for a provider to fetch (and retry fetching) the file.
pub const VALID_SECS: i64 = 60 * 60;

#[derive(Clone)]
pub struct MediaLinks {
    key: [u8; 32],
    public_url: String,
}

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    Expired,
    BadSignature,
}

impl MediaLinks {
    /// `server_key`: the store's server key; the links' own key is derived from it.
    pub fn new(server_key: &[u8], public_url: &str) -> Self {
        Self {
            key: hmac_sha256(server_key, b"switchboard media links v1"),
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    fn signed(id: uuid::Uuid, exp: i64) -> String {
        format!("{id}.{exp}")
    }

    /// The link to file `id`, valid for [`VALID_SECS`] from `now`.
    pub fn url(&self, id: uuid::Uuid, now: Timestamp) -> String {
        let exp = now.millis() / 1000 + VALID_SECS;
        let sig = hmac_sha256_hex(&self.key, Self::signed(id, exp).as_bytes());
        format!("{}/media/s/{id}?exp={exp}&sig={sig}", self.public_url)
    }

    /// Whether `sig` signs file `id` until `exp`, and `exp` has not passed at `now`. The
    /// signature is checked first (in constant time), so a forged `exp` is never believed.
    pub fn verify(
        &self,
        id: uuid::Uuid,
        exp: i64,
        sig: &str,
        now: Timestamp,
    ) -> Result<(), LinkRefusal> {
        if !verify_hex(&self.key, Self::signed(id, exp).as_bytes(), sig) {
            return Err(LinkRefusal::BadSignature);
        }
        if now.millis() / 1000 > exp {
            return Err(LinkRefusal::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (i64, String) {
        let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
        let mut exp = 0;
        let mut sig = String::new();
        for kv in q.split('&') {
            match kv.split_once('=') {
                Some(("exp", v)) => exp = v.parse().unwrap_or(0),
                Some(("sig", v)) => sig = v.to_owned(),
                _ => {}
            }
        }
        (exp, sig)
    }

    #[test]
    fn a_link_works_until_it_expires_and_only_for_its_file() {
        let links = MediaLinks::new(b"server key", "https://sb.example/");
        let id = uuid::Uuid::now_v7();
        let t0 = Timestamp(1_790_000_000_000);
        let url = links.url(id, t0);
        assert!(url.starts_with(&format!("https://sb.example/media/s/{id}?exp=")));
        let (exp, sig) = parts(&url);
        assert_eq!(links.verify(id, exp, &sig, t0), Ok(()));
        let last = t0.plus_secs(VALID_SECS);
        assert_eq!(links.verify(id, exp, &sig, last), Ok(()));
        assert_eq!(
            links.verify(id, exp, &sig, last.plus_secs(1)),
            Err(LinkRefusal::Expired)
        );
        let other = uuid::Uuid::now_v7();
        assert_eq!(
            links.verify(other, exp, &sig, t0),
            Err(LinkRefusal::BadSignature)
        );
        assert_eq!(
            links.verify(id, exp + 3600, &sig, t0),
            Err(LinkRefusal::BadSignature)
        );
        let elsewhere = MediaLinks::new(b"another key", "https://sb.example");
        assert_eq!(
            elsewhere.verify(id, exp, &sig, t0),
            Err(LinkRefusal::BadSignature)
        );
    }
}
