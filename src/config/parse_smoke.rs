//! `[service.smoke]`: the checks, the read-after-write probe and their request headers.

use std::collections::BTreeMap;

use toml::{Table, Value};

use crate::domain::error::ConfigError;

use super::fields::Fields;
use super::{CheckConfig, ConnectTo, HeaderValue, ReadAfterWriteConfig, SmokeConfig};

fn http_url(f: &Fields<'_>, key: &str, url: &str) -> Result<(), ConfigError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2048 {
        return Err(f.err(key, format!("{url:?} is not an http:// or https:// URL")));
    }
    Ok(())
}

/// `connect_to`: `HOST[:PORT]` (`[v6]:PORT` for an IPv6 address), no scheme, path or user.
fn parse_connect_to(s: &str) -> Result<ConnectTo, String> {
    let refuse = || {
        format!("{s:?} is not HOST or HOST:PORT (a DNS name or an IP address, e.g. \"internal-todo-123.eu-west-1.elb.amazonaws.com\" or \"10.0.1.5:443\")")
    };
    if s.is_empty() || s.len() > 300 || s.contains(['/', '@', '?', '#', ' ']) {
        return Err(refuse());
    }
    let parsed = url::Url::parse(&format!("https://{s}")).map_err(|_| refuse())?;
    let host = match parsed.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(a)) => a.to_string(),
        Some(url::Host::Ipv6(a)) => a.to_string(),
        None => return Err(refuse()),
    };
    // The URL parser drops a port equal to the scheme's default; the text says whether one was given.
    let port = match s.rsplit_once(':') {
        Some((_, p)) if !s.ends_with(']') && p.chars().all(|c| c.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(refuse)?)
        }
        _ => None,
    };
    Ok(ConnectTo { host, port })
}

/// Whether `connect_to` can apply to the URL under `key`: a request connects by resolving the
/// URL's host name, so the host must be a name (an IP is connected to as it is), and a URL that
/// names its own port keeps it, so connect_to may not name another.
fn connect_to_fits(c: &ConnectTo, key: &str, url: Option<&str>) -> Result<(), String> {
    let Some(u) = url.and_then(|u| url::Url::parse(u).ok()) else { return Ok(()) };
    if !matches!(u.host(), Some(url::Host::Domain(_))) {
        return Err(format!("applies to {key}, whose host is an address: connect_to keeps a URL's host name for TLS and Host, so {key} must name the host (e.g. https://todo.example.com/)"));
    }
    match (c.port, u.port()) {
        (Some(mine), Some(theirs)) if mine != theirs => Err(format!(
            "names port {mine}, but {key} names its own port {theirs}, which its requests keep: leave the port out of connect_to (each URL then connects on its own port) or make them agree"
        )),
        _ => Ok(()),
    }
}

/// `connect_to`, parsed and checked against the URLs it applies to.
fn connect_to_key(f: &mut Fields<'_>, url: &str, test_url: Option<&str>) -> Result<Option<ConnectTo>, ConfigError> {
    let Some(text) = f.opt_str("connect_to")? else { return Ok(None) };
    let c = parse_connect_to(&text).map_err(|m| f.err("connect_to", m))?;
    for (key, u) in [("url", Some(url)), ("test_url", test_url)] {
        connect_to_fits(&c, key, u).map_err(|m| f.err("connect_to", m))?;
    }
    Ok(Some(c))
}

pub(super) fn parse_smoke(t: Table, path: &str, source: &str) -> Result<SmokeConfig, ConfigError> {
    let mut f = Fields::new(t, path, source);
    let url = f.req_str("url")?;
    http_url(&f, "url", &url)?;
    let test_url = f.opt_str("test_url")?;
    if let Some(u) = &test_url {
        http_url(&f, "test_url", u)?;
    }
    let connect_to = connect_to_key(&mut f, &url, test_url.as_deref())?;
    let test_headers = header_table(&mut f, "test_headers")?;
    let attempts = f.opt_int("attempts", 1, 1000)?.unwrap_or(10) as u32;
    let interval_ms = f.opt_int("interval_ms", 0, 600_000)?.unwrap_or(3000) as u64;
    let timeout_ms = f.opt_int("timeout_ms", 1, 600_000)?.unwrap_or(5000) as u64;
    let consecutive = f.opt_int("consecutive", 1, 1000)?.unwrap_or(3) as u32;
    if consecutive > attempts {
        return Err(
            f.err("consecutive", format!("{consecutive} passing rounds can never happen in {attempts} attempts"))
        );
    }
    let target_group_arn = f.opt_str("target_group_arn")?;
    if let Some(arn) = &target_group_arn {
        if !arn.starts_with("arn:") || !arn.contains(":targetgroup/") {
            return Err(f.err("target_group_arn", format!("{arn:?} is not a target group ARN")));
        }
    }
    let mut checks = Vec::new();
    for (i, t) in f.array_of_tables("check")?.unwrap_or_default().into_iter().enumerate() {
        checks.push(parse_check(t, &format!("{path}.check[{i}]"), source)?);
    }
    if checks.is_empty() {
        return Err(f.err("check", "no [[service.smoke.check]]: a smoke test needs at least one check".into()));
    }
    let max_body_bytes = f.opt_int("max_body_bytes", 1, 64 * 1024 * 1024)?.unwrap_or(1024 * 1024) as usize;
    let read_after_write = match f.table("read_after_write")? {
        Some(t) => Some(parse_read_after_write(t, &format!("{path}.read_after_write"), source)?),
        None => None,
    };
    let smoke = SmokeConfig {
        url,
        test_url,
        connect_to,
        test_headers,
        attempts,
        interval_ms,
        timeout_ms,
        consecutive,
        target_group_arn,
        checks,
        max_body_bytes,
        read_after_write,
    };
    no_credential_in_clear(&f, &smoke)?;
    f.finish()?;
    Ok(smoke)
}

/// Refuses a credential header that would go over plain http:// (but to loopback).
fn no_credential_in_clear(f: &Fields<'_>, smoke: &SmokeConfig) -> Result<(), ConfigError> {
    let Some(clear) = crate::config::credentials::credential_in_clear(smoke) else { return Ok(()) };
    Err(f.err(
        clear.url_key,
        format!(
            "{:?} is not https://, and {} carries a credential, which would cross the network in clear text: use the load balancer's HTTPS listener (http:// is accepted only for 127.0.0.1 and localhost{})",
            crate::domain::text::without_query(clear.url),
            f.key(&clear.header),
            if smoke.connect_to.is_some() { ", connected to over loopback: connect_to is not" } else { "" }
        ),
    ))
}

fn parse_read_after_write(t: Table, path: &str, source: &str) -> Result<ReadAfterWriteConfig, ConfigError> {
    let mut f = Fields::new(t, path, source);
    let write_path = f.req_str("write_path")?;
    relative_path(&f, "write_path", &write_path)?;
    let write_method = f.opt_str("write_method")?.unwrap_or_else(|| "POST".into()).to_ascii_uppercase();
    if !["POST", "PUT", "PATCH"].contains(&write_method.as_str()) {
        return Err(f.err("write_method", format!("{write_method:?} does not write: use POST, PUT or PATCH")));
    }
    let write_body = f.opt_str("write_body")?.unwrap_or_else(|| r#"{"marker":"{marker}"}"#.into());
    if !write_body.contains("{marker}") {
        return Err(f.err("write_body", "must contain {marker}, or the reads could never find what was written".into()));
    }
    let read_path = f.req_str("read_path")?;
    relative_path(&f, "read_path", &read_path)?;
    let reads = f.opt_int("reads", 1, 100)?.unwrap_or(6) as u32;
    let headers = header_table(&mut f, "headers")?;
    let delete_path = f.opt_str("delete_path")?;
    let id_pointer = f.opt_str("id_pointer")?;
    if let Some(d) = &delete_path {
        relative_path(&f, "delete_path", d)?;
        if d.contains("{id}") && id_pointer.is_none() {
            return Err(f.err(
                "id_pointer",
                "delete_path uses {id}: say where the id is in the write's answer, e.g. \"/id\"".into(),
            ));
        }
    }
    if let Some(p) = &id_pointer {
        if !p.starts_with('/') {
            return Err(f.err("id_pointer", format!("{p:?} is not a JSON pointer (it starts with /)")));
        }
    }
    f.finish()?;
    Ok(ReadAfterWriteConfig {
        write_path,
        write_method,
        write_body,
        read_path,
        reads,
        headers,
        delete_path,
        id_pointer,
    })
}

fn relative_path(f: &Fields<'_>, key: &str, p: &str) -> Result<(), ConfigError> {
    if p.contains("://") || p.starts_with("//") || p.contains('\\') || p.chars().any(char::is_control) {
        return Err(f.err(key, "must be a path relative to the smoke url, not a URL".into()));
    }
    Ok(())
}

/// A table of request headers: each value a string, or `{ ssm = "/name" }` for a value read from
/// SSM Parameter Store. A credential header ([`crate::config::credentials::is_credential_header`]) must be
/// read from SSM: written here, it would be readable by everyone who can read the config, and
/// stay in every old version of the object.
fn header_table(f: &mut Fields<'_>, key: &str) -> Result<BTreeMap<String, HeaderValue>, ConfigError> {
    let mut out = BTreeMap::new();
    let Some(h) = f.table(key)? else { return Ok(out) };
    for (k, v) in h {
        let at = format!("{key}.{k}");
        let value = match v {
            Value::String(_) if crate::config::credentials::is_credential_header(&k) => {
                return Err(f.err(
                    &at,
                    format!(
                        "{k} carries a credential, and pushdeploy.toml (and every old version of it) is readable by all who read the config: store the value in SSM Parameter Store as a SecureString and write {k} = {{ ssm = \"/pushdeploy/<service>/<name>\" }}"
                    ),
                ))
            }
            Value::String(s) => HeaderValue::Plain(s),
            Value::Table(t) => {
                let mut r = Fields::new(t, &f.key(&at), f.source);
                if r.table.contains_key("secret") {
                    return Err(r.err(
                        "secret",
                        "Secrets Manager is not read by pushdeploy (one secrets service keeps verify small): store the value in SSM Parameter Store as a SecureString and write { ssm = \"/pushdeploy/<service>/<name>\" }".into(),
                    ));
                }
                let name = r.req_str("ssm")?;
                crate::config::credentials::check_parameter_name(&name).map_err(|m| r.err("ssm", format!("{name:?} {m}")))?;
                r.finish()?;
                HeaderValue::Ssm(name)
            }
            other => {
                return Err(f.err(
                    &at,
                    format!("must be a string or {{ ssm = \"/name\" }}, found {}", other.type_str()),
                ))
            }
        };
        out.insert(k, value);
    }
    Ok(out)
}

fn parse_check(t: Table, path: &str, source: &str) -> Result<CheckConfig, ConfigError> {
    let mut f = Fields::new(t, path, source);
    let path_s = f.req_str("path")?;
    relative_path(&f, "path", &path_s)?;
    let method = f.opt_str("method")?.unwrap_or_else(|| "GET".into()).to_ascii_uppercase();
    if !["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].contains(&method.as_str()) {
        return Err(f.err("method", format!("unknown HTTP method {method:?}")));
    }
    let headers = header_table(&mut f, "headers")?;
    let body = f.opt_str("body")?;
    let status = f.opt_int("status", 100, 599)?.unwrap_or(200) as u16;
    let contains = f.opt_str("contains")?;
    let json_pointer = f.opt_str("json_pointer")?;
    let equals = f.take("equals").map(toml_to_json);
    if equals.is_some() && json_pointer.is_none() {
        return Err(f.err("equals", "equals needs json_pointer: the value it compares".into()));
    }
    if let Some(p) = &json_pointer {
        if !(p.is_empty() || p.starts_with('/')) {
            return Err(f.err("json_pointer", format!("{p:?} is not a JSON pointer (it starts with /)")));
        }
    }
    let max_latency_ms = f.opt_int("max_latency_ms", 1, 600_000)?.map(|v| v as u64);
    f.finish()?;
    Ok(CheckConfig { path: path_s, method, headers, body, status, contains, json_pointer, equals, max_latency_ms })
}

fn toml_to_json(v: Value) -> serde_json::Value {
    match v {
        Value::String(s) => s.into(),
        Value::Integer(i) => i.into(),
        Value::Float(f) => serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into),
        Value::Boolean(b) => b.into(),
        Value::Datetime(d) => d.to_string().into(),
        Value::Array(a) => a.into_iter().map(toml_to_json).collect(),
        Value::Table(t) => t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{key_of, parse, MIN, SMOKE};

    #[test]
    fn connect_to_names_a_host_and_maybe_a_port_and_nothing_else() {
        let with = |c: &str| format!("{MIN}{}", SMOKE.replace("[[", &format!("connect_to='{c}'\n[[")));
        let to = |c: &str| parse(&with(c)).map(|c| c.services[0].smoke.clone().unwrap().connect_to.unwrap());
        let alb = "internal-todo-123.eu-west-1.elb.amazonaws.com";
        assert_eq!(to(alb).unwrap(), ConnectTo { host: alb.into(), port: None });
        assert_eq!(to(&format!("{alb}:443")).unwrap(), ConnectTo { host: alb.into(), port: Some(443) });
        assert_eq!(to("10.0.1.5:8443").unwrap(), ConnectTo { host: "10.0.1.5".into(), port: Some(8443) });
        assert_eq!(to("[::1]:8443").unwrap(), ConnectTo { host: "::1".into(), port: Some(8443) });
        for bad in ["https://alb", "alb/api", "user@alb", "alb:0", "alb:70000", "alb:", "", "a b"] {
            assert_eq!(key_of(&with(bad)), "service[0].smoke.connect_to", "{bad:?}");
        }
        assert_eq!(parse(&format!("{MIN}{SMOKE}")).unwrap().services[0].smoke.clone().unwrap().connect_to, None);
    }

    #[test]
    fn connect_to_applies_to_host_names_and_never_overrides_a_port_a_url_names() {
        let with = |url: &str, c: &str| {
            format!("{MIN}[service.smoke]\nurl='{url}'\nconnect_to='{c}'\n[[service.smoke.check]]\npath='todoItems'\n")
        };
        assert!(parse(&with("https://t.example:8443/", "alb")).is_ok());
        assert!(parse(&with("https://t.example:8443/", "alb:8443")).is_ok());
        assert!(
            parse(&with("https://t.example/", "alb:8443")).is_ok(),
            "a URL on its scheme's port takes connect_to's"
        );
        let e = parse(&with("https://t.example:8443/", "alb:443")).unwrap_err();
        assert_eq!(e.key, "service[0].smoke.connect_to");
        assert!(e.to_string().contains("names port 443, but url names its own port 8443"), "{e}");
        let e = parse(&with("https://10.0.0.1/", "alb")).unwrap_err();
        assert!(e.to_string().contains("applies to url, whose host is an address"), "{e}");
    }

    #[test]
    fn a_credential_over_http_to_loopback_may_not_be_connected_elsewhere() {
        let cfg = |c: &str| {
            format!("{MIN}[service.smoke]\nurl='http://localhost:8080/'\nconnect_to='{c}'\n[[service.smoke.check]]\npath='/'\nheaders={{Authorization={{ssm='/p/t'}}}}\n")
        };
        assert!(parse(&cfg("127.0.0.1")).is_ok());
        let e = parse(&cfg("10.0.1.5")).unwrap_err();
        assert_eq!(e.key, "service[0].smoke.url");
        assert!(e.to_string().contains("connect_to is not"), "{e}");
    }

    #[test]
    fn read_after_write_keys_are_checked() {
        let smoke = "[service.smoke]\nurl='http://x/api/'\n[[service.smoke.check]]\npath='todoItems'\n[service.smoke.read_after_write]\n";
        let ok = format!("{MIN}{smoke}write_path='todoItems'\nread_path='todoItems'\ndelete_path='todoItems/{{id}}'\nid_pointer='/id'\n");
        let c = parse(&ok).unwrap();
        let p = c.services[0].smoke.as_ref().unwrap().read_after_write.clone().unwrap();
        assert_eq!((p.write_method.as_str(), p.reads), ("POST", 6));
        assert!(p.write_body.contains("{marker}"));
        assert_eq!(key_of(&ok.replace("id_pointer='/id'\n", "")), "service[0].smoke.read_after_write.id_pointer");
        assert_eq!(key_of(&format!("{ok}write_body='{{}}'\n")), "service[0].smoke.read_after_write.write_body");
        assert_eq!(key_of(&format!("{ok}write_method='GET'\n")), "service[0].smoke.read_after_write.write_method");
        assert_eq!(
            key_of(&ok.replace("read_path='todoItems'", "read_path='http://evil/'")),
            "service[0].smoke.read_after_write.read_path"
        );
    }

    #[test]
    fn a_credential_header_is_read_from_ssm_never_written_in_the_config() {
        let with = |headers: &str| format!("{MIN}{SMOKE}headers={{ {headers} }}\n");
        let c = parse(&with("Authorization={ssm='/pushdeploy/todo/api-token'}, Accept='application/json'")).unwrap();
        let h = &c.services[0].smoke.as_ref().unwrap().checks[0].headers;
        assert_eq!(h["Authorization"], HeaderValue::Ssm("/pushdeploy/todo/api-token".into()));
        assert_eq!(h["Accept"], HeaderValue::Plain("application/json".into()));
        // A reference may name any header, a credential or not.
        assert!(parse(&with("X-Tenant={ssm='/pushdeploy/todo/tenant'}")).is_ok());

        for header in ["Authorization", "X-Api-Key", "Cookie", "X-Auth-Token", "proxy-authorization"] {
            let e = parse(&with(&format!("{header}='Bearer s3cr3t'"))).unwrap_err();
            assert_eq!(e.key, format!("service[0].smoke.check[0].headers.{header}"));
            assert!(e.message.contains("SSM Parameter Store as a SecureString"), "{e}");
            assert!(e.message.contains(&format!("{header} = {{ ssm = ")), "the fix, spelled out: {e}");
            assert!(!e.to_string().contains("s3cr3t"), "the value is not quoted back: {e}");
        }
        let e = parse(&format!(
            "{MIN}{SMOKE}[service.smoke.read_after_write]\nwrite_path='todoItems'\nread_path='todoItems'\nheaders={{Authorization='Bearer s3cr3t'}}\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, "service[0].smoke.read_after_write.headers.Authorization");
        let hook = "[service.hook]\nstages=['POST_TEST_TRAFFIC_SHIFT']\ntimeout_minutes=10\n";
        let e = parse(&format!(
            "{MIN}{}{hook}",
            SMOKE.replace("[[", "test_url='https://alb:8443/api/'\ntest_headers={X-Test-Token='s3cr3t'}\n[[")
        ))
        .unwrap_err();
        assert_eq!(e.key, "service[0].smoke.test_headers.X-Test-Token");

        for (headers, key, why) in [
            ("Authorization={ssm=''}", "headers.Authorization.ssm", "empty"),
            ("Authorization={ssm='/a b'}", "headers.Authorization.ssm", "contains ' '"),
            ("Authorization={ssm=1}", "headers.Authorization.ssm", "must be a string"),
            ("Authorization={}", "headers.Authorization.ssm", "missing"),
            ("Authorization={ssm='/a', kms='k'}", "headers.Authorization.kms", "unknown key"),
            (
                "Authorization={secret='arn:aws:secretsmanager:r:1:secret:n-AbCdEf'}",
                "headers.Authorization.secret",
                "SSM Parameter Store",
            ),
            ("Authorization=1", "headers.Authorization", "must be a string or { ssm"),
        ] {
            let e = parse(&with(headers)).unwrap_err();
            assert_eq!(e.key, format!("service[0].smoke.check[0].{key}"), "{headers}");
            assert!(e.message.contains(why), "{headers}: {e}");
        }
    }

    #[test]
    fn a_credential_header_never_goes_over_plain_http() {
        let reference = "headers={Authorization={ssm='/pushdeploy/todo/api-token'}}\n";
        let on = |url: &str| format!("{MIN}{}{reference}", SMOKE.replace("https://alb/api/", url));
        let e = parse(&on("http://todo-alb-1.elb.amazonaws.com/api/")).unwrap_err();
        assert_eq!(e.key, "service[0].smoke.url");
        assert!(e.message.contains("service[0].smoke.check[0].headers.Authorization carries a credential"), "{e}");
        assert!(e.message.contains("HTTPS listener"), "{e}");
        // Loopback only: clear text that never reaches a network (the tests' stand-in).
        assert!(parse(&on("http://127.0.0.1:8080/api/")).is_ok());
        assert!(parse(&on("http://localhost:8080/api/")).is_ok());
        // A non-credential header may go anywhere; so may a credential-free smoke test.
        assert!(parse(&format!("{MIN}{}headers={{Accept='text/html'}}\n", SMOKE.replace("https", "http"))).is_ok());

        // Checks also run through the test listener when a hook checks there.
        let hook = "[service.hook]\nstages=['POST_TEST_TRAFFIC_SHIFT']\ntimeout_minutes=10\n";
        let test_url = |url: &str, headers: &str| {
            format!("{MIN}{}{headers}{hook}", SMOKE.replace("[[", &format!("test_url='{url}'\n[[")))
        };
        assert!(parse(&test_url("https://alb:8443/api/", reference)).is_ok());
        let e = parse(&test_url("http://alb:8080/api/", reference)).unwrap_err();
        assert_eq!(e.key, "service[0].smoke.test_url");
        let test_token = |url: &str| {
            format!(
                "{MIN}{}{hook}",
                SMOKE.replace(
                    "https://alb/api/'\n",
                    &format!("http://alb/api/'\ntest_url='{url}'\ntest_headers={{X-Test-Token={{ssm='/p/t'}}}}\n")
                )
            )
        };
        // test_headers go only through the test URL: the production URL may stay http://.
        assert!(parse(&test_token("https://alb:8443/api/")).is_ok());
        assert_eq!(parse(&test_token("http://alb:8080/api/")).unwrap_err().key, "service[0].smoke.test_url");
    }
}
