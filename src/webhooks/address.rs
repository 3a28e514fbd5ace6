//! Where a webhook may send: `https://` to public addresses, unless the county allows its
//! intranet (`SURVEY_WEBHOOK_ALLOW_PRIVATE`, which also allows `http://`); cloud metadata
//! addresses never. Checked at registration and again before every attempt (DNS can change),
//! and the attempt connects to the addresses checked, not to a second lookup.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use reqwest::Url;

/// Why a URL or its addresses are refused.
pub type Refusal = String;

/// The instance metadata endpoints of cloud providers (AWS, GCP, Azure, ECS tasks, Alibaba,
/// Tencent): a server's credentials live there.
const METADATA: [IpAddr; 5] = [
    IpAddr::V4(std::net::Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(std::net::Ipv4Addr::new(169, 254, 170, 2)),
    IpAddr::V4(std::net::Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V4(std::net::Ipv4Addr::new(169, 254, 0, 23)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

/// A webhook URL's shape: an absolute `https://` (or `http://` when private ones are allowed)
/// URL with a host, no user or password, at most 2,000 characters.
pub fn check_url(text: &str, allow_private: bool) -> Result<Url, Refusal> {
    if text.len() > 2_000 {
        return Err("the url may have at most 2000 characters".into());
    }
    let url = Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => {
            return Err(
                "webhooks are sent over https:// (http:// only where SURVEY_WEBHOOK_ALLOW_PRIVATE allows intranet receivers)"
                    .into(),
            );
        }
        other => return Err(format!("'{other}:' URLs cannot receive webhooks")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the url has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("put credentials in the secret, not in the url".into());
    }
    Ok(url)
}

/// The addresses `url` resolves to, each allowed: all or nothing.
pub async fn resolve(url: &Url, allow_private: bool) -> Result<Vec<SocketAddr>, Refusal> {
    let host = url.host_str().ok_or("the url has no host")?;
    let port = url.port_or_known_default().ok_or("the url has no port")?;
    // `[::1]` comes with its brackets; an address needs no lookup.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| format!("{host} cannot be resolved: {e}"))?
            .collect(),
    };
    if addresses.is_empty() {
        return Err(format!("{host} resolves to no address"));
    }
    for address in &addresses {
        allowed(address.ip(), allow_private)?;
    }
    Ok(addresses)
}

/// Whether a receiver may be at `ip`.
pub fn allowed(ip: IpAddr, allow_private: bool) -> Result<(), Refusal> {
    let ip = match ip {
        IpAddr::V6(v6) => embedded_ipv4(v6).map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    if METADATA.contains(&ip) {
        return Err(format!("{ip} is a cloud metadata address"));
    }
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(format!("{ip} cannot receive webhooks"));
    }
    if !allow_private && is_internal(ip) {
        return Err(format!(
            "{ip} is a loopback, private or link-local address (SURVEY_WEBHOOK_ALLOW_PRIVATE allows intranet receivers)"
        ));
    }
    Ok(())
}

/// The IPv4 address an IPv6 one carries: mapped (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`)
/// or NAT64 (`64:ff9b::a.b.c.d`), which all reach that IPv4 address.
fn embedded_ipv4(v6: Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let [a, b] = s[6].to_be_bytes();
    let [c, d] = s[7].to_be_bytes();
    let tail = std::net::Ipv4Addr::new(a, b, c, d);
    let compatible = s[..6].iter().all(|&x| x == 0) && !v6.is_loopback() && !v6.is_unspecified();
    let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0);
    (compatible || nat64).then_some(tail)
}

fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                // 100.64.0.0/10, carrier-grade NAT: someone's private network.
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xC0) == 64)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_https_is_allowed_and_the_rest_only_when_the_county_allows_it() {
        assert!(check_url("https://platform.example.cn/hooks/survey", false).is_ok());
        assert!(
            check_url("http://10.0.0.5/hook", false)
                .unwrap_err()
                .contains("https://")
        );
        assert!(check_url("http://10.0.0.5/hook", true).is_ok());
        assert!(check_url("ftp://example.cn/", true).is_err());
        assert!(
            check_url("https://user:pw@example.cn/", false)
                .unwrap_err()
                .contains("secret")
        );
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "172.16.0.1",
            "169.254.1.1",
            "::1",
            "fd12::1",
            "fe80::1",
            "100.64.0.1",
            "::ffff:127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::7f00:1",
        ] {
            let ip: IpAddr = internal.parse().unwrap();
            assert!(allowed(ip, false).is_err(), "{internal}");
            assert!(allowed(ip, true).is_ok(), "{internal}");
        }
        for metadata in [
            "169.254.169.254",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "100.100.100.200",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(
                allowed(metadata.parse().unwrap(), true).is_err(),
                "{metadata}"
            );
        }
        assert!(allowed("203.0.113.7".parse().unwrap(), false).is_ok());
    }
}
