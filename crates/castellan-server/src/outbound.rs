//! Outbound HTTP (webhooks, Slack, PagerDuty, AI providers) behind a guard against
//! server-side request forgery: a destination is resolved once, every address it
//! resolves to must be public (not loopback, private, link-local — cloud metadata
//! lives there —, shared, unspecified, multicast or reserved) unless the operator
//! allow-listed it (`outbound_allow`), and the request is then pinned to the checked
//! address so a second DNS answer cannot swap it. Redirects are never followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// One `outbound_allow` entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Allow {
    /// An address block (a single address is a /32 or /128).
    Block(IpAddr, u8),
    /// A host name, matched exactly (case-insensitively).
    Host(String),
}

impl Allow {
    /// Parses `127.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8` or `hooks.internal`.
    pub fn parse(s: &str) -> Result<Allow, String> {
        let s = s.trim();
        let bad = || format!("outbound_allow: `{s}` is not an IP address, a CIDR block or a host name");
        if let Some((ip, bits)) = s.split_once('/') {
            let ip: IpAddr = ip.parse().map_err(|_| bad())?;
            let bits: u8 = bits.parse().map_err(|_| bad())?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if bits > max {
                return Err(bad());
            }
            return Ok(Allow::Block(ip, bits));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Allow::Block(ip, if ip.is_ipv4() { 32 } else { 128 }));
        }
        let host_ok = !s.is_empty()
            && s.len() <= 253
            && s.split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        if host_ok {
            Ok(Allow::Host(s.to_ascii_lowercase()))
        } else {
            Err(bad())
        }
    }

    fn admits(&self, host: &str, ip: IpAddr) -> bool {
        match self {
            Allow::Host(h) => h.eq_ignore_ascii_case(host.trim_end_matches('.')),
            Allow::Block(net, bits) => in_block(ip, *net, *bits),
        }
    }
}

fn in_block(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (canonical(ip), canonical(net)) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits.min(32))) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits.min(128))) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Why an address is not public, if it is not.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(a) => non_public_v4(a),
        IpAddr::V6(a) => non_public_v6(a),
    }
}

fn non_public_v4(a: Ipv4Addr) -> Option<&'static str> {
    let o = a.octets();
    if a.is_loopback() {
        Some("a loopback address")
    } else if a.is_private() {
        Some("a private address")
    } else if a.is_link_local() {
        Some("a link-local address (cloud metadata services live there)")
    } else if a.is_unspecified() || o[0] == 0 {
        Some("an unspecified address")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("a shared (carrier-grade NAT) address")
    } else if a.is_multicast() || a.is_broadcast() || o[0] >= 240 {
        Some("a multicast or reserved address")
    } else if (o[0] == 192 && o[1] == 0 && o[2] == 0) || (o[0] == 198 && (o[1] & 0xfe) == 18) {
        Some("a reserved address")
    } else {
        None
    }
}

fn non_public_v6(a: Ipv6Addr) -> Option<&'static str> {
    let s = a.segments();
    if a.is_loopback() {
        Some("a loopback address")
    } else if a.is_unspecified() {
        Some("an unspecified address")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Some("a private (unique local) address")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some("a link-local address")
    } else if a.is_multicast() {
        Some("a multicast address")
    } else if s[0] == 0x64 && s[1] == 0xff9b {
        // NAT64 can reach any IPv4 address, private ones included.
        Some("a NAT64 address")
    } else if s[0] == 0x2002 {
        Some("a 6to4 address")
    } else {
        None
    }
}

/// Why an outbound request was not made or failed.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboundError {
    /// The URL is not one Castellan calls.
    BadUrl(String),
    /// The destination is not public and not allow-listed.
    Refused(String),
    /// The host did not resolve.
    Resolve(String),
}

impl std::fmt::Display for OutboundError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutboundError::BadUrl(m) | OutboundError::Refused(m) | OutboundError::Resolve(m) => f.write_str(m),
        }
    }
}

/// The guard, built from the configuration.
#[derive(Debug, Clone)]
pub struct Outbound {
    allow: Vec<Allow>,
    timeout: Duration,
}

impl Outbound {
    /// From `outbound_allow` (entries already validated by the configuration) and
    /// the per-request time limit.
    pub fn new(allow: &[String], timeout: Duration) -> Outbound {
        Outbound { allow: allow.iter().filter_map(|a| Allow::parse(a).ok()).collect(), timeout }
    }

    /// Whether `url`'s host, if it is an address literal, would be refused (checked
    /// when an automation is saved; names are checked when they are called).
    pub fn check_literal(&self, url: &str) -> Result<(), OutboundError> {
        let u = reqwest::Url::parse(url).map_err(|e| OutboundError::BadUrl(format!("`{url}` is not a URL: {e}")))?;
        let host = u.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
        if let Ok(ip) = host.parse::<IpAddr>() {
            self.admit(&host, ip)?;
        }
        Ok(())
    }

    fn admit(&self, host: &str, ip: IpAddr) -> Result<(), OutboundError> {
        match non_public(ip) {
            Some(why) if !self.allow.iter().any(|a| a.admits(host, ip)) => Err(OutboundError::Refused(format!(
                "refused to call `{host}`: {ip} is {why}; an operator can allow it with `outbound_allow`"
            ))),
            _ => Ok(()),
        }
    }

    /// A client for one request to `url`: the host resolved and every address
    /// checked, the connection pinned to them, no redirects, the time limit set.
    pub async fn client_for(&self, url: &str) -> Result<reqwest::Client, OutboundError> {
        let u = reqwest::Url::parse(url).map_err(|e| OutboundError::BadUrl(format!("`{url}` is not a URL: {e}")))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(OutboundError::BadUrl(format!("`{url}` is not an http(s) URL")));
        }
        let host = u.host_str().ok_or_else(|| OutboundError::BadUrl(format!("`{url}` has no host")))?.to_owned();
        let port = u.port_or_known_default().unwrap_or(443);
        let bare = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare.as_str(), port))
                .await
                .map_err(|e| OutboundError::Resolve(format!("cannot resolve `{bare}`: {e}")))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(OutboundError::Resolve(format!("`{bare}` resolved to no address")));
        }
        for a in &addrs {
            self.admit(&bare, a.ip())?;
        }
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .user_agent(concat!("Castellan/", env!("CARGO_PKG_VERSION")));
        if bare.parse::<IpAddr>().is_err() {
            b = b.resolve_to_addrs(&bare, &addrs);
        }
        b.build().map_err(|e| OutboundError::BadUrl(format!("cannot build a client for `{url}`: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_loopback_metadata_and_mapped_addresses_are_not_public() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
        ] {
            assert!(non_public(ip(s)).is_some(), "{s}");
        }
        for s in ["8.8.8.8", "93.184.216.34", "2606:4700::1111", "100.128.0.1", "172.32.0.1"] {
            assert!(non_public(ip(s)).is_none(), "{s}");
        }
    }

    #[test]
    fn allow_entries_parse_and_match() {
        let o =
            Outbound::new(&["127.0.0.1".into(), "10.0.0.0/8".into(), "Hooks.Internal".into()], Duration::from_secs(1));
        assert!(o.admit("127.0.0.1", ip("127.0.0.1")).is_ok());
        assert!(o.admit("x", ip("10.200.0.1")).is_ok());
        assert!(o.admit("hooks.internal", ip("192.168.0.9")).is_ok());
        let err = o.admit("x", ip("192.168.0.9")).unwrap_err().to_string();
        assert!(err.contains("192.168.0.9 is a private address") && err.contains("outbound_allow"), "{err}");
        assert!(o.admit("x", ip("127.0.0.2")).is_err());
        for bad in ["10.0.0.0/33", "not a host!", "", "1.2.3.4/x"] {
            assert!(Allow::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Allow::parse("::1").unwrap(), Allow::Block(ip("::1"), 128));
    }

    #[tokio::test]
    async fn clients_are_refused_for_private_literals_and_localhost() {
        let o = Outbound::new(&[], Duration::from_secs(1));
        for url in [
            "http://127.0.0.1:9/x",
            "http://[::1]/x",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost:80/",
        ] {
            let err = o.client_for(url).await.unwrap_err();
            assert!(matches!(err, OutboundError::Refused(_)), "{url}: {err:?}");
        }
        assert!(matches!(o.client_for("ftp://example.com/").await.unwrap_err(), OutboundError::BadUrl(_)));
        assert!(o.check_literal("http://127.0.0.1/x").is_err());
        assert!(o.check_literal("http://localhost/x").is_ok(), "names are checked when called");
        let allowed = Outbound::new(&["127.0.0.1".into()], Duration::from_secs(1));
        assert!(allowed.client_for("http://127.0.0.1:9/x").await.is_ok());
    }
}
