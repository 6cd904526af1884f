//! What a probe (`validate --live`) requests: one GET of each smoke URL of the services it
//! names, from the live config only. `url` goes with no header; `test_url` with the
//! `test_headers`, which a header-matched test listener rule needs to route the request (a
//! credential among them is read from SSM as the smoke test reads it). The checks' headers
//! (an `Authorization` for an API path) are never sent: the probe requests no check path.

use std::collections::BTreeMap;

use crate::config::{Config, ConnectTo, HeaderValue};

/// One request a probe sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// The service's configured name.
    pub service: String,
    /// `url` or `test_url`.
    pub key: &'static str,
    /// The smoke URL, as configured.
    pub url: String,
    /// The service's `connect_to`.
    pub connect_to: Option<ConnectTo>,
    /// The headers sent: the `test_headers` for `test_url`, none for `url`.
    pub headers: BTreeMap<String, HeaderValue>,
    /// The smoke test's per-request timeout.
    pub timeout_ms: u64,
}

/// The requests for `service` (a configured name) or, with none named, for every service with a
/// smoke test; `Err` names the services there are when `service` is not one of them.
pub fn targets(config: &Config, service: Option<&str>) -> Result<Vec<ProbeTarget>, String> {
    let chosen: Vec<_> = config.services.iter().filter(|s| service.is_none_or(|n| s.name == n)).collect();
    if let (Some(name), true) = (service, chosen.is_empty()) {
        let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
        return Err(format!("{name:?} is not a service in the live config (its services: {})", names.join(", ")));
    }
    let mut out = Vec::new();
    for s in chosen {
        let Some(smoke) = &s.smoke else { continue };
        let target = |key, url: &str, headers| ProbeTarget {
            service: s.name.clone(),
            key,
            url: url.to_string(),
            connect_to: smoke.connect_to.clone(),
            headers,
            timeout_ms: smoke.timeout_ms,
        };
        out.push(target("url", &smoke.url, BTreeMap::new()));
        if let Some(test_url) = &smoke.test_url {
            out.push(target("test_url", test_url, smoke.test_headers.clone()));
        }
    }
    if out.is_empty() {
        return Err(match service {
            Some(name) => format!("{name} has no [service.smoke]: there is no URL to probe"),
            None => "no service in the live config has a [service.smoke]: there is no URL to probe".into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[defaults]
cluster = "todo"
[[service]]
name = "backend"
service = "todo-backend"
repository = "todo-backend"
tags = ["latest"]
[service.smoke]
url = "https://todo.example.com/api/"
test_url = "https://todo.example.com:8443/api/"
test_headers = { x-pushdeploy-test = "1" }
connect_to = "internal-todo-1.eu-west-1.elb.amazonaws.com"
[[service.smoke.check]]
path = "todoItems"
headers = { x-trace = "smoke" }
[service.hook]
stages = ["POST_TEST_TRAFFIC_SHIFT"]
timeout_minutes = 60
[[service]]
name = "worker"
service = "todo-worker"
repository = "todo-worker"
tags = ["latest"]
"#;

    #[test]
    fn a_probe_gets_each_smoke_url_of_the_named_services_and_no_check_s_headers() {
        let config = Config::parse(CONFIG, "t.toml").unwrap();
        let all = targets(&config, None).unwrap();
        let keys: Vec<(&str, &str, usize)> = all.iter().map(|t| (t.key, t.url.as_str(), t.headers.len())).collect();
        assert_eq!(
            keys,
            [("url", "https://todo.example.com/api/", 0), ("test_url", "https://todo.example.com:8443/api/", 1)]
        );
        assert_eq!(all[1].headers["x-pushdeploy-test"], HeaderValue::Plain("1".into()));
        assert_eq!(all[0].connect_to.as_ref().unwrap().host, "internal-todo-1.eu-west-1.elb.amazonaws.com");
        assert_eq!(targets(&config, Some("backend")).unwrap(), all);
        assert_eq!(
            targets(&config, Some("api")).unwrap_err(),
            "\"api\" is not a service in the live config (its services: backend, worker)"
        );
        assert_eq!(
            targets(&config, Some("worker")).unwrap_err(),
            "worker has no [service.smoke]: there is no URL to probe"
        );
    }
}
