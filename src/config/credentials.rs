//! Which smoke-test headers are credentials, and where a config may send them: a credential is
//! never written in the config (it comes from SSM Parameter Store) and never goes over `http://`.

use crate::config::SmokeConfig;

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
    let Ok(u) = url::Url::parse(url) else { return false };
    let Some(host) = u.host_str().filter(|h| !h.is_empty()) else { return false };
    match u.scheme() {
        "https" => true,
        // The parser has normalised the host: IPv4 in dotted decimal, IPv6 in brackets, names
        // in lower case.
        "http" => is_loopback(host),
        _ => false,
    }
}

/// `localhost` or a loopback address (brackets around an IPv6 one allowed).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// [`may_carry_credentials`] for `url` as a smoke test sends it: over `http://` under a
/// `connect_to`, the request goes to that host, so it too must be the loopback interface.
fn may_carry_credentials_via(url: &str, connect_to: Option<&crate::config::ConnectTo>) -> bool {
    may_carry_credentials(url) && (url.starts_with("https://") || connect_to.is_none_or(|c| is_loopback(&c.host)))
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
            if !may_carry_credentials_via(url, smoke.connect_to.as_ref()) {
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
