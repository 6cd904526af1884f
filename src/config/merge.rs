//! Several `[[service]]` entries for one ECS service, merged into the rules it is judged by.

use super::{ServiceConfig, SmokeConfig};

/// Groups `services` by ECS service (file order) and merges each group ([`merge_entries`]): each
/// group's indexes into `services` and its rules, or `Err((entry, key, why))` naming the entry and
/// key that cannot merge. `entry_of` gives each service's index among the file's entries, which
/// errors name.
pub(super) fn judge_by_ecs_service(
    services: &[ServiceConfig],
    entry_of: &[usize],
) -> Vec<(Vec<usize>, Result<ServiceConfig, Clash>)> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, s) in services.iter().enumerate() {
        match groups.iter_mut().find(|g| services[g[0]].cluster == s.cluster && services[g[0]].service == s.service) {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
        .into_iter()
        .map(|entries| {
            let rules = merge_labelled(services, &entries, &|i| entry_of[i]);
            (entries, rules)
        })
        .collect()
}

/// Pure: one ECS service's rules from its `[[service]]` entries (`entries`, indexes into
/// `services`). Two entries for one service are legitimate (a task whose containers come from
/// two repositories), but the service has one revision, one verdict and one hook: every entry's
/// smoke checks are judged together (the verdict fails if any fails), and what cannot be merged
/// is refused, naming both entries: differing strategy, base, hook, analysis or `keep_revisions`, and smoke
/// tests that differ in anything but their checks (one URL, one pace, one probe per service).
pub fn merge_entries(services: &[ServiceConfig], entries: &[usize]) -> Result<ServiceConfig, Clash> {
    merge_labelled(services, entries, &|i| i)
}

/// [`merge_entries`], errors naming entry `i` as `label(i)`.
fn merge_labelled(
    services: &[ServiceConfig],
    entries: &[usize],
    label: &dyn Fn(usize) -> usize,
) -> Result<ServiceConfig, Clash> {
    let first = entries[0];
    let mut merged = Merged {
        rules: services[first].clone(),
        smoke_from: services[first].smoke.is_some().then_some(first),
        hook_from: services[first].hook.is_some().then_some(first),
        keep_from: services[first].keep_revisions.is_some().then_some(first),
        analysis_from: services[first].analysis.is_some().then_some(first),
    };
    for &i in &entries[1..] {
        merged.add(services, first, i, label)?;
    }
    Ok(merged.rules)
}

/// The rules merged so far, and the entry each optional part came from (for errors naming both).
struct Merged {
    rules: ServiceConfig,
    smoke_from: Option<usize>,
    hook_from: Option<usize>,
    keep_from: Option<usize>,
    analysis_from: Option<usize>,
}

/// Why entry `.0` cannot merge: `(entry, key, why)`.
type Clash = (usize, String, String);

impl Merged {
    /// Merges entry `i` in; `first` is the entry whose names the rules keep.
    fn add(
        &mut self,
        services: &[ServiceConfig],
        first: usize,
        i: usize,
        label: &dyn Fn(usize) -> usize,
    ) -> Result<(), Clash> {
        let s = &services[i];
        let clash = |key: &str, earlier: usize, what: String| {
            (
                label(i),
                key.to_string(),
                format!(
                    "service[{}] ({}) and service[{}] ({}) both deploy to {}/{}, which has one revision, one verdict and one lifecycle hook: {what}",
                    label(earlier), services[earlier].name, label(i), s.name, s.cluster, s.service
                ),
            )
        };
        if s.strategy != self.rules.strategy {
            return Err(clash("strategy", first, "they must use the same strategy".into()));
        }
        if s.mode != self.rules.mode {
            return Err(clash("mode", first, "they must use the same mode (observe or enforce)".into()));
        }
        if s.base != self.rules.base {
            return Err(clash("base", first, "they must copy the same base".into()));
        }
        if let Err(e) = agree(&mut self.rules.hook, &mut self.hook_from, s.hook.as_ref(), i) {
            return Err(clash("hook", e, "their [service.hook] differ; set it once, on one entry".into()));
        }
        if let Err(e) = agree(&mut self.rules.keep_revisions, &mut self.keep_from, s.keep_revisions.as_ref(), i) {
            return Err(clash("keep_revisions", e, "their keep_revisions differ; set it once, on one entry".into()));
        }
        if let Err(e) = agree(&mut self.rules.analysis, &mut self.analysis_from, s.analysis.as_ref(), i) {
            return Err(clash("analysis", e, "their [service.analysis] differ; set it once, on one entry".into()));
        }
        let Some(theirs) = &s.smoke else { return Ok(()) };
        let Some(e) = self.smoke_from else {
            self.rules.smoke = Some(theirs.clone());
            self.smoke_from = Some(i);
            return Ok(());
        };
        let ours = self.rules.smoke.as_mut().expect("smoke_from names an entry with a smoke test");
        if let Some(key) = smoke_difference(ours, theirs) {
            return Err(clash(
                &format!("smoke.{key}"),
                e,
                format!("their smoke tests differ in {key}, and verify runs every entry's checks as one smoke test; give both the same {key} or put every check under one entry's [service.smoke]"),
            ));
        }
        ours.checks.extend(theirs.checks.iter().cloned());
        if ours.read_after_write.is_none() {
            ours.read_after_write = theirs.read_after_write.clone();
        }
        Ok(())
    }
}

/// A setting one entry may make for all: entry `i`'s (`theirs`) is taken when no entry set it
/// yet (`from`), and refused, naming the entry that did (`Err`), when it differs.
fn agree<T: PartialEq + Clone>(
    ours: &mut Option<T>,
    from: &mut Option<usize>,
    theirs: Option<&T>,
    i: usize,
) -> Result<(), usize> {
    let Some(t) = theirs else { return Ok(()) };
    match *from {
        Some(e) if ours.as_ref() != Some(t) => Err(e),
        Some(_) => Ok(()),
        None => {
            *ours = Some(t.clone());
            *from = Some(i);
            Ok(())
        }
    }
}

/// The first setting (other than the checks) in which two smoke tests differ, if any; two
/// read-after-write probes differ even when equal (one probe per service).
fn smoke_difference(a: &SmokeConfig, b: &SmokeConfig) -> Option<&'static str> {
    [
        ("url", a.url == b.url),
        ("test_url", a.test_url == b.test_url),
        ("connect_to", a.connect_to == b.connect_to),
        ("test_headers", a.test_headers == b.test_headers),
        ("attempts", a.attempts == b.attempts),
        ("interval_ms", a.interval_ms == b.interval_ms),
        ("timeout_ms", a.timeout_ms == b.timeout_ms),
        ("consecutive", a.consecutive == b.consecutive),
        ("target_group_arn", a.target_group_arn == b.target_group_arn),
        ("max_body_bytes", a.max_body_bytes == b.max_body_bytes),
        ("read_after_write", a.read_after_write.is_none() || b.read_after_write.is_none()),
    ]
    .into_iter()
    .find(|(_, same)| !same)
    .map(|(key, _)| key)
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::parse;
    use crate::config::Config;

    #[test]
    fn entries_for_one_ecs_service_are_judged_together_or_refused_naming_both() {
        let entry = |name: &str, extra: &str| {
            format!("[[service]]\nname='{name}'\nservice='todo'\ncluster='c'\nrepository='{name}'\ntags=['latest']\ncontainers=['{name}']\n{extra}")
        };
        let smoke =
            |url: &str, path: &str| format!("[service.smoke]\nurl='{url}'\n[[service.smoke.check]]\npath='{path}'\n");
        let paths = |c: &Config| -> Vec<String> {
            let s = c.by_ecs_service("c", "todo").unwrap().smoke.as_ref().unwrap();
            s.checks.iter().map(|k| k.path.clone()).collect()
        };
        // The first entry has no smoke test: the service is still judged by the second's.
        let c = parse(&format!("{}{}", entry("web", ""), entry("api", &smoke("http://x/", "/api")))).unwrap();
        assert_eq!(c.by_ecs_service("c", "todo").unwrap().name, "web", "named by its first entry");
        assert_eq!(paths(&c), ["/api"]);
        // Both have one: every check runs, and the budget counts them all.
        let both = format!("{}{}", entry("web", &smoke("http://x/", "/")), entry("api", &smoke("http://x/", "/api")));
        let c = parse(&both).unwrap();
        assert_eq!(paths(&c), ["/", "/api"]);
        // 10 attempts × (3000 ms + 5000 ms × 2 checks) = 130 s, where each entry alone takes 80 s.
        assert_eq!(c.by_ecs_service("c", "todo").unwrap().smoke.as_ref().unwrap().budget_ms(), 130_000);
        assert_eq!(c.check_smoke_budget(129_999).unwrap_err().key, "service[0].smoke");
        // keep_revisions and a hook set once apply to the service.
        let c = parse(&format!("{}{}", entry("web", "keep_revisions=5\n"), entry("api", ""))).unwrap();
        assert_eq!(c.by_ecs_service("c", "todo").unwrap().keep_revisions, Some(5));
        let c = parse(&format!("{}{}", entry("web", ""), entry("api", "keep_revisions=5\n"))).unwrap();
        assert_eq!(c.by_ecs_service("c", "todo").unwrap().keep_revisions, Some(5));

        // What cannot be merged is refused, naming both entries and the key.
        for (second, key, why) in [
            (entry("api", &smoke("http://y/", "/api")), "service[1].smoke.url", "their smoke tests differ in url"),
            (entry("api", "strategy='force-new-deployment'\n"), "service[1].strategy", "the same strategy"),
        ] {
            let e = parse(&format!("{}{second}", entry("web", &smoke("http://x/", "/")))).unwrap_err();
            assert_eq!(e.key, key);
            assert!(e.message.starts_with("service[0] (web) and service[1] (api) both deploy to c/todo"), "{e}");
            assert!(e.message.contains(why), "{e}");
        }
        let e = parse(&format!("{}{}", entry("web", "keep_revisions=5\n"), entry("api", "keep_revisions=3\n")))
            .unwrap_err();
        assert_eq!(e.key, "service[1].keep_revisions");
        // Entries for different ECS services are separate, as before.
        let c = parse(&format!(
            "{}{}",
            entry("web", ""),
            entry("api", &smoke("http://x/", "/")).replace("service='todo'", "service='other'")
        ))
        .unwrap();
        assert!(c.by_ecs_service("c", "todo").unwrap().smoke.is_none());
        assert!(c.by_ecs_service("c", "other").unwrap().smoke.is_some());
    }
}
