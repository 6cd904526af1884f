//! `validate --live`'s look at a smoke URL: one GET, its redirects walked one by one (each
//! reported; followed only as a smoke test would follow it), with where each connected, how long
//! it took, and a failed connection or TLS handshake in words. No body is read.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::Url;
use serde::Serialize;

use crate::config::ConnectTo;
use crate::domain::secret::Secret;
use crate::domain::text::without_query;
use crate::smoke::client::{describe, may_follow, site_of, HttpClient, Redirects, MAX_REDIRECTS};

/// One request of the walk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    /// The URL requested, without its query.
    pub url: String,
    /// The status, when a response came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// A redirect's target: the URL without its query when it is followed, else its site only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Why a redirect was not followed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_followed: Option<String>,
    /// The address the connection went to (`10.0.1.5:443`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected: Option<String>,
    /// Time to the response's head, or to the failure.
    pub ms: u64,
    /// The failure, in words (a TLS error says which certificate check failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// GETs `url` with `headers`, connecting as `connect_to` says, and walks its redirects.
pub async fn look(
    http: &HttpClient,
    url: &Url,
    headers: &BTreeMap<String, Secret>,
    connect_to: Option<&ConnectTo>,
    timeout: Duration,
) -> Vec<Hop> {
    let mut hops = Vec::new();
    let mut next = Some(url.clone());
    while let Some(at) = next.take() {
        let (hop, follow) = one(http, url, &at, headers, connect_to, timeout).await;
        hops.push(hop);
        if hops.len() > MAX_REDIRECTS {
            if let Some(last) = hops.last_mut().filter(|_| follow.is_some()) {
                last.not_followed = Some(format!("more than {MAX_REDIRECTS} redirects"));
            }
            break;
        }
        next = follow;
    }
    hops
}

/// One request: its hop, and the redirect to follow next, if one is followed.
async fn one(
    http: &HttpClient,
    first: &Url,
    at: &Url,
    headers: &BTreeMap<String, Secret>,
    connect_to: Option<&ConnectTo>,
    timeout: Duration,
) -> (Hop, Option<Url>) {
    let start = Instant::now();
    let client = http.client_for(at, connect_to, Redirects::Report);
    let req = with_headers(client.get(at.clone()).timeout(timeout), headers);
    let mut hop = Hop {
        url: without_query(at.as_str()).to_string(),
        status: None,
        location: None,
        not_followed: None,
        connected: None,
        ms: 0,
        error: None,
    };
    let req = match req {
        Ok(req) => req,
        Err(why) => {
            hop.error = Some(why);
            return (hop, None);
        }
    };
    let resp = req.send().await;
    hop.ms = start.elapsed().as_millis() as u64;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            hop.error = Some(describe(&e, timeout));
            return (hop, None);
        }
    };
    hop.status = Some(resp.status().as_u16());
    hop.connected = resp.remote_addr().map(|a| a.to_string());
    if !resp.status().is_redirection() {
        return (hop, None);
    }
    let target =
        resp.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok()).and_then(|l| at.join(l).ok());
    let Some(target) = target else {
        hop.not_followed = Some("the redirect has no usable Location".into());
        return (hop, None);
    };
    if may_follow(first, &target) {
        hop.location = Some(without_query(target.as_str()).to_string());
        (hop, Some(target))
    } else {
        hop.location = Some(site_of(&target));
        hop.not_followed = Some("another host, or a downgrade to http://: a smoke test fails on this redirect".into());
        (hop, None)
    }
}

/// `req` with `headers`, each marked sensitive as the smoke client marks them (never indexed,
/// never in a Debug), or which one HTTP cannot carry.
fn with_headers(
    mut req: reqwest::RequestBuilder,
    headers: &BTreeMap<String, Secret>,
) -> Result<reqwest::RequestBuilder, String> {
    for (k, v) in headers {
        let Ok(mut value) = reqwest::header::HeaderValue::from_str(v.expose()) else {
            return Err(format!("header {k} has a value HTTP cannot carry (a control character or non-ASCII)"));
        };
        value.set_sensitive(true);
        req = req.header(k, value);
    }
    Ok(req)
}
