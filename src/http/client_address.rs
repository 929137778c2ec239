//! The client's address, as sign-in throttling counts it.

use actix_web::http::header::HeaderMap;
use actix_web::HttpRequest;
use std::net::IpAddr;

use crate::domain::sign_in_throttle::address_key;

/// The throttle's key for the request's client: the peer's address, or, when the peer is one
/// of the `trusted_proxies`, the nearest address in `X-Forwarded-For` that is not a trusted
/// proxy. Without trusted proxies the header is ignored: anyone can send it, and believing
/// it would let an attacker pick a fresh address for every attempt.
pub fn client_address(request: &HttpRequest, trusted_proxies: &[IpAddr]) -> String {
    // actix's `realip_remote_addr` believes the headers from any peer: not used here.
    match request.peer_addr() {
        Some(peer) => address_key(resolve(peer.ip(), request.headers(), trusted_proxies)),
        None => "unknown".to_string(),
    }
}

/// Walks `X-Forwarded-For` from its right end (the hop nearest us) while the address there
/// is a trusted proxy; an unreadable entry stops the walk at the last trusted hop.
fn resolve(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpAddr]) -> IpAddr {
    let trusted = |address: &IpAddr| trusted_proxies.contains(&address.to_canonical());
    if !trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(address) => {
                client = address;
                if !trusted(&address) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(forwarded_for: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in forwarded_for {
            map.append(HeaderName::from_static("x-forwarded-for"), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        assert_eq!(resolve(ip("192.0.2.1"), &headers(&["198.51.100.9"]), &[]), ip("192.0.2.1"));
    }

    #[test]
    fn a_header_from_an_untrusted_peer_is_ignored() {
        assert_eq!(resolve(ip("192.0.2.1"), &headers(&["198.51.100.9"]), &[ip("10.0.0.1")]), ip("192.0.2.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        // The client claims to be 1.1.1.1; the first proxy saw 198.51.100.9.
        let forwarded = headers(&["1.1.1.1, 198.51.100.9", "10.0.0.2"]);
        assert_eq!(resolve(ip("10.0.0.1"), &forwarded, &trusted), ip("198.51.100.9"));
        // No header: the proxy itself.
        assert_eq!(resolve(ip("10.0.0.1"), &headers(&[]), &trusted), ip("10.0.0.1"));
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(resolve(ip("10.0.0.1"), &headers(&["198.51.100.9, not-an-ip"]), &trusted), ip("10.0.0.1"));
        // An IPv4 peer seen as IPv4-mapped IPv6 is still the trusted proxy.
        assert_eq!(resolve(ip("::ffff:10.0.0.1"), &headers(&["198.51.100.9"]), &trusted), ip("198.51.100.9"));
    }
}
