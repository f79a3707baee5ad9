//! Owns which address a request comes from: the peer, or the right-most
//! untrusted address of `X-Forwarded-For` when the peer is a trusted proxy.
//! Pure.

use std::net::IpAddr;

use ipnet::IpNet;
use warp::http::HeaderMap;

use super::upgrade::PeerAddr;

/// The client address of a request from `peer` (loopback when unknown),
/// honouring `X-Forwarded-For` from `trusted` proxies.
pub fn request_ip(headers: &HeaderMap, peer: Option<PeerAddr>, trusted: &[IpNet]) -> IpAddr {
    let peer_ip = peer.map_or(IpAddr::from([127, 0, 0, 1]), |p| p.0.ip());
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    client_ip(peer_ip, forwarded, trusted)
}

/// The client's address for a request from `peer`.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut hops = header
        .split(',')
        .rev()
        .map(str::trim)
        .filter(|hop| !hop.is_empty());
    let mut last_trusted = peer;
    for hop in hops.by_ref() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            // An unparsable hop cannot be trusted; the last good one wins.
            return last_trusted;
        };
        if !is_trusted(&ip) {
            return ip;
        }
        last_trusted = ip;
    }
    last_trusted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client() {
        assert_eq!(
            client_ip(ip("203.0.113.9"), Some("1.2.3.4"), &nets(&["10.0.0.0/8"])),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_wins() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some("6.6.6.6, 1.2.3.4, 10.0.0.7"), &trusted),
            ip("1.2.3.4")
        );
    }

    #[test]
    fn a_trusted_peer_without_header_is_itself() {
        assert_eq!(
            client_ip(ip("10.0.0.1"), None, &nets(&["10.0.0.0/8"])),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn garbage_hops_stop_the_walk() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some("1.2.3.4, junk"), &trusted),
            ip("10.0.0.1")
        );
    }
}
