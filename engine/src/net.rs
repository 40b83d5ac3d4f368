//! The SSRF guard: which addresses a user-supplied URL may reach. Members may only reach
//! public addresses; admins may also reach private ones (a local Ollama is the common
//! case). The check runs on every resolved address of every connection, so DNS
//! rebinding and redirects to private hosts are refused too.

use std::net::{IpAddr, Ipv4Addr};

/// Who the request is made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Public internet only.
    Public,
    /// Anything, private networks and loopback included (admin-owned connections).
    Any,
}

/// Why an address is refused, for the error message.
pub fn refused_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => {
            // Mapped and translated IPv4 forms are judged by the IPv4 address they carry.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_reason(v4);
            }
            let seg = v6.segments();
            if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
                return v4_reason(v4_of(seg[6], seg[7]));
            }
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if (seg[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if (seg[0] & 0xfe00) == 0xfc00 {
                Some("private (unique local)")
            } else if seg[..6] == [0, 0, 0, 0, 0, 0] {
                // Deprecated IPv4-compatible form (::a.b.c.d).
                v4_reason(v4_of(seg[6], seg[7])).or(Some("IPv4-compatible"))
            } else if seg[0] == 0x2002 {
                // 6to4 embeds an IPv4 address in the next 32 bits.
                v4_reason(v4_of(seg[1], seg[2]))
            } else {
                None
            }
        }
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
    } else {
        None
    }
}

/// `Ok` when `reach` allows connecting to `ip`.
pub fn check_ip(ip: IpAddr, reach: Reach) -> Result<(), String> {
    match (reach, refused_reason(ip)) {
        (Reach::Public, Some(why)) => Err(format!("{ip} is a {why} address, which only admin connections may reach")),
        _ => Ok(()),
    }
}

/// Parses a literal IP host (`1.2.3.4`, `[::1]`), if the host is one.
pub fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
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
        ] {
            assert!(refused(ip), "{ip} should be refused");
        }
    }

    #[test]
    fn public_addresses_pass_and_admins_reach_anything() {
        for ip in ["1.1.1.1", "8.8.8.8", "172.32.0.1", "2606:4700:4700::1111", "::ffff:1.1.1.1"] {
            assert!(!refused(ip), "{ip} should pass");
        }
        assert!(check_ip("127.0.0.1".parse().expect("ip"), Reach::Any).is_ok());
    }

    #[test]
    fn literal_hosts_are_recognised() {
        assert_eq!(literal_ip("[::1]"), Some("::1".parse().expect("ip")));
        assert_eq!(literal_ip("10.0.0.1"), Some("10.0.0.1".parse().expect("ip")));
        assert_eq!(literal_ip("example.com"), None);
    }
}
