//! HTTP for smoke tests: rustls with verification on, no redirect off the configured host (but
//! its HTTP→HTTPS upgrade),
//! a per-request timeout that covers the body, and a bounded body read.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::redirect::Policy;
use reqwest::{Method, Url};

use crate::smoke::judge::Fetched;

/// Redirects followed at most (same host only).
const MAX_REDIRECTS: usize = 5;

/// One request to make.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// Method.
    pub method: String,
    /// Absolute URL on the configured host.
    pub url: Url,
    /// Extra headers (values are never logged).
    pub headers: BTreeMap<String, String>,
    /// Body, if any.
    pub body: Option<String>,
}

/// A reqwest client built once per cold start.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: reqwest::Client,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// Builds the client; redirects are followed only while they stay on the original origin.
    pub fn new() -> Self {
        crate::tls::install_crypto();
        let policy = Policy::custom(|attempt| {
            let allowed = attempt.previous().first().is_some_and(|first| may_follow(first, attempt.url()));
            if allowed && attempt.previous().len() <= MAX_REDIRECTS {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let client = reqwest::Client::builder()
            .redirect(policy)
            .user_agent(concat!("pushdeploy-smoke/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a rustls client always builds");
        Self { client }
    }

    /// Sends `req`; never fails, a transport error is part of the result.
    pub async fn fetch(&self, req: &HttpRequest, timeout: Duration, cap: usize) -> Fetched {
        let start = Instant::now();
        let method = Method::from_bytes(req.method.as_bytes()).unwrap_or(Method::GET);
        let mut builder = self.client.request(method, req.url.clone()).timeout(timeout);
        for (k, v) in &req.headers {
            builder = builder.header(k, v);
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        let elapsed = |start: Instant| start.elapsed().as_millis() as u64;
        let mut resp = match builder.send().await {
            Ok(r) => r,
            Err(e) => {
                return Fetched { latency_ms: elapsed(start), error: Some(describe(&e, timeout)), ..Default::default() }
            }
        };
        let status = resp.status().as_u16();
        let redirect_refused = if resp.status().is_redirection() {
            resp.headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| resp.url().join(l).ok())
                .filter(|target| !same_origin(&req.url, target))
                .map(|target| crate::image::truncate(target.as_str()))
        } else {
            None
        };
        let mut body = Vec::new();
        let mut over_cap = false;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > cap {
                        body.extend_from_slice(&chunk[..cap - body.len()]);
                        over_cap = true;
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Fetched {
                        status: Some(status),
                        latency_ms: elapsed(start),
                        body,
                        error: Some(describe(&e, timeout)),
                        ..Default::default()
                    }
                }
            }
        }
        Fetched { status: Some(status), latency_ms: elapsed(start), body, over_cap, error: None, redirect_refused }
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

/// A redirect from the configured `first` URL's origin that a smoke test follows: the same origin,
/// or the same host upgraded from `http://` to `https://` (an ALB's HTTP listener redirecting to
/// its HTTPS one). Anything else is another site, and fails the check.
fn may_follow(first: &Url, next: &Url) -> bool {
    same_origin(first, next)
        || (first.scheme() == "http" && next.scheme() == "https" && first.host_str() == next.host_str())
}

fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("timed out after {} ms", timeout.as_millis())
    } else if e.is_connect() {
        "could not connect".into()
    } else if e.is_redirect() {
        "too many redirects".into()
    } else if e.is_body() || e.is_decode() {
        "response body could not be read".into()
    } else {
        "request failed".into()
    }
}

/// Joins a check path to the smoke base URL; the result must stay on the base URL's origin.
pub fn join_url(base: &str, path: &str) -> Result<Url, String> {
    let base_url = Url::parse(base).map_err(|e| format!("smoke url {base:?} is not a URL: {e}"))?;
    let joined = format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'));
    let url = Url::parse(&joined).map_err(|e| format!("{joined:?} is not a URL: {e}"))?;
    if !same_origin(&base_url, &url) {
        return Err(format!("{path:?} leaves the smoke url's host"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_the_host_and_may_only_upgrade_to_https() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(may_follow(&u("http://alb/api/"), &u("http://alb/api/x")));
        assert!(may_follow(&u("http://alb/api/"), &u("https://alb/api/")), "the ALB's HTTP→HTTPS redirect");
        assert!(may_follow(&u("http://alb:80/"), &u("https://alb:443/x")));
        assert!(!may_follow(&u("https://alb/"), &u("http://alb/")), "never a downgrade");
        assert!(!may_follow(&u("http://alb/"), &u("https://evil.example/")));
        assert!(!may_follow(&u("http://alb/"), &u("http://alb:8080/")));
    }

    #[test]
    fn paths_join_under_the_base() {
        assert_eq!(join_url("http://alb/api/", "todoItems").unwrap().as_str(), "http://alb/api/todoItems");
        assert_eq!(join_url("http://alb/api", "/todoItems").unwrap().as_str(), "http://alb/api/todoItems");
        assert_eq!(join_url("http://alb/", "/").unwrap().as_str(), "http://alb/");
        assert_eq!(
            join_url("http://127.0.0.1:8080/", "health?x=1").unwrap().as_str(),
            "http://127.0.0.1:8080/health?x=1"
        );
        assert_eq!(join_url("http://alb", "@evil.example/").unwrap().host_str(), Some("alb"));
        assert_eq!(join_url("http://alb:8080/x", "..//..//evil.example/").unwrap().host_str(), Some("alb"));
        assert!(join_url("not a url", "/").is_err());
    }
}
