//! Smoke-test credentials: which headers are credentials, where they may be sent, and their values
//! read from SSM Parameter Store (SecureString) when a smoke test runs, never from the config.
//!
//! A value read from SSM lives in a [`Secret`] from the moment it is read to the moment it is
//! sent: its `Debug`, `Display` and `Serialize` show `(redacted)`, so no log line, record, answer
//! or notification that prints a request, a report or an error can carry it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::aws::ssm::ParameterStore;
use crate::config::{HeaderValue, SmokeConfig};
use crate::domain::error::AwsError;

/// A header value as it goes out: whatever prints it shows `(redacted)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself: only for the HTTP request that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("(redacted)")
    }
}

/// Header names always treated as credentials.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie", "x-api-key"];
/// Words that make any header name a credential's (`X-Auth-Token`, `X-Client-Secret`, `Api-Key`).
const CREDENTIAL_WORDS: &[&str] = &["token", "secret", "key", "auth", "password", "credential", "cookie"];

/// True when a header named `name` carries a credential (case-insensitive): `Authorization`,
/// `Proxy-Authorization`, `Cookie`, `X-Api-Key`, or any name containing `token`, `secret`, `key`,
/// `auth`, `password`, `credential` or `cookie`. Such a value may not be written in
/// `pushdeploy.toml` (readable by all who read the config and its old versions) and may not be
/// sent over `http://` (readable by all on the path). Erring towards "credential" costs a
/// parameter in SSM; erring the other way leaks a token.
pub fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    CREDENTIAL_HEADERS.contains(&name.as_str()) || CREDENTIAL_WORDS.iter().any(|w| name.contains(w))
}

/// True when a credential header may be sent to `url`: `https://`, or `http://` to the loopback
/// interface only (127.0.0.0/8, `::1`, `localhost`), where clear text never reaches a network.
/// The loopback exception is what lets the tests' stand-in app, which serves plain HTTP on
/// 127.0.0.1, check a credential header; an ALB is never on loopback.
pub fn may_carry_credentials(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else { return false };
    let Some(host) = u.host_str().filter(|h| !h.is_empty()) else { return false };
    match u.scheme() {
        "https" => true,
        // The parser has normalised the host: IPv4 in dotted decimal, IPv6 in brackets, names
        // in lower case.
        "http" => {
            host == "localhost"
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

/// A credential header a smoke test would send in clear text ([`credential_in_clear`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InClear<'a> {
    /// `url` or `test_url`: the key of the URL it would go to.
    pub url_key: &'static str,
    /// That URL.
    pub url: &'a str,
    /// The header's key under the smoke table, e.g. `check[0].headers.Authorization`.
    pub header: String,
}

/// The first credential header of `smoke` bound for a URL that may not carry one
/// ([`may_carry_credentials`]). Checks and the probe go through `url`, and through `test_url`
/// too (a hook checks through the test listener); `test_headers` only through `test_url`.
pub fn credential_in_clear(smoke: &SmokeConfig) -> Option<InClear<'_>> {
    let checks = smoke
        .checks
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.headers.keys().map(move |k| (format!("check[{i}].headers.{k}"), k)));
    let probe = smoke
        .read_after_write
        .iter()
        .flat_map(|p| p.headers.keys().map(|k| (format!("read_after_write.headers.{k}"), k)));
    let both = [("url", Some(smoke.url.as_str())), ("test_url", smoke.test_url.as_deref())];
    let test_only = [("test_url", smoke.test_url.as_deref())];
    let routed = checks
        .chain(probe)
        .map(|h| (h, &both[..]))
        .chain(smoke.test_headers.keys().map(|k| ((format!("test_headers.{k}"), k), &test_only[..])));
    for ((header, name), urls) in routed {
        if !is_credential_header(name) {
            continue;
        }
        for (url_key, url) in urls.iter().filter_map(|(k, u)| u.map(|u| (*k, u))) {
            if !may_carry_credentials(url) {
                return Some(InClear { url_key, url, header });
            }
        }
    }
    None
}

/// Checks an SSM parameter name as Parameter Store accepts it: letters, digits and `_.-/`, at
/// most 1011 characters, not starting with `aws` or `ssm` (reserved), a path starting with `/`
/// and at most 15 levels deep. The error says what is wrong; the name is not a secret.
pub fn check_parameter_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty: name a SecureString parameter, e.g. \"/pushdeploy/todo/api-token\"".into());
    }
    if name.len() > 1011 {
        return Err(format!("is {} characters long; Parameter Store names have at most 1011", name.len()));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "_.-/".contains(*c))) {
        return Err(format!("contains {c:?}: a parameter name has letters, digits and _ . - / only"));
    }
    let first = name.trim_start_matches('/').to_ascii_lowercase();
    if first.starts_with("aws") || first.starts_with("ssm") {
        return Err("starts with aws or ssm, which Parameter Store reserves".into());
    }
    if name.contains('/') && !name.starts_with('/') {
        return Err("is a path that does not start with /: write it as /a/b".into());
    }
    if name.ends_with('/') || name.contains("//") {
        return Err("has an empty path segment".into());
    }
    if name.matches('/').count() > 15 {
        return Err("is more than 15 levels deep; Parameter Store allows 15".into());
    }
    Ok(())
}

/// The values of a smoke test's parameter references, by parameter name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved(BTreeMap<String, Secret>);

impl Resolved {
    /// Values by parameter name.
    pub fn new(values: BTreeMap<String, Secret>) -> Self {
        Self(values)
    }
}

/// Every SSM parameter a smoke config (as aimed through a listener, see
/// [`SmokeConfig::through`]) refers to: its checks' headers and its probe's.
pub fn references(smoke: &SmokeConfig) -> BTreeSet<String> {
    let probe = smoke.read_after_write.iter().map(|p| &p.headers);
    smoke
        .checks
        .iter()
        .map(|c| &c.headers)
        .chain(probe)
        .flat_map(|h| h.values())
        .filter_map(|v| match v {
            HeaderValue::Ssm(name) => Some(name.clone()),
            HeaderValue::Plain(_) => None,
        })
        .collect()
}

/// What a report may say about the headers whose values came from SSM: the header and the
/// parameter (`Authorization (from ssm:/pushdeploy/todo/api-token)`), never a value.
pub fn sources(smoke: &SmokeConfig) -> Vec<String> {
    let probe = smoke.read_after_write.iter().map(|p| &p.headers);
    let named: BTreeSet<String> = smoke
        .checks
        .iter()
        .map(|c| &c.headers)
        .chain(probe)
        .flat_map(|h| h.iter())
        .filter_map(|(k, v)| match v {
            HeaderValue::Ssm(name) => Some(format!("{k} (from ssm:{name})")),
            HeaderValue::Plain(_) => None,
        })
        .collect();
    named.into_iter().collect()
}

/// The headers to send: plain values as written, references with the values read for them. A
/// reference that was not read is an error naming the header and the parameter (a bug: every
/// reference of the smoke test is read before it runs).
pub fn headers_for(
    headers: &BTreeMap<String, HeaderValue>,
    resolved: &Resolved,
) -> Result<BTreeMap<String, Secret>, String> {
    headers
        .iter()
        .map(|(k, v)| match v {
            HeaderValue::Plain(s) => Ok((k.clone(), Secret::new(s.clone()))),
            HeaderValue::Ssm(name) => resolved
                .0
                .get(name)
                .map(|s| (k.clone(), s.clone()))
                .ok_or_else(|| format!("header {k}: ssm:{name} was not read before the check")),
        })
        .collect()
}

/// How long a value read from SSM is used before it is read again. Each smoke test reads its
/// references once, before its first request; within this time a later invocation (a lifecycle
/// hook is called again every `interval_ms`) reuses them instead of calling SSM each round.
/// Short, so that a rotated token is in use within a minute: a smoke test with a revoked token
/// fails, and a failing smoke test rolls back a good build.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// The names among `wanted` that must be read now: not cached, or cached `ttl` ago or earlier.
pub fn to_fetch(
    wanted: &BTreeSet<String>,
    read_at: &HashMap<String, Instant>,
    now: Instant,
    ttl: Duration,
) -> Vec<String> {
    wanted
        .iter()
        .filter(|name| read_at.get(*name).is_none_or(|at| now.saturating_duration_since(*at) >= ttl))
        .cloned()
        .collect()
}

/// Reads smoke-test credentials from SSM, keeping each for [`CACHE_TTL`]. Built with the
/// verify function's state (so a new config starts with an empty cache); clones share the cache.
#[derive(Clone, Debug)]
pub struct SecretSource {
    store: ParameterStore,
    cache: Arc<Mutex<HashMap<String, (Secret, Instant)>>>,
}

impl SecretSource {
    /// A source reading through `store`.
    pub fn new(store: ParameterStore) -> Self {
        Self { store, cache: Arc::default() }
    }

    /// The values of every reference in `smoke`: from the cache, or read from SSM (concurrently).
    /// An error says which parameter could not be read and what to check; a throttled or
    /// unreachable SSM is transient (the invocation is retried), a missing parameter, one that
    /// is not a SecureString or AccessDenied is permanent (a person must act).
    pub async fn resolve(&self, smoke: &SmokeConfig) -> Result<Resolved, AwsError> {
        let wanted = references(smoke);
        if wanted.is_empty() {
            return Ok(Resolved::default());
        }
        let stale = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            let read_at = cache.iter().map(|(k, (_, at))| (k.clone(), *at)).collect();
            to_fetch(&wanted, &read_at, Instant::now(), CACHE_TTL)
        };
        let read = futures_util::future::join_all(stale.iter().map(|name| self.store.secure_string(name))).await;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        for (name, value) in stale.into_iter().zip(read) {
            cache.insert(name, (value?, Instant::now()));
        }
        Ok(Resolved::new(
            wanted.into_iter().filter_map(|name| cache.get(&name).map(|(s, _)| (name, s.clone()))).collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::domain::lifecycle::Listener;

    #[test]
    fn a_secret_never_shows_its_value() {
        let s = Secret::new("Bearer s3cr3t");
        assert_eq!(format!("{s:?}"), "Secret(redacted)");
        assert_eq!(format!("{s}"), "(redacted)");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"(redacted)\"");
        let map = BTreeMap::from([("Authorization".to_string(), s.clone())]);
        assert!(!format!("{map:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", Resolved::new(BTreeMap::from([("/p".into(), s.clone())]))).contains("s3cr3t"));
        assert_eq!(s.expose(), "Bearer s3cr3t");
    }

    #[test]
    fn credential_headers_are_recognised_by_name() {
        for name in [
            "Authorization",
            "authorization",
            "Proxy-Authorization",
            "Cookie",
            "X-Api-Key",
            "x-api-key",
            "X-Auth-Token",
            "X-Amz-Security-Token",
            "X-Client-Secret",
            "Api-Key",
            "X-Functions-Key",
            "X-Session-Cookie",
            "X-Db-Password",
            "X-AUTH",
            "X-Credentials",
        ] {
            assert!(is_credential_header(name), "{name}");
        }
        for name in ["x-pushdeploy-test", "Accept", "Content-Type", "X-Request-Id", "User-Agent", "Host", "X-Canary"] {
            assert!(!is_credential_header(name), "{name}");
        }
    }

    #[test]
    fn credentials_go_over_https_or_to_loopback_only() {
        for url in [
            "https://todo-alb-1.ap-southeast-2.elb.amazonaws.com/api/",
            "https://127.0.0.1:8443/",
            "http://127.0.0.1:8080/api/",
            "http://127.0.0.2/",
            "http://[::1]:8080/",
            "http://localhost:8080/",
            "http://LOCALHOST/",
        ] {
            assert!(may_carry_credentials(url), "{url}");
        }
        for url in [
            "http://todo-alb-1.ap-southeast-2.elb.amazonaws.com/api/",
            "http://10.0.0.5/",
            "http://localhost.evil.example/",
            "http://127.0.0.1.nip.io/",
            "http://[::2]/",
            "ftp://127.0.0.1/",
            "not a url",
        ] {
            assert!(!may_carry_credentials(url), "{url}");
        }
    }

    #[test]
    fn parameter_names_follow_parameter_store() {
        assert!(check_parameter_name("/pushdeploy/todo/api-token").is_ok());
        assert!(check_parameter_name("todo_api.token-1").is_ok());
        for (name, why) in [
            ("", "is empty"),
            ("/pushdeploy/todo api", "contains ' '"),
            ("/pushdeploy/tödo", "contains 'ö'"),
            ("/aws/reference/secretsmanager/x", "reserves"),
            ("ssm-token", "reserves"),
            ("pushdeploy/todo", "does not start with /"),
            ("/pushdeploy/", "empty path segment"),
            ("/pushdeploy//todo", "empty path segment"),
        ] {
            let e = check_parameter_name(name).unwrap_err();
            assert!(e.contains(why), "{name:?}: {e}");
        }
        assert!(check_parameter_name(&format!("/{}", "a".repeat(1011))).unwrap_err().contains("1011"));
        assert!(check_parameter_name(&"/a".repeat(16)).unwrap_err().contains("15 levels"));
    }

    #[test]
    fn a_credential_header_goes_only_where_it_may_be_carried() {
        let mut smoke = smoke();
        assert_eq!(credential_in_clear(&smoke), None);
        smoke.url = "http://alb/api/".into();
        let clear = credential_in_clear(&smoke).unwrap();
        assert_eq!(
            (clear.url_key, clear.url, clear.header.as_str()),
            ("url", "http://alb/api/", "check[0].headers.Authorization")
        );
        smoke.checks[0].headers.remove("Authorization");
        let clear = credential_in_clear(&smoke).unwrap();
        assert_eq!((clear.url_key, clear.header.as_str()), ("url", "read_after_write.headers.Authorization"));
        smoke.read_after_write = None;
        // The test listener's X-Test-Token goes only to test_url, which is https://.
        assert_eq!(credential_in_clear(&smoke), None);
        smoke.test_url = Some("http://alb:8080/api/".into());
        let clear = credential_in_clear(&smoke).unwrap();
        assert_eq!((clear.url_key, clear.header.as_str()), ("test_url", "test_headers.X-Test-Token"));
        smoke.test_headers.remove("X-Test-Token");
        assert_eq!(credential_in_clear(&smoke), None, "x-pushdeploy-test is no credential");
        smoke.checks[1].headers.insert("X-Api-Key".into(), HeaderValue::Ssm("/p/k".into()));
        let clear = credential_in_clear(&smoke).unwrap();
        assert_eq!((clear.url_key, clear.header.as_str()), ("url", "check[1].headers.X-Api-Key"));
        smoke.url = "http://127.0.0.1:8080/api/".into();
        let clear = credential_in_clear(&smoke).unwrap();
        assert_eq!(clear.url_key, "test_url", "checks go through the test listener too");
    }

    const HOOKED: &str = r#"
[[service]]
name = "backend"
service = "todo-backend"
cluster = "c"
repository = "todo-backend"
tags = ["latest"]
[service.smoke]
url = "https://alb/api/"
test_url = "https://alb:8443/api/"
test_headers = { x-pushdeploy-test = "1", X-Test-Token = { ssm = "/pushdeploy/todo/test-token" } }
[[service.smoke.check]]
path = "todoItems"
headers = { Authorization = { ssm = "/pushdeploy/todo/api-token" }, Accept = "application/json" }
[[service.smoke.check]]
path = "health"
[service.smoke.read_after_write]
write_path = "todoItems"
read_path = "todoItems"
headers = { Authorization = { ssm = "/pushdeploy/todo/writer-token" } }
[service.hook]
stages = ["POST_TEST_TRAFFIC_SHIFT"]
timeout_minutes = 10
"#;

    fn smoke() -> SmokeConfig {
        Config::parse(HOOKED, "t.toml").unwrap().services[0].smoke.clone().unwrap()
    }

    #[test]
    fn references_and_sources_follow_the_listener() {
        let prod = smoke().through(Listener::Production);
        assert_eq!(
            references(&prod).into_iter().collect::<Vec<_>>(),
            ["/pushdeploy/todo/api-token", "/pushdeploy/todo/writer-token"]
        );
        let test = smoke().through(Listener::Test);
        assert_eq!(references(&test).len(), 3, "the test listener's header too");
        assert_eq!(
            sources(&test),
            [
                "Authorization (from ssm:/pushdeploy/todo/api-token)",
                "Authorization (from ssm:/pushdeploy/todo/writer-token)",
                "X-Test-Token (from ssm:/pushdeploy/todo/test-token)",
            ]
        );
    }

    #[test]
    fn headers_get_the_values_read_for_their_references() {
        let check = &smoke().checks[0];
        let resolved =
            Resolved::new(BTreeMap::from([("/pushdeploy/todo/api-token".into(), Secret::new("Bearer t0k3n"))]));
        let sent = headers_for(&check.headers, &resolved).unwrap();
        assert_eq!(sent["Authorization"].expose(), "Bearer t0k3n");
        assert_eq!(sent["Accept"].expose(), "application/json");
        let e = headers_for(&check.headers, &Resolved::default()).unwrap_err();
        assert_eq!(e, "header Authorization: ssm:/pushdeploy/todo/api-token was not read before the check");
    }

    #[test]
    fn a_value_is_read_again_once_it_is_a_minute_old() {
        let now = Instant::now();
        let wanted: BTreeSet<String> = ["/a", "/b", "/c"].into_iter().map(String::from).collect();
        let read_at = HashMap::from([
            ("/a".to_string(), now - Duration::from_secs(5)),
            ("/b".to_string(), now - CACHE_TTL),
            ("/z".to_string(), now - Duration::from_secs(500)),
        ]);
        assert_eq!(to_fetch(&wanted, &read_at, now, CACHE_TTL), ["/b", "/c"]);
        assert!(to_fetch(&BTreeSet::new(), &read_at, now, CACHE_TTL).is_empty());
    }
}
