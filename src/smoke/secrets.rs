//! Smoke-test credentials (which headers are, and where they may go: `config::credentials`): their values
//! read from SSM Parameter Store (SecureString) when a smoke test runs, never from the config.
//!
//! A value read from SSM lives in a [`Secret`] from the moment it is read to the moment it is
//! sent: its `Debug`, `Display` and `Serialize` show `(redacted)`, so no log line, record, answer
//! or notification that prints a request, a report or an error can carry it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::aws::ssm::ParameterStore;
use crate::config::{HeaderValue, SmokeConfig};
use crate::domain::error::AwsError;
use crate::domain::secret::Secret;

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
    use crate::config::credentials::{
        check_parameter_name, credential_in_clear, is_credential_header, may_carry_credentials,
    };
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
