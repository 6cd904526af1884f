//! HTTP for smoke tests: rustls with verification on, no redirect off the configured host (but
//! its HTTP→HTTPS upgrade),
//! a per-request timeout that covers the body, and a bounded body read.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::redirect::Policy;
use reqwest::{Method, Url};

use crate::config::ConnectTo;
use crate::domain::secret::Secret;
use crate::domain::text::without_query;
use crate::rules::judge::Fetched;
use crate::smoke::connect::ConnectResolver;

/// Redirects followed at most (same host only).
pub(crate) const MAX_REDIRECTS: usize = 5;

/// One request to make.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// Method.
    pub method: String,
    /// Absolute URL on the configured host.
    pub url: Url,
    /// Extra headers: each value a [`Secret`], so printing a request shows none of them.
    pub headers: BTreeMap<String, Secret>,
    /// Body, if any.
    pub body: Option<String>,
    /// The service's `connect_to`: where the request connects, its URL's host kept for TLS and Host.
    pub connect_to: Option<ConnectTo>,
}

/// Whether a client follows the redirects [`may_follow`] allows, or none (`validate --live`
/// reports each one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Redirects {
    /// Same origin, or the same host upgraded to `https://`.
    FollowSameHost,
    /// None: the answer is the first response.
    Report,
}

/// A routed client's key: `connect_to`'s host and port, the URL host sent there, the redirects.
type Route = (String, Option<u16>, String, Redirects);

/// The reqwest clients, built once per cold start: the plain one, and one per `connect_to` route
/// (a URL host and its target) built on first use, all trusting the same roots.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    /// Roots trusted beside the system's (a test's local CA); empty in Lambda.
    roots: Arc<Vec<reqwest::Certificate>>,
    routed: Arc<Mutex<HashMap<Route, reqwest::Client>>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// Builds the client; redirects are followed only while they stay on the original origin.
    pub fn new() -> Self {
        Self::trusting(Vec::new())
    }

    /// A client that trusts `roots` beside the system's roots (tests' local CAs).
    pub fn trusting(roots: Vec<reqwest::Certificate>) -> Self {
        crate::aws::tls::install_crypto();
        let client = build_client(&roots, Redirects::FollowSameHost, None);
        Self { client, roots: Arc::new(roots), routed: Arc::default() }
    }

    /// The client for a request to `url` under `connect_to`, following redirects or not.
    pub(crate) fn client_for(
        &self,
        url: &Url,
        connect_to: Option<&ConnectTo>,
        redirects: Redirects,
    ) -> reqwest::Client {
        if connect_to.is_none() && redirects == Redirects::FollowSameHost {
            return self.client.clone();
        }
        self.routed_client(url.host_str().unwrap_or_default().to_ascii_lowercase(), connect_to, redirects)
    }

    fn routed_client(&self, host: String, connect_to: Option<&ConnectTo>, redirects: Redirects) -> reqwest::Client {
        let key = (
            connect_to.map(|c| c.host.clone()).unwrap_or_default(),
            connect_to.and_then(|c| c.port),
            host.clone(),
            redirects,
        );
        let mut routed = self.routed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        routed
            .entry(key)
            .or_insert_with(|| {
                let resolver = connect_to.map(|c| ConnectResolver::new([host], c.clone()));
                build_client(&self.roots, redirects, resolver)
            })
            .clone()
    }

    /// Sends `req`; never fails, a transport error is part of the result.
    pub async fn fetch(&self, req: &HttpRequest, timeout: Duration, cap: usize) -> Fetched {
        let start = Instant::now();
        let elapsed = |start: Instant| start.elapsed().as_millis() as u64;
        let builder = match self.build(req, timeout) {
            Ok(b) => b,
            Err(error) => return Fetched { error: Some(error), ..Default::default() },
        };
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
                .map(|target| site_of(&target))
        } else {
            None
        };
        let (body, over_cap, error) = read_capped(&mut resp, cap, timeout).await;
        // A body cut short by an error is reported as that error alone.
        let redirect_refused = if error.is_some() { None } else { redirect_refused };
        Fetched { status: Some(status), latency_ms: elapsed(start), body, over_cap, error, redirect_refused }
    }

    /// The request with its headers, or why a header cannot be sent.
    fn build(&self, req: &HttpRequest, timeout: Duration) -> Result<reqwest::RequestBuilder, String> {
        let method = Method::from_bytes(req.method.as_bytes()).unwrap_or(Method::GET);
        let client = self.client_for(&req.url, req.connect_to.as_ref(), Redirects::FollowSameHost);
        let mut builder = client.request(method, req.url.clone()).timeout(timeout);
        for (k, v) in &req.headers {
            // Marked sensitive: HTTP/2 never indexes it (HPACK), and the http crate's Debug hides it.
            let Ok(mut value) = reqwest::header::HeaderValue::from_str(v.expose()) else {
                return Err(format!("header {k} has a value HTTP cannot carry (a control character or non-ASCII)"));
            };
            value.set_sensitive(true);
            builder = builder.header(k, value);
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        Ok(builder)
    }
}

/// A rustls client on the process's crypto, trusting the system's roots and `roots`.
fn build_client(
    roots: &[reqwest::Certificate],
    redirects: Redirects,
    resolver: Option<ConnectResolver>,
) -> reqwest::Client {
    let policy = match redirects {
        Redirects::Report => Policy::none(),
        Redirects::FollowSameHost => Policy::custom(|attempt| {
            let allowed = attempt.previous().first().is_some_and(|first| may_follow(first, attempt.url()));
            if allowed && attempt.previous().len() <= MAX_REDIRECTS {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }),
    };
    let mut builder =
        reqwest::Client::builder().redirect(policy).user_agent(concat!("pushdeploy-smoke/", env!("CARGO_PKG_VERSION")));
    for root in roots {
        builder = builder.add_root_certificate(root.clone());
    }
    if let Some(resolver) = resolver {
        builder = builder.dns_resolver(resolver);
    }
    builder.build().expect("a rustls client always builds")
}

/// The body up to `cap` bytes: what was read, whether it was cut there, and the error that
/// ended the read early, if one did.
async fn read_capped(resp: &mut reqwest::Response, cap: usize, timeout: Duration) -> (Vec<u8>, bool, Option<String>) {
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > cap {
                    body.extend_from_slice(&chunk[..cap - body.len()]);
                    return (body, true, None);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return (body, false, None),
            Err(e) => return (body, false, Some(describe(&e, timeout))),
        }
    }
}

/// Where a refused redirect pointed, as far as a record may say: scheme and host (and a port that
/// is not the scheme's own). Its path and query are left out: an off-site redirect is typically a
/// sign-in, whose `Location` carries OAuth codes, state and tokens.
pub fn site_of(target: &Url) -> String {
    match (target.host_str(), target.port()) {
        (Some(host), Some(port)) => crate::domain::image::truncate(&format!("{}://{host}:{port}", target.scheme())),
        (Some(host), None) => crate::domain::image::truncate(&format!("{}://{host}", target.scheme())),
        (None, _) => format!("a {}: URL", target.scheme()),
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

/// A redirect from the configured `first` URL's origin that a smoke test follows: the same origin,
/// or the same host upgraded from `http://` to `https://` (an ALB's HTTP listener redirecting to
/// its HTTPS one). Anything else is another site, and fails the check.
pub(crate) fn may_follow(first: &Url, next: &Url) -> bool {
    same_origin(first, next)
        || (first.scheme() == "http" && next.scheme() == "https" && first.host_str() == next.host_str())
}

/// A transport error in words: a timeout, a TLS failure (which certificate check), a name that
/// does not resolve, a refused connection.
pub(crate) fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("timed out after {} ms", timeout.as_millis())
    } else if let Some(tls) = crate::smoke::tls_words::in_chain(e as &(dyn std::error::Error + 'static)) {
        tls
    } else if e.is_connect() {
        crate::smoke::tls_words::connect_words(e as &(dyn std::error::Error + 'static))
    } else if e.is_redirect() {
        "too many redirects".into()
    } else if e.is_body() || e.is_decode() {
        "response body could not be read".into()
    } else {
        "request failed".into()
    }
}

/// Joins a check path to the smoke base URL. The result, as the URL parser resolved it (dot
/// segments, `%2e%2e`, backslashes), must stay on the base URL's origin and under its path: what
/// is compared is what will be sent. Errors name paths without their query.
pub fn join_url(base: &str, path: &str) -> Result<Url, String> {
    let shown = without_query(path);
    let base_url = Url::parse(base).map_err(|e| format!("smoke url {:?} is not a URL: {e}", without_query(base)))?;
    let joined = format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'));
    let url = Url::parse(&joined).map_err(|e| format!("{shown:?} does not make a URL under the smoke url: {e}"))?;
    if !same_origin(&base_url, &url) {
        return Err(format!("{shown:?} leaves the smoke url's host"));
    }
    let prefix = match base_url.path() {
        p if p.ends_with('/') => p.to_string(),
        p => format!("{p}/"),
    };
    if !url.path().starts_with(&prefix) {
        return Err(format!("{shown:?} leaves the smoke url's path ({prefix})"));
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
        assert!(join_url("not a url", "/").is_err());
    }

    #[test]
    fn a_joined_path_that_resolves_out_of_the_base_path_is_refused() {
        for path in [
            "todoItems/../../admin/users/1",
            "todoItems/%2e%2e/%2E%2E/admin",
            "todoItems\\..\\..\\admin",
            "..//..//evil.example/",
            "../health",
        ] {
            let e = join_url("http://alb:8080/api/", path).unwrap_err();
            assert!(e.ends_with("leaves the smoke url's path (/api/)"), "{path}: {e}");
        }
        assert!(join_url("http://alb/api", "../apix").is_err(), "a sibling sharing the prefix's letters");
        assert_eq!(join_url("http://alb/api", "").unwrap().as_str(), "http://alb/api/");
        assert_eq!(join_url("http://alb/api/", "todoItems/a/../b").unwrap().as_str(), "http://alb/api/todoItems/b");
        let e = join_url("http://alb/api/", "../x?token=SECRET").unwrap_err();
        assert!(!e.contains("SECRET"), "{e}");
    }

    #[test]
    fn queries_and_fragments_stay_out_of_what_is_recorded() {
        assert_eq!(without_query("todoItems?token=SECRET"), "todoItems");
        assert_eq!(without_query("callback#access_token=SECRET"), "callback");
        assert_eq!(without_query("a/b?x=1#y"), "a/b");
        assert_eq!(without_query("todoItems"), "todoItems");
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(site_of(&u("https://sso.example.com/authorize?code=SECRET&state=S")), "https://sso.example.com");
        assert_eq!(site_of(&u("http://user:pw@127.0.0.2:9/elsewhere#t=SECRET")), "http://127.0.0.2:9");
        assert_eq!(site_of(&u("https://idp.example:443/x")), "https://idp.example");
        assert_eq!(site_of(&u("data:text/html,SECRET")), "a data: URL");
    }
}
