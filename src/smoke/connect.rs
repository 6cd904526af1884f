//! `connect_to`: the smoke client's resolver that sends every request for the smoke URLs' host
//! names to another address, as curl's `--connect-to`. The URL's host name stays what the
//! request carries: TLS sends it as SNI and verifies the certificate against it, and it is the
//! Host header; only the TCP connection goes elsewhere.
//!
//! The override is the resolver's: the names of the URLs it was built for resolve to the target
//! (an IP as given; a DNS name, such as an ALB's whose addresses change, looked up on every new
//! connection by the system's resolver, as any smoke URL's host is), and every other name is
//! refused, so nothing (a redirect to another host is refused before it is sent anyway) reaches
//! the target by another name nor another host by the override.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::ConnectTo;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Resolves the smoke URLs' host names to the `connect_to` target.
#[derive(Debug, Clone)]
pub struct ConnectResolver {
    /// The host names (lower case) whose connections go to `target`.
    hosts: BTreeSet<String>,
    target: ConnectTo,
}

impl ConnectResolver {
    /// Sends connections for `hosts` (the smoke URLs' host names) to `target`.
    pub fn new(hosts: impl IntoIterator<Item = String>, target: ConnectTo) -> Self {
        Self { hosts: hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect(), target }
    }
}

impl Resolve for ConnectResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let asked = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        let known = self.hosts.contains(&asked);
        let target = self.target.clone();
        Box::pin(async move {
            if !known {
                return Err(BoxError::from(format!(
                    "{asked} is not a smoke URL's host: connect_to sends no request there"
                )));
            }
            // Port 0: the URL's port (or its scheme's); a URL that names a port keeps it.
            let port = target.port.unwrap_or(0);
            let addrs: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
                Ok(ip) => vec![SocketAddr::new(ip, port)],
                Err(_) => tokio::net::lookup_host((target.host.as_str(), port))
                    .await
                    .map_err(|e| BoxError::from(format!("connect_to {}: cannot resolve: {e}", target.host)))?
                    .collect(),
            };
            if addrs.is_empty() {
                return Err(BoxError::from(format!("connect_to {}: the name has no address", target.host)));
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Where a request for `url` connects under `connect_to`, in words: `internal-alb…:443`
/// (connect_to's port, else the URL's, else its scheme's).
pub fn via(url: &str, connect_to: &ConnectTo) -> String {
    let port = connect_to.port.or_else(|| url::Url::parse(url).ok().and_then(|u| u.port_or_known_default()));
    let host = match connect_to.host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => connect_to.host.clone(),
    };
    match port {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

/// `url`, and where its requests connect when a `connect_to` is set:
/// `https://todo.example.com/api/ via internal-alb…:443`.
pub fn target_of(url: &str, connect_to: Option<&ConnectTo>) -> String {
    let shown = crate::domain::text::without_query(url);
    match connect_to {
        Some(c) => format!("{shown} via {}", via(url, c)),
        None => shown.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(host: &str, port: Option<u16>) -> ConnectTo {
        ConnectTo { host: host.into(), port }
    }

    #[test]
    fn where_a_request_connects_is_said_with_the_port_it_uses() {
        let alb = "internal-todo-1.eu-west-1.elb.amazonaws.com";
        assert_eq!(
            target_of("https://todo.example.com/api/", Some(&to(alb, None))),
            format!("https://todo.example.com/api/ via {alb}:443")
        );
        assert_eq!(via("https://todo.example.com:8443/", &to(alb, None)), format!("{alb}:8443"));
        assert_eq!(via("http://todo.example.com/", &to("10.0.1.5", Some(8080))), "10.0.1.5:8080");
        assert_eq!(via("https://t.example/", &to("::1", Some(9443))), "[::1]:9443");
        assert_eq!(target_of("https://t.example/x?token=S", None), "https://t.example/x");
    }

    #[tokio::test]
    async fn the_smoke_hosts_resolve_to_the_target_and_no_other_name_resolves() {
        let r = ConnectResolver::new(["Todo.Example.Test".to_string()], to("127.0.0.1", Some(8443)));
        let addrs: Vec<SocketAddr> = r.resolve("todo.example.test".parse().unwrap()).await.unwrap().collect();
        assert_eq!(addrs, vec!["127.0.0.1:8443".parse().unwrap()]);
        let Err(e) = r.resolve("evil.example".parse().unwrap()).await else { panic!("another host resolved") };
        assert!(e.to_string().contains("evil.example is not a smoke URL's host"), "{e}");
        let by_name = ConnectResolver::new(["todo.example.test".to_string()], to("localhost", None));
        let addrs: Vec<SocketAddr> = by_name.resolve("todo.example.test".parse().unwrap()).await.unwrap().collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 0), "{addrs:?}");
    }
}
