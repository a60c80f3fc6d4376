//! The `origin` field: who produced an event.
//!
//! The original computes `f"{hostname} ({socket.gethostbyname(hostname)})"`. In a Kubernetes pod
//! the hostname resolves to the pod IP, which is what the tutorial shows. Where the hostname
//! resolves only to a loopback address (many laptops and VMs) or not at all, we use the host's
//! primary non-loopback IPv4 address instead, so that replicas stay distinguishable.

use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};

/// The origin string for this host: `"<hostname> (<ipv4>)"`.
pub fn detect() -> String {
    let hostname = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    let address = choose_address(resolve_ipv4(&hostname), local_ip_address::local_ip().ok());
    format(&hostname, address)
}

/// Formats an origin like the original does.
pub fn format(hostname: &str, address: IpAddr) -> String {
    format!("{hostname} ({address})")
}

/// `gethostbyname`: the first IPv4 address the name resolves to.
fn resolve_ipv4(hostname: &str) -> Option<Ipv4Addr> {
    (hostname, 0)
        .to_socket_addrs()
        .ok()?
        .find_map(|addr| match addr.ip() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
}

/// The resolved address unless it is loopback or missing; then the primary interface address;
/// then loopback as a last resort.
pub fn choose_address(resolved: Option<Ipv4Addr>, primary: Option<IpAddr>) -> IpAddr {
    match (resolved, primary) {
        (Some(ip), _) if !ip.is_loopback() => IpAddr::V4(ip),
        (_, Some(ip)) if !ip.is_loopback() => ip,
        (Some(ip), _) => IpAddr::V4(ip),
        (None, _) => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_pod_address_wins() {
        let pod = Ipv4Addr::new(10, 1, 29, 185);
        let primary = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2));
        assert_eq!(choose_address(Some(pod), Some(primary)), IpAddr::V4(pod));
        assert_eq!(
            format("kafka-test-app-0", choose_address(Some(pod), None)),
            "kafka-test-app-0 (10.1.29.185)"
        );
    }

    #[test]
    fn loopback_or_unresolved_falls_back_to_primary_interface() {
        let primary = IpAddr::V4(Ipv4Addr::new(172, 17, 0, 3));
        assert_eq!(
            choose_address(Some(Ipv4Addr::new(127, 0, 1, 1)), Some(primary)),
            primary
        );
        assert_eq!(choose_address(None, Some(primary)), primary);
    }

    #[test]
    fn nothing_better_than_loopback() {
        assert_eq!(
            choose_address(Some(Ipv4Addr::new(127, 0, 1, 1)), None),
            IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1))
        );
        assert_eq!(choose_address(None, None), IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn detect_has_the_original_shape() {
        let origin = detect();
        let (host, rest) = origin.split_once(" (").unwrap();
        assert!(!host.is_empty());
        let ip = rest.strip_suffix(')').unwrap();
        assert!(ip.parse::<IpAddr>().is_ok(), "{origin}");
    }
}
