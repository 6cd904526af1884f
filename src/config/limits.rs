//! What a deployment of pushdeploy allows a config to ask for (clusters, time, memory), and the checks against it.

use crate::domain::error::ConfigError;

use super::{Config, ServiceConfig, SmokeConfig};

/// What a deployment of pushdeploy allows a config to ask for: checked by the functions at load
/// and by `pushdeploy validate` before an upload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// The clusters the stack's roles may touch (`PUSHDEPLOY_CLUSTERS`); `None`: not checked.
    pub clusters: Option<Vec<String>>,
    /// The time a smoke test may take at worst (verify's timeout less its margin); `None`: not checked.
    pub smoke_budget_ms: Option<u64>,
    /// The verify function's memory in MB (`VerifyMemorySize`): every smoke test's response
    /// bodies at their worst must fit in it; `None`: not checked.
    pub verify_memory_mb: Option<u64>,
}

/// What the verify process needs besides response bodies (runtime, SDK clients, TLS, the config
/// and the record), in MB: measured peaks stay well under it.
pub const VERIFY_BASELINE_MB: u64 = 48;

/// How many times its bytes a body can take at worst while it is judged: the body itself and its
/// parse into a JSON document for a `json_pointer` check.
pub const BODY_MEMORY_FACTOR: u64 = 3;

impl Config {
    /// Refuses smoke tests whose worst case would not fit in `available_ms` (the verify function's
    /// timeout less a margin), and hook checks that would not fit in the hook's own timeout.
    pub fn check_smoke_budget(&self, available_ms: u64) -> Result<(), ConfigError> {
        for (i, s) in self.judged_entries() {
            // A hook runs one round per invocation: each invocation must fit, not the whole test.
            let (needed, what, lower) = match (&s.smoke, &s.hook) {
                (None, _) => continue,
                (Some(smoke), Some(_)) => (
                    smoke.invocation_ms(),
                    "one hook invocation runs a round and, after the last, the probe: timeout_ms × checks + probe",
                    "lower timeout_ms",
                ),
                (Some(smoke), None) => (
                    smoke.budget_ms(),
                    "worst case attempts × (interval_ms + timeout_ms × checks) + probe",
                    "lower attempts, interval_ms or timeout_ms,",
                ),
            };
            if needed > available_ms {
                return Err(ConfigError {
                    file: self.source.clone(),
                    key: format!("service[{i}].smoke"),
                    message: format!(
                        "{what} = {needed} ms does not fit in the {available_ms} ms the verify function has; {lower} or raise the verify function's timeout (VerifyTimeoutSeconds, less 20 s kept for the verdict)"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Refuses a bake that would not fit in `available_ms` with the smoke test before it: verify
    /// bakes a rolling deployment within the invocation whose smoke test passed it.
    pub fn check_bake_budget(&self, available_ms: u64) -> Result<(), ConfigError> {
        for (i, s) in self.judged_entries() {
            let Some(a) = &s.analysis else { continue };
            let smoke_ms = s.smoke.as_ref().map_or(0, SmokeConfig::budget_ms);
            let Some(needed) = super::parse_analysis::bake_invocation_ms(a, smoke_ms) else { continue };
            if needed > available_ms {
                return Err(ConfigError {
                    file: self.source.clone(),
                    key: format!("service[{i}].analysis.bake"),
                    message: format!(
                        "the smoke test ({smoke_ms} ms at worst) and the bake = {needed} ms does not fit in the {available_ms} ms the verify function has; shorten bake, or raise the verify function's timeout (VerifyTimeoutSeconds, less 20 s kept for the verdict)"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Refuses smoke tests whose response bodies at their worst would not fit in verify's memory
    /// (`memory_mb`): a verify that runs out of memory dies mid-test, and every retry dies again.
    pub fn check_memory(&self, memory_mb: u64) -> Result<(), ConfigError> {
        let available = memory_mb.saturating_sub(VERIFY_BASELINE_MB) * 1024 * 1024;
        for (i, s) in self.judged_entries() {
            let Some(smoke) = &s.smoke else { continue };
            let needed = smoke.peak_body_bytes() * BODY_MEMORY_FACTOR;
            if needed > available {
                return Err(ConfigError {
                    file: self.source.clone(),
                    key: format!("service[{i}].smoke.max_body_bytes"),
                    message: format!(
                        "{} check(s) held at once × max_body_bytes {} × {BODY_MEMORY_FACTOR} (a body and its JSON parse) = {} MiB does not fit in the {} MiB the verify function has for bodies ({memory_mb} MB less {VERIFY_BASELINE_MB} MB for the runtime); lower max_body_bytes or raise VerifyMemorySize",
                        smoke.peak_body_bytes() / smoke.max_body_bytes.max(1) as u64,
                        smoke.max_body_bytes,
                        needed.div_ceil(1024 * 1024),
                        available / (1024 * 1024),
                    ),
                });
            }
        }
        Ok(())
    }

    /// Refuses services outside `clusters` (the clusters the functions' roles may touch): on AWS
    /// every call for them would be AccessDenied, so say so before the first push.
    pub fn check_clusters(&self, clusters: &[&str]) -> Result<(), ConfigError> {
        match self.services.iter().position(|s| !clusters.contains(&s.cluster.as_str())) {
            None => Ok(()),
            Some(i) => Err(ConfigError {
                file: self.source.clone(),
                key: format!("service[{}].cluster", self.entry_of[i]),
                message: format!(
                    "{:?} is not a cluster this stack manages ({clusters:?}): its IAM roles may touch only those services; deploy a stack for that cluster or fix the name",
                    crate::domain::image::truncate(&self.services[i].cluster)
                ),
            }),
        }
    }

    /// Every check the functions make before they act on a config (beyond parsing): the clusters
    /// the stack manages, when known, and the smoke budgets and bakes against verify's time.
    pub fn check_limits(&self, limits: &Limits) -> Result<(), ConfigError> {
        if let Some(clusters) = &limits.clusters {
            self.check_clusters(&clusters.iter().map(String::as_str).collect::<Vec<_>>())?;
        }
        if let Some(ms) = limits.smoke_budget_ms {
            self.check_smoke_budget(ms)?;
            self.check_bake_budget(ms)?;
        }
        if let Some(mb) = limits.verify_memory_mb {
            self.check_memory(mb)?;
        }
        Ok(())
    }

    /// Each ECS service's merged rules with the index (among the file's entries) of the entry
    /// whose smoke test it judges by (the first with one), for errors that name a key.
    fn judged_entries(&self) -> impl Iterator<Item = (usize, &ServiceConfig)> {
        self.judged.iter().map(|j| {
            let i = j.entries.iter().copied().find(|&i| self.services[i].smoke.is_some()).unwrap_or(j.entries[0]);
            (self.entry_of[i], &j.rules)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{parse, TODO};
    use crate::config::Limits;

    #[test]
    fn smoke_budget_must_fit_the_verify_timeout() {
        let c = parse(TODO).unwrap();
        // 10 attempts × (3000 ms interval + 5000 ms timeout × 1 check) = 80 s per service.
        assert_eq!(c.services[0].smoke.as_ref().unwrap().budget_ms(), 80_000);
        assert!(c.check_clusters(&["todo-cluster"]).is_ok());
        let e = c.check_clusters(&["prod"]).unwrap_err();
        assert_eq!(e.key, "service[0].cluster");
        assert!(e.message.contains("not a cluster this stack manages"), "{e}");
        // The backend adds its read-after-write probe: (6 reads + 2) × 5000 ms.
        assert_eq!(c.services[1].smoke.as_ref().unwrap().budget_ms(), 120_000);
        assert!(c.check_smoke_budget(120_000).is_ok());
        let e = c.check_smoke_budget(119_999).unwrap_err();
        assert_eq!(e.key, "service[1].smoke");
        assert!(e.message.contains("120000 ms does not fit in the 119999 ms"), "{e}");
        let e = c.check_smoke_budget(79_999).unwrap_err();
        assert_eq!(e.key, "service[0].smoke");
        assert!(e.message.contains("80000 ms does not fit in the 79999 ms"), "{e}");
    }

    #[test]
    fn a_bake_must_fit_the_verify_timeout_with_its_smoke_test() {
        let text = "[[service]]\nname='a'\nservice='s'\ncluster='c'\nrepository='r'\ntags=['latest']\n[service.smoke]\nurl='https://x/'\nattempts=2\nconsecutive=1\ninterval_ms=1000\ntimeout_ms=4000\n[[service.smoke.check]]\npath='/'\n[service.analysis]\nbake='10m'\nwindow='2m'\n";
        let c = Config::parse(text, "t.toml").unwrap();
        // 2 × (1 s + 4 s) of smoke test, then 10 min of bake (its own window: `window` is a hook's).
        assert!(c.check_bake_budget(610_000).is_ok());
        let e = c.check_bake_budget(609_999).unwrap_err();
        assert_eq!(e.key, "service[0].analysis.bake");
        assert!(e.message.contains("610000 ms does not fit in the 609999 ms"), "{e}");
        let limits = Limits { smoke_budget_ms: Some(600_000), ..Default::default() };
        assert_eq!(c.check_limits(&limits).unwrap_err().key, "service[0].analysis.bake");
    }

    #[test]
    fn response_bodies_at_their_worst_must_fit_in_verifys_memory() {
        let text = |cap: u64| {
            format!("[[service]]\nname='b'\nservice='b'\ncluster='c'\nrepository='r'\ntags=['latest']\n[service.smoke]\nurl='https://x/'\nmax_body_bytes={cap}\n[[service.smoke.check]]\npath='/a'\n[[service.smoke.check]]\npath='/b'\n")
        };
        let c = Config::parse(&text(1024 * 1024), "t.toml").unwrap();
        assert_eq!(c.services[0].smoke.as_ref().unwrap().peak_body_bytes(), 2 * 1024 * 1024);
        assert!(c.check_memory(128).is_ok());
        // 2 checks × 64 MiB × 3 = 384 MiB: far beyond 128 MB.
        let c = Config::parse(&text(64 * 1024 * 1024), "t.toml").unwrap();
        let e = c.check_memory(128).unwrap_err();
        assert_eq!(e.key, "service[0].smoke.max_body_bytes");
        assert!(e.message.contains("384 MiB does not fit in the 80 MiB"), "{}", e.message);
        assert!(c.check_memory(1024).is_ok());
        let limits = Limits { verify_memory_mb: Some(128), ..Default::default() };
        assert!(c.check_limits(&limits).is_err());
    }
}
