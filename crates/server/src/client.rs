//! The client's address, as rate limits see it. Behind a reverse proxy every request comes from
//! the proxy: when the TCP peer is one of `trusted_proxies`, the client is the right-most address
//! of `X-Forwarded-For` that is not itself a trusted proxy (the left part of that header is
//! whatever the client wrote, so it is never believed).

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

/// Addresses and networks (`10.0.0.0/8`, `::1`) whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
/// Shared: the extractor takes a copy for every request.
pub struct TrustedProxies(std::sync::Arc<[(IpAddr, u8)]>);

impl TrustedProxies {
    /// Parses `ADDRESS` or `ADDRESS/PREFIX` entries; the error names the bad one.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| {
                let bad = || format!("trusted_proxies: `{e}` is not an address or network");
                let (addr, prefix) = match e.trim().split_once('/') {
                    Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
                    None => (e.trim(), None),
                };
                let ip: IpAddr = addr.parse().map_err(|_| bad())?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let prefix = prefix.unwrap_or(max);
                if prefix > max {
                    return Err(bad());
                }
                Ok((ip, prefix))
            })
            .collect::<Result<_, _>>()
            .map(|v: Vec<(IpAddr, u8)>| Self(v.into()))
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0
            .iter()
            .any(|(net, prefix)| match (canonical(*net), ip) {
                (IpAddr::V4(n), IpAddr::V4(i)) => same_prefix(&n.octets(), &i.octets(), *prefix),
                (IpAddr::V6(n), IpAddr::V6(i)) => same_prefix(&n.octets(), &i.octets(), *prefix),
                _ => false,
            })
    }

    /// The client behind `peer`, given the request's `X-Forwarded-For` headers (in order).
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = forwarded_for
            .iter()
            .flat_map(|h| h.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        // Right to left: the first address no trusted proxy of ours vouches for.
        hops.iter()
            .rev()
            .copied()
            .find(|ip| !self.contains(*ip))
            .or_else(|| hops.first().copied())
            .unwrap_or(peer)
    }
}

/// IPv4 addresses written as IPv6 (`::ffff:1.2.3.4`) compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn same_prefix(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    let rest = bits % 8;
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        (a[full] & mask) == (b[full] & mask)
    }
}

/// The client's address for this request (see the module docs).
pub struct ClientIp(pub IpAddr);

impl<S> FromRequestParts<S> for ClientIp
where
    S: Send + Sync,
    TrustedProxies: FromRef<S>,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, st: &S) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Ok(Self(TrustedProxies::from_ref(st).client(peer, &forwarded)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_peer_is_believed_and_only_for_its_own_hop() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into(), "127.0.0.1".into()]).unwrap();
        // Not behind a trusted proxy: the header is ignored.
        assert_eq!(t.client(ip("203.0.113.9"), &["1.2.3.4"]), ip("203.0.113.9"));
        // Behind our proxy: the address it saw.
        assert_eq!(
            t.client(ip("127.0.0.1"), &["198.51.100.7"]),
            ip("198.51.100.7")
        );
        // A client that writes its own header cannot choose its address.
        assert_eq!(
            t.client(ip("10.1.2.3"), &["6.6.6.6, 198.51.100.7"]),
            ip("198.51.100.7")
        );
        // Two of our proxies in a row, and the header split over two lines.
        assert_eq!(
            t.client(ip("127.0.0.1"), &["198.51.100.7, 10.9.9.9", "10.0.0.1"]),
            ip("198.51.100.7")
        );
        // No header: the proxy itself.
        assert_eq!(t.client(ip("127.0.0.1"), &[]), ip("127.0.0.1"));
        assert_eq!(
            t.client(ip("::ffff:127.0.0.1"), &["2001:db8::1"]),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn networks_are_checked_bit_by_bit_and_bad_entries_refused() {
        let t = TrustedProxies::parse(&["192.168.4.0/22".into(), "2001:db8::/32".into()]).unwrap();
        assert!(t.contains(ip("192.168.7.255")));
        assert!(!t.contains(ip("192.168.8.0")));
        assert!(t.contains(ip("2001:db8:ffff::1")));
        assert!(!t.contains(ip("2001:db9::1")));
        for bad in ["10.0.0.0/33", "nope", "1.2.3.4/x", "::/129"] {
            assert!(TrustedProxies::parse(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
