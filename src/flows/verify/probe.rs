//! A probe (`pushdeploy validate --live`): one GET of each smoke URL the live config names, sent
//! as a smoke test sends it (`connect_to`, the same TLS checks), each redirect reported rather
//! than followed blindly. Describe (the request, parsed; the targets, decided by
//! [`crate::rules::probe`]), then look; nothing is written, told or counted.

use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;
use serde_json::Value;

use super::Verifier;
use crate::rules::outcome::{Outcome, Summary};
use crate::rules::probe::{targets, ProbeTarget};
use crate::smoke::look::{look, Hop};
use crate::smoke::secrets;

/// What a probe answers: each URL and what its GET came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeAnswer {
    /// Always `"probed"`.
    pub outcome: &'static str,
    /// One per smoke URL.
    pub probed: Vec<Probed>,
}

/// One smoke URL's look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probed {
    /// The service's configured name.
    pub service: String,
    /// `url` or `test_url`.
    pub key: &'static str,
    /// The URL, and where it connects under `connect_to` (`… via internal-alb…:443`).
    pub target: String,
    /// The requests, the first and each redirect followed.
    pub hops: Vec<Hop>,
}

impl Verifier {
    /// Answers a probe payload: what each smoke URL answered, or a rejection saying why the
    /// payload was refused (nothing sent).
    pub async fn probe(&self, payload: &Value) -> Result<ProbeAnswer, Summary> {
        let rejected = |why: String| Summary::only(Outcome::Rejected, why);
        let req = crate::inbound::probe::parse(payload).map_err(|e| rejected(e.0))?;
        let wanted = targets(&self.config, req.service.as_deref()).map_err(rejected)?;
        let probed = join_all(wanted.iter().map(|t| self.probe_one(t))).await;
        Ok(ProbeAnswer { outcome: "probed", probed })
    }

    async fn probe_one(&self, t: &ProbeTarget) -> Probed {
        let target = crate::smoke::connect::target_of(&t.url, t.connect_to.as_ref());
        let failed = |error: String| Probed {
            service: t.service.clone(),
            key: t.key,
            target: target.clone(),
            hops: vec![Hop {
                url: target.clone(),
                status: None,
                location: None,
                not_followed: None,
                connected: None,
                ms: 0,
                error: Some(error),
            }],
        };
        let Ok(url) = reqwest::Url::parse(&t.url) else { return failed("not a URL".into()) };
        let headers = match self.probe_headers(t).await {
            Ok(h) => h,
            Err(why) => return failed(why),
        };
        let timeout = Duration::from_millis(t.timeout_ms);
        let hops = look(&self.http, &url, &headers, t.connect_to.as_ref(), timeout).await;
        Probed { service: t.service.clone(), key: t.key, target, hops }
    }

    /// `t`'s headers, a credential among them read from SSM as the smoke test reads it.
    async fn probe_headers(
        &self,
        t: &ProbeTarget,
    ) -> Result<std::collections::BTreeMap<String, crate::domain::secret::Secret>, String> {
        let Some(smoke) = self.config.services.iter().find(|s| s.name == t.service).and_then(|s| s.smoke.as_ref())
        else {
            return Ok(Default::default());
        };
        // Only the references the probe sends are read.
        let mut only = smoke.clone();
        only.test_headers = t.headers.clone();
        only.checks.iter_mut().for_each(|c| c.headers.clear());
        only.read_after_write = None;
        let resolved = self.secrets.resolve(&only).await.map_err(|e| e.to_string())?;
        secrets::headers_for(&t.headers, &resolved)
    }
}
