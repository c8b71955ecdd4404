//! The client's address (SPEC section 7): the socket peer, unless the peer
//! is a trusted proxy; then `CloudFront-Viewer-Address`, else the rightmost
//! untrusted `X-Forwarded-For` entry. Used by the service and the edge.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// SPEC section 7. IPv4-mapped IPv6 addresses count as IPv4.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    if let Some(ip) = headers
        .get("cloudfront-viewer-address")
        .and_then(|value| value.to_str().ok())
        .and_then(viewer_address)
    {
        return ip.to_canonical();
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    // Walk back from the nearest hop: proxies we trust appended the right end.
    let mut client = None;
    for entry in entries.iter().rev() {
        let Ok(ip) = entry.parse::<IpAddr>() else {
            break;
        };
        client = Some(ip.to_canonical());
        if !is_trusted(&ip.to_canonical()) {
            break;
        }
    }
    client.unwrap_or(peer)
}

/// `CloudFront-Viewer-Address: 203.0.113.7:46532` or `2001:db8::1:46532`.
fn viewer_address(value: &str) -> Option<IpAddr> {
    let (ip, port) = value.trim().rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("cloudfront-viewer-address", "5.6.7.8:1"),
        ]);
        assert_eq!(client_ip(ip("9.9.9.9"), &h, &[]), ip("9.9.9.9"));
    }

    #[test]
    fn trusted_peer_viewer_address_wins() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("cloudfront-viewer-address", "5.6.7.8:443"),
        ]);
        assert_eq!(client_ip(ip("10.1.1.1"), &h, &trusted), ip("5.6.7.8"));
        let v6 = headers(&[("cloudfront-viewer-address", "2001:db8::1:443")]);
        assert_eq!(client_ip(ip("10.1.1.1"), &v6, &trusted), ip("2001:db8::1"));
    }

    #[test]
    fn rightmost_untrusted_forwarded_entry_is_the_client() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.2")]);
        assert_eq!(client_ip(ip("10.1.1.1"), &h, &trusted), ip("1.2.3.4"));
    }

    #[test]
    fn mapped_ipv4_counts_as_ipv4() {
        assert_eq!(
            client_ip(ip("::ffff:1.2.3.4"), &HeaderMap::new(), &[]),
            ip("1.2.3.4")
        );
    }
}
