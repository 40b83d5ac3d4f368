//! The SSRF guard: which addresses a user-supplied URL may reach. Members may only reach
//! public addresses; admins may also reach private ones (a local Ollama is the common
//! case). The check runs on every resolved address of every connection, so DNS
//! rebinding and redirects to private hosts are refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Who the request is made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Public internet only.
    Public,
    /// Anything, private networks and loopback included (admin-owned connections).
    Any,
}

/// All a member is told about a refused address. Neither the address a name resolved to
/// nor the kind of range it is in: both would let members map the internal network one
/// name at a time. The detail goes to the debug log.
pub const NOT_ALLOWED: &str = "address not allowed";

/// Why an address is refused, for the log.
pub fn refused_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if let Some(v4) = embedded_v4(v6) {
                // Judged by the IPv4 address they carry; the deprecated compatible form
                // (`::a.b.c.d`) is refused whatever it carries.
                let compatible = seg[..6] == [0; 6];
                v4_reason(v4).or(compatible.then_some("IPv4-compatible"))
            } else if seg[..3] == [0x64, 0xff9b, 1] {
                // NAT64 local-use (RFC 8215) laid out other than as a /96: where it puts the
                // IPv4 address is the operator's choice, so the whole prefix is refused.
                Some("NAT64 local-use")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if (seg[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if (seg[0] & 0xffc0) == 0xfec0 {
                // Deprecated (RFC 3879) but still routed inside some networks.
                Some("site-local")
            } else if (seg[0] & 0xfe00) == 0xfc00 {
                Some("private (unique local)")
            } else if seg[..2] == [0x2001, 0xdb8] || (seg[0] == 0x3fff && seg[1] < 0x1000) {
                // 2001:db8::/32 and 3fff::/20 (RFC 9637).
                Some("documentation")
            } else {
                None
            }
        }
    }
}

/// The IPv4 address an IPv6 address stands for, in the forms that deliver to it: mapped
/// (`::ffff:a.b.c.d`), translated (`::ffff:0:a.b.c.d`, RFC 2765), NAT64 (`64:ff9b::a.b.c.d`,
/// and the local-use `64:ff9b:1::a.b.c.d` laid out as a /96), 6to4 (`2002:aabb:ccdd::…`,
/// the next 32 bits) and the deprecated compatible form (`::a.b.c.d`).
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    match v6.segments() {
        [0, 0, 0, 0, 0, 0xffff, hi, lo]
        | [0, 0, 0, 0, 0xffff, 0, hi, lo]
        | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo]
        | [0x64, 0xff9b, 1, 0, 0, 0, hi, lo]
        | [0, 0, 0, 0, 0, 0, hi, lo]
        | [0x2002, hi, lo, ..] => Some(v4_of(hi, lo)),
        _ => None,
    }
}

/// The IPv4 address carried in two 16-bit segments of an IPv6 address.
fn v4_of(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        // 169.254.169.254 is the cloud metadata service.
        Some("link-local (cloud metadata)")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if ip.is_broadcast() || ip.is_multicast() || o[0] >= 240 {
        Some("broadcast, multicast or reserved")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("carrier-grade NAT")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("IETF protocol assignments")
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        Some("benchmarking")
    } else if matches!(o[..3], [192, 0, 2] | [198, 51, 100] | [203, 0, 113]) {
        Some("documentation")
    } else {
        None
    }
}

/// `Ok` when `reach` allows connecting to `ip`; a refusal says only [`NOT_ALLOWED`].
pub fn check_ip(ip: IpAddr, reach: Reach) -> Result<(), String> {
    match (reach, refused_reason(ip)) {
        (Reach::Public, Some(why)) => {
            tracing::debug!(%ip, why, "address refused");
            Err(NOT_ALLOWED.into())
        }
        _ => Ok(()),
    }
}

/// This host's own interface addresses. A machine's public address reaches its own
/// services (the server itself, a database listening on every interface) as surely as
/// loopback does, so members may not reach these either. Read once when the engine
/// starts; an address added later is judged by its range alone.
#[derive(Clone, Debug, Default)]
pub struct OwnAddrs(Vec<IpAddr>);

impl OwnAddrs {
    pub fn new(mut addrs: Vec<IpAddr>) -> Self {
        addrs.sort_unstable();
        addrs.dedup();
        Self(addrs)
    }

    /// The addresses of every interface of this host (`getifaddrs`). When they cannot be
    /// listed, none: the ranges still apply, and the operator is told.
    pub fn of_this_host() -> Self {
        #[cfg(unix)]
        match nix::ifaddrs::getifaddrs() {
            Ok(list) => Self::new(
                list.filter_map(|i| i.address)
                    .filter_map(|a| {
                        let v4 = a.as_sockaddr_in().map(|s| IpAddr::V4(s.ip()));
                        v4.or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
                    })
                    .collect(),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "could not list this host's addresses; members may reach any public one");
                Self::default()
            }
        }
        #[cfg(not(unix))]
        Self::default()
    }

    pub fn as_slice(&self) -> &[IpAddr] {
        &self.0
    }

    /// Also in the IPv6 forms that carry an IPv4 address.
    fn contains(&self, ip: IpAddr) -> bool {
        let v4 = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.0.contains(&ip) || v4.is_some_and(|v4| self.0.contains(&v4))
    }
}

/// Parses a literal IP host (`1.2.3.4`, `[::1]`), if the host is one.
pub fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// Address ranges members may reach although they are private (an operator's internal
/// LLM gateway, say): `10.1.2.3/32`, `fd00::/8`.
#[derive(Clone, Debug, Default)]
pub struct Exempt(Vec<(IpAddr, u8)>);

impl Exempt {
    /// Parses CIDR blocks; a bad one is named in the error.
    pub fn parse(blocks: &[String]) -> Result<Self, String> {
        blocks
            .iter()
            .map(|b| {
                let (ip, len) = b.split_once('/').unwrap_or((b, if b.contains(':') { "128" } else { "32" }));
                let ip: IpAddr = ip.trim().parse().map_err(|_| format!("`{b}` is not an address block"))?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                match len.trim().parse::<u8>() {
                    Ok(n) if n <= max => Ok((ip, n)),
                    _ => Err(format!("`{b}` has a prefix length outside 0–{max}")),
                }
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|&(net, len)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        })
    }
}

/// Installs the TLS crypto (ring) for every HTTP client in the process; idempotent. reqwest
/// refuses to build a client without one.
pub fn install_tls() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Who may reach what: the connection's reach, the operator's exemptions and this host's
/// own addresses.
#[derive(Clone, Debug)]
pub struct Guard {
    pub reach: Reach,
    pub exempt: std::sync::Arc<Exempt>,
    pub own: std::sync::Arc<OwnAddrs>,
}

impl Guard {
    /// The operator's exemptions win over this host's own addresses: exempting an internal
    /// gateway that runs on this machine is what they are for.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        if self.reach == Reach::Any || self.exempt.contains(ip) {
            Ok(())
        } else if self.own.contains(ip) {
            tracing::debug!(%ip, why = "this host's own", "address refused");
            Err(NOT_ALLOWED.into())
        } else {
            check_ip(ip, self.reach)
        }
    }

    /// Checks a URL's host when it is a literal address (those never reach the resolver).
    /// `Url` has already read the other spellings of an IPv4 address (`2130706433`,
    /// `0x7f.1`, `0177.0.0.1`, full-width digits) as the address they stand for.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), String> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => Ok(()),
            None => Err("the URL has no host".into()),
        }
    }

    /// An HTTP client that refuses, on every connection and every redirect, the addresses
    /// this guard refuses; the whole exchange must finish within `timeout`.
    pub fn client(&self, timeout: std::time::Duration) -> Result<reqwest::Client, String> {
        self.builder(false)
            .connect_timeout(timeout.min(std::time::Duration::from_secs(10)))
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())
    }

    /// A guarded client for long-lived streams (MCP over HTTP): no overall deadline (it
    /// would cut a server-sent event stream), only a connect timeout; callers time each call.
    pub fn streaming_client(&self) -> Result<reqwest::Client, String> {
        self.builder(true)
            .connect_timeout(std::time::Duration::from_secs(10))
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| e.to_string())
    }

    /// Like [`Guard::streaming_client`], keeping idle connections for reuse: for model
    /// calls, where a fresh connection (and TLS handshake) per answer would add to the time
    /// to first token. Only ever shared between callers of the same reach.
    pub fn pooled_streaming_client(&self) -> Result<reqwest::Client, String> {
        self.builder(true)
            .connect_timeout(std::time::Duration::from_secs(10))
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| e.to_string())
    }

    /// What both clients share: the guarded resolver, no proxies (they would resolve names
    /// for us), and redirects checked against the guard and kept within the origin, so keys
    /// and headers never follow to another host. `keep_method`: only 307/308 are followed
    /// (other codes turn a POST into a GET); others end the exchange as they are.
    fn builder(&self, keep_method: bool) -> reqwest::ClientBuilder {
        install_tls();
        let redirect_guard = self.clone();
        reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(std::sync::Arc::new(GuardedResolver(self.clone())))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    return attempt.error("too many redirects");
                }
                if let Err(why) = redirect_guard.check_url(attempt.url()) {
                    return attempt.error(format!("redirect refused: {why}"));
                }
                let to = attempt.url().origin();
                if attempt.previous().first().is_some_and(|first| first.origin() != to) {
                    let to = to.ascii_serialization();
                    return attempt.error(format!("redirect to another origin ({to}) refused"));
                }
                if keep_method && !matches!(attempt.status().as_u16(), 307 | 308) {
                    return attempt.stop();
                }
                attempt.follow()
            }))
            .user_agent(concat!("Agentry/", env!("CARGO_PKG_VERSION")))
    }
}

/// Resolves names and refuses the answer if any address in it is refused (a name with one
/// public and one private address is how rebinding attacks pick their moment).
struct GuardedResolver(Guard);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for a in &addrs {
                guard.check(a.ip()).map_err(|why| format!("{host}: {why}"))?;
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> bool {
        check_ip(s.parse().expect("ip"), Reach::Public).is_err()
    }

    #[test]
    fn members_cannot_reach_internal_addresses() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
            "fe80::1",
            "fd00::1",
            "2002:7f00:1::",
            "::ffff:0:7f00:1",
            "::ffff:0:10.0.0.1",
            "64:ff9b:1::a9fe:a9fe",
            "64:ff9b:1:5db8:d822::",
            "fec0::1",
            "feff::1",
            "192.0.2.2",
            "198.51.100.7",
            "203.0.113.255",
            "2001:db8::1",
            "3fff:fff::1",
        ] {
            assert!(refused(ip), "{ip} should be refused");
        }
    }

    #[test]
    fn a_refusal_names_neither_the_address_nor_its_range() {
        let err = check_ip("10.0.0.5".parse().expect("ip"), Reach::Public).expect_err("private");
        assert_eq!(err, NOT_ALLOWED);
        let g = Guard {
            reach: Reach::Public,
            exempt: Default::default(),
            own: std::sync::Arc::new(OwnAddrs::new(vec!["93.184.216.34".parse().expect("ip")])),
        };
        assert_eq!(g.check("93.184.216.34".parse().expect("ip")), Err(NOT_ALLOWED.into()));
    }

    #[test]
    fn this_hosts_own_addresses_are_refused_to_members_in_every_form() {
        let own = OwnAddrs::new(vec!["93.184.216.34".parse().expect("ip"), "2606:2800:220:1::1".parse().expect("ip")]);
        let g = |reach| Guard { reach, exempt: Default::default(), own: std::sync::Arc::new(own.clone()) };
        for ip in
            ["93.184.216.34", "::ffff:93.184.216.34", "::ffff:0:5db8:d822", "64:ff9b::5db8:d822", "2606:2800:220:1::1"]
        {
            assert!(g(Reach::Public).check(ip.parse().expect("ip")).is_err(), "{ip} should be refused");
            assert!(g(Reach::Any).check(ip.parse().expect("ip")).is_ok(), "{ip}: admins reach anything");
        }
        assert!(g(Reach::Public).check("93.184.216.35".parse().expect("ip")).is_ok(), "a neighbour is someone else");
        let listed = OwnAddrs::of_this_host();
        assert!(listed.as_slice().contains(&"127.0.0.1".parse().expect("ip")), "{listed:?}");
    }

    #[test]
    fn public_addresses_pass_and_admins_reach_anything() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "93.184.216.34",
            "2606:4700:4700::1111",
            "::ffff:1.1.1.1",
            "::ffff:0:5db8:d822",
            "64:ff9b:1::5db8:d822",
            "2002:5db8:d822::1",
        ] {
            assert!(!refused(ip), "{ip} should pass");
        }
        assert!(check_ip("127.0.0.1".parse().expect("ip"), Reach::Any).is_ok());
    }

    #[test]
    fn exemptions_open_only_their_block() {
        let ex = Exempt::parse(&["127.0.0.2/32".into(), "fd00::/8".into()]).expect("blocks");
        let g = Guard { reach: Reach::Public, exempt: std::sync::Arc::new(ex), own: Default::default() };
        assert!(g.check("127.0.0.2".parse().expect("ip")).is_ok());
        assert!(g.check("127.0.0.1".parse().expect("ip")).is_err());
        assert!(g.check("fd12::1".parse().expect("ip")).is_ok());
        assert!(Exempt::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(Exempt::parse(&["nonsense".into()]).is_err());
    }

    #[test]
    fn literal_hosts_are_recognised() {
        assert_eq!(literal_ip("[::1]"), Some("::1".parse().expect("ip")));
        assert_eq!(literal_ip("10.0.0.1"), Some("10.0.0.1".parse().expect("ip")));
        assert_eq!(literal_ip("example.com"), None);
    }
}
