//! A config written for another release of pushdeploy: what this release does with what it cannot
//! read. A problem confined to one `[[service]]` entry (a newer release's key, a bad value) makes
//! that entry's ECS service unreadable, with the exact error and this release's version; every
//! other service is read as usual. A top-level `requires = "0.N"` above this release makes every
//! service unreadable. Nothing unknown is ever given a default: an unreadable service is neither
//! deployed nor judged. Problems of the whole file (`[defaults]`, TOML syntax, an entry that does
//! not say which service it is) still refuse the file.

use std::collections::BTreeSet;

use toml::Table;

use crate::domain::error::{ConfigError, Unreadable};
use crate::domain::glob::TagPattern;

use super::fields::{cap, Fields};
use super::merge::judge_by_ecs_service;
use super::model::Judged;
use super::parse::{ecs_service, location, parse_service, tags, Defaults};
use super::parse_analysis::analysis_fits;
use super::parse_hook::hook_fits;
use super::unreadable::UnreadableService;
use super::{Config, ServiceConfig};

/// This release of pushdeploy, as `requires` is compared with it.
pub const RUNNING_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Which service an entry is, read apart from the rest of it: without it nothing could tell
/// which pushes and deployments the entry's problem concerns, so its error refuses the file.
pub(super) struct Identity {
    name: String,
    cluster: String,
    service: String,
    repository: String,
    tags: Option<Vec<TagPattern>>,
}

/// Reads an entry's identity from a copy of its table: `name`, `service`, `cluster` (here or in
/// `[defaults]`), `repository`, and `tags` when they parse.
pub(super) fn identify(t: &Table, path: &str, source: &str, defaults: &Defaults) -> Result<Identity, ConfigError> {
    let mut f = Fields::new(t.clone(), path, source);
    let whole = |e: ConfigError| ConfigError {
        message: format!(
            "{} (without it pushdeploy cannot tell which service the entry is, so the whole file is refused)",
            e.message
        ),
        ..e
    };
    let name = f.req_name("name").map_err(whole)?;
    let (cluster, service) = ecs_service(&mut f, defaults).map_err(whole)?;
    let repository = f.req_str("repository").map_err(whole)?;
    Ok(Identity { name, cluster, service, repository, tags: tags(&mut f).ok() })
}

/// The top-level `requires`: the oldest release of pushdeploy the file needs, as `MAJOR.MINOR`
/// or `MAJOR.MINOR.PATCH`.
pub(super) fn read_requires(root: &mut Fields<'_>) -> Result<Option<String>, ConfigError> {
    let Some(v) = root.opt_str("requires")? else { return Ok(None) };
    if numbers(&v).is_none_or(|n| n.len() < 2) {
        return Err(root.err(
            "requires",
            format!("{v:?} is not a release: write the oldest pushdeploy that reads this file, e.g. \"0.2\""),
        ));
    }
    Ok(Some(v))
}

/// A version's numbers (`0.2.1-rc.1` → [0, 2, 1]); `None` when it is not one.
fn numbers(v: &str) -> Option<Vec<u64>> {
    let core = v.split(['-', '+']).next()?;
    let parts: Option<Vec<u64>> = core.split('.').map(|p| p.parse().ok()).collect();
    parts.filter(|p| (1..=3).contains(&p.len()))
}

/// Pure: true when release `running` is `required` or later, compared number by number (a
/// missing number is 0; a pre-release counts as its release).
pub fn at_least(running: &str, required: &str) -> bool {
    let (Some(mut have), Some(mut need)) = (numbers(running), numbers(required)) else { return false };
    have.resize(3, 0);
    need.resize(3, 0);
    have >= need
}

/// What every entry came to: its identity, and its rules or why it cannot be read.
pub(super) type Entry = (Identity, Result<ServiceConfig, ConfigError>);

/// Pure: the config from its entries. An ECS service with an unreadable entry is unreadable as a
/// whole (it has one revision and one verdict, judged by every entry); so is one whose entries
/// cannot be merged, or whose hook cannot fit its smoke test.
pub(super) fn assemble(source: &str, entries: Vec<Entry>, version: &str) -> Config {
    let mut bad: Vec<((String, String), ConfigError)> = Vec::new();
    let mark = |bad: &mut Vec<((String, String), ConfigError)>, id: &Identity, e: &ConfigError| {
        if !bad.iter().any(|(t, _)| *t == (id.cluster.clone(), id.service.clone())) {
            bad.push(((id.cluster.clone(), id.service.clone()), e.clone()));
        }
    };
    for (id, r) in &entries {
        if let Err(e) = r {
            mark(&mut bad, id, e);
        }
    }
    let readable = |bad: &[((String, String), ConfigError)]| -> (Vec<ServiceConfig>, Vec<usize>) {
        entries
            .iter()
            .enumerate()
            .filter(|(_, (id, _))| !bad.iter().any(|(t, _)| t.0 == id.cluster && t.1 == id.service))
            .filter_map(|(i, (_, r))| r.as_ref().ok().map(|s| (s.clone(), i)))
            .unzip()
    };
    let (services, entry_of) = readable(&bad);
    for (group, merged) in judge_by_ecs_service(&services, &entry_of) {
        let id = &entries[entry_of[group[0]]].0;
        let problem = merged
            .map_err(|(i, key, message)| ConfigError {
                file: source.into(),
                key: format!("service[{i}].{key}"),
                message,
            })
            .and_then(|rules| merged_problem(source, &services, &entry_of, &group, &rules));
        if let Err(e) = problem {
            mark(&mut bad, id, &e);
        }
    }
    let (services, entry_of) = readable(&bad);
    let judged = judge_by_ecs_service(&services, &entry_of)
        .into_iter()
        .map(|(entries, rules)| Judged { rules: rules.expect("merged once already"), entries })
        .collect();
    let unreadable = unreadable(entries, &bad, version);
    Config { source: source.to_string(), services, judged, entry_of, unreadable }
}

/// Whether one ECS service's merged rules fit together: its hook and smoke test ([`hook_fits`]),
/// its hook and analysis ([`analysis_fits`]). Checked merged, since each may be set on another
/// entry; an analysis error names the entry that set `[service.analysis]`.
fn merged_problem(
    source: &str,
    services: &[ServiceConfig],
    entry_of: &[usize],
    group: &[usize],
    rules: &ServiceConfig,
) -> Result<(), ConfigError> {
    if let (Some(h), Some(s)) = (&rules.hook, &rules.smoke) {
        hook_fits(h, s).map_err(|message| ConfigError {
            file: source.into(),
            key: format!("service[{}].hook.timeout_minutes", entry_of[group[0]]),
            message,
        })?;
    }
    let Some(a) = &rules.analysis else { return Ok(()) };
    let from = group.iter().copied().find(|&g| services[g].analysis.is_some()).unwrap_or(group[0]);
    analysis_fits(rules.hook.as_ref(), a).map_err(|(key, message)| ConfigError {
        file: source.into(),
        key: format!("service[{}].analysis.{key}", entry_of[from]),
        message,
    })
}

/// Every entry of an unreadable ECS service, with its own error or, when it has none, the error
/// that made its service unreadable.
fn unreadable(entries: Vec<Entry>, bad: &[((String, String), ConfigError)], version: &str) -> Vec<UnreadableService> {
    entries
        .into_iter()
        .enumerate()
        .filter_map(|(entry, (id, r))| {
            let (_, why) = bad.iter().find(|(t, _)| t.0 == id.cluster && t.1 == id.service)?;
            let error = r.err().unwrap_or_else(|| why.clone());
            let problem = Unreadable {
                name: id.name,
                target: format!("{}/{}", id.cluster, id.service),
                version: version.to_string(),
                error,
            };
            Some(UnreadableService {
                entry,
                cluster: id.cluster,
                service: id.service,
                repository: id.repository,
                tags: id.tags,
                problem,
            })
        })
        .collect()
}

impl Config {
    /// Parses and validates config text as release `version` of pushdeploy reads it; `source`
    /// names it in errors. A problem of one `[[service]]` entry leaves that service unreadable
    /// ([`super::compat`]); a problem of the whole file is `Err`.
    pub fn read_as(text: &str, source: &str, version: &str) -> Result<Self, ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            file: source.to_string(),
            key: key.to_string(),
            message: cap(message),
        };
        let root: Table = text
            .parse()
            .map_err(|e: toml::de::Error| err("(syntax)", e.message().to_string() + &location(text, e.span())))?;
        let mut root = Fields::new(root, "", source);
        let requires = read_requires(&mut root)?;
        let defaults = Defaults::read(&mut root, source)?;
        let raw_services = root.array_of_tables("service")?.unwrap_or_default();
        root.finish()?;
        if raw_services.is_empty() {
            return Err(err("service", "no [[service]] is configured: nothing would ever deploy".into()));
        }
        let too_new = requires.filter(|r| !at_least(version, r)).map(|r| {
            err("requires", format!("this file needs pushdeploy {r} or later, and this is {version}: upgrade the functions (the book, Upgrading)"))
        });
        let mut entries = Vec::with_capacity(raw_services.len());
        let mut names = BTreeSet::new();
        for (i, t) in raw_services.into_iter().enumerate() {
            let path = format!("service[{i}]");
            let id = identify(&t, &path, source, &defaults)?;
            let parsed = match &too_new {
                Some(e) => Err(e.clone()),
                None => parse_service(t, &path, source, &defaults, &mut names),
            };
            entries.push((id, parsed));
        }
        Ok(assemble(source, entries, version))
    }

    /// Parses and validates config text as the functions read it: problems of the whole file are
    /// `Err`; a service this release cannot read is kept in [`Config::unreadable`].
    pub fn read(text: &str, source: &str) -> Result<Self, ConfigError> {
        Self::read_as(text, source, RUNNING_VERSION)
    }

    /// Parses and validates config text that must be wholly readable (`validate`, tests): the
    /// first unreadable service's error is `Err` (every one: [`Config::problems`]).
    pub fn parse(text: &str, source: &str) -> Result<Self, ConfigError> {
        let config = Self::read(text, source)?;
        match config.unreadable.first() {
            Some(u) => Err(u.problem.error.clone()),
            None => Ok(config),
        }
    }

    /// The `[[service]]` entries this release cannot read, in file order.
    pub fn unreadable(&self) -> &[UnreadableService] {
        &self.unreadable
    }

    /// Each distinct reason an entry is unreadable, in file order.
    pub fn problems(&self) -> Vec<&ConfigError> {
        let mut seen = BTreeSet::new();
        self.unreadable.iter().map(|u| &u.problem.error).filter(|e| seen.insert(e.to_string())).collect()
    }

    /// The unreadable entries a push of `repository:tag` may concern.
    pub fn unreadable_for_push(&self, repository: &str, tag: &str) -> Vec<&UnreadableService> {
        self.unreadable.iter().filter(|u| u.watches(repository, tag)).collect()
    }

    /// The unreadable entry for an ECS cluster/service, if it is one.
    pub fn unreadable_ecs_service(&self, cluster: &str, service: &str) -> Option<&UnreadableService> {
        self.unreadable.iter().find(|u| u.cluster == cluster && u.service == service)
    }

    /// The unreadable entry a manual action names, if it is one.
    pub fn unreadable_named(&self, name: &str) -> Option<&UnreadableService> {
        self.unreadable.iter().find(|u| u.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::SMOKE;

    fn entry(name: &str, extra: &str) -> String {
        format!("[[service]]\nname='{name}'\nservice='{name}'\nrepository='{name}'\ntags=['latest']\n{extra}")
    }

    fn read(text: &str) -> Result<Config, ConfigError> {
        Config::read_as(&format!("[defaults]\ncluster='c'\n{text}"), "s3://b/pushdeploy.toml", "0.1.0")
    }

    fn names(c: &Config) -> (Vec<&str>, Vec<&str>) {
        (c.services.iter().map(|s| s.name.as_str()).collect(), c.unreadable().iter().map(|u| u.name()).collect())
    }

    #[test]
    fn a_problem_of_one_entry_leaves_the_others_readable() {
        for (extra, key, what) in [
            ("approval='manual'\n", "service[1].approval", "unknown key"),
            ("strategy='yolo'\n", "service[1].strategy", "unknown strategy \"yolo\""),
            (
                "[service.smoke]\nurl='https://x/'\nhttp_version='h3'\n[[service.smoke.check]]\npath='/'\n",
                "service[1].smoke.http_version",
                "unknown key",
            ),
            ("[service.canary]\npercent=10\n", "service[1].canary", "unknown key"),
        ] {
            let c = read(&format!("{}{}{}", entry("web", SMOKE), entry("api", extra), entry("worker", ""))).unwrap();
            assert_eq!(names(&c), (vec!["web", "worker"], vec!["api"]), "{extra}");
            let u = &c.unreadable()[0];
            assert_eq!((u.entry, u.target(), u.repository.as_str()), (1, "c/api".to_string(), "api"));
            assert_eq!((u.problem.error.file.as_str(), u.problem.error.key.as_str()), ("s3://b/pushdeploy.toml", key));
            assert!(u.problem.error.message.starts_with(what), "{extra}: {}", u.problem.error.message);
            assert_eq!(u.problem.version, "0.1.0");
            assert!(u.problem.to_string().starts_with(&format!("pushdeploy 0.1.0 cannot read the config of service api (invalid config s3://b/pushdeploy.toml: {key}: {what}")), "{}", u.problem);
            // The readable services are whole: web is judged by its own smoke test.
            assert!(c.by_ecs_service("c", "web").unwrap().smoke.is_some());
            assert!(c.by_ecs_service("c", "api").is_none());
            assert_eq!(c.unreadable_ecs_service("c", "api").unwrap().name(), "api");
            assert_eq!(c.clusters_of("api"), ["c"], "an event about its short ARN still finds it");
            assert_eq!(c.unreadable_named("api").unwrap().entry, 1);
            // validate's reading: the file is not valid.
            let strict =
                Config::parse(&format!("[defaults]\ncluster='c'\n{}{}", entry("web", ""), entry("api", extra)), "t");
            assert_eq!(strict.unwrap_err().key, key);
        }
    }

    #[test]
    fn problems_of_the_whole_file_still_refuse_it() {
        let two = format!("{}{}", entry("web", ""), entry("api", ""));
        assert!(read(&two).unwrap().unreadable().is_empty());
        let e =
            Config::read_as(&format!("[defaults]\ncluster='c'\napproval='manual'\n{two}"), "t", "0.1.0").unwrap_err();
        assert_eq!(e.key, "defaults.approval");
        let inside = read(&format!("{two}colour = 'red'\n")).unwrap();
        assert_eq!(
            inside.unreadable()[0].problem.error.key,
            "service[1].colour",
            "inside the entry: that service only"
        );
        assert_eq!(Config::read_as(&format!("colour='red'\n{two}"), "t", "0.1.0").unwrap_err().key, "colour");
        assert_eq!(read(&format!("{two}[[service]\n")).unwrap_err().key, "(syntax)");
        // An entry that does not say which service it is cannot be set aside: nothing could tell
        // which pushes and deployments its problem concerns.
        let e =
            read(&format!("{}{}", entry("web", ""), entry("api", "").replace("repository='api'\n", ""))).unwrap_err();
        assert_eq!(e.key, "service[1].repository");
        assert!(e.message.starts_with("missing (required) (without it pushdeploy cannot tell which service"), "{e}");
    }

    #[test]
    fn an_ecs_service_is_readable_only_when_every_entry_for_it_is() {
        let sidecar =
            "[[service]]\nname='router'\nservice='api'\nrepository='router'\ntags=['stable']\ncontainers=['router']\n";
        let c = read(&format!("{}{}{sidecar}", entry("web", ""), entry("api", "approval='manual'\n"))).unwrap();
        assert_eq!(names(&c), (vec!["web"], vec!["api", "router"]));
        let router = c.unreadable_named("router").unwrap();
        assert_eq!(router.problem.error.key, "service[1].approval", "its service's reason");
        assert_eq!(c.unreadable_for_push("router", "stable").len(), 1, "its pushes are refused too");
        assert_eq!(c.problems().len(), 1, "one problem, said once");
        // Entries that cannot be merged leave their ECS service unreadable, named by file index.
        let c = read(&format!(
            "{}{}{}{}",
            entry("broken", "colour='red'\n"),
            entry("web", "").replace("service='web'", "service='todo'"),
            entry("api", "strategy='force-new-deployment'\n").replace("service='api'", "service='todo'"),
            entry("worker", "")
        ))
        .unwrap();
        assert_eq!(names(&c), (vec!["worker"], vec!["broken", "web", "api"]));
        let e = &c.unreadable_named("web").unwrap().problem.error;
        assert_eq!(e.key, "service[2].strategy");
        assert!(e.message.starts_with("service[1] (web) and service[2] (api) both deploy to c/todo"), "{}", e.message);
        assert_eq!(
            c.problems().iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
            ["service[0].colour", "service[2].strategy"]
        );
    }

    #[test]
    fn keys_in_later_errors_name_the_entry_in_the_file() {
        let slow = SMOKE.replace("url='https://alb/api/'", "url='https://alb/api/'\nattempts=100");
        let c = read(&format!("{}{}", entry("api", "approval='manual'\n"), entry("web", &slow))).unwrap();
        assert_eq!(c.check_smoke_budget(1_000).unwrap_err().key, "service[1].smoke");
        assert_eq!(c.check_clusters(&["prod"]).unwrap_err().key, "service[1].cluster");
    }

    #[test]
    fn requires_names_the_oldest_release_that_reads_the_file() {
        let two = format!("requires = '0.2'\n[defaults]\ncluster='c'\n{}{}", entry("web", ""), entry("api", ""));
        let old = Config::read_as(&two, "t", "0.1.0").unwrap();
        assert_eq!(names(&old), (vec![], vec!["web", "api"]));
        let e = &old.unreadable()[0].problem.error;
        assert_eq!(e.key, "requires");
        assert!(e.message.starts_with("this file needs pushdeploy 0.2 or later, and this is 0.1.0"), "{}", e.message);
        assert_eq!(old.problems().len(), 1);
        for running in ["0.2.0", "0.2.5", "0.10.0", "1.0.0"] {
            assert!(Config::read_as(&two, "t", running).unwrap().unreadable().is_empty(), "{running}");
        }
        for bad in ["'latest'", "'1'", "'0.x'", "2", "''"] {
            let e = Config::read_as(&two.replace("'0.2'", bad), "t", "0.1.0").unwrap_err();
            assert_eq!(e.key, "requires", "{bad}");
        }
        assert!(Config::read(&two.replace("'0.2'", &format!("'{RUNNING_VERSION}'")), "t")
            .unwrap()
            .unreadable()
            .is_empty());
    }

    #[test]
    fn releases_compare_number_by_number() {
        for (running, required, ok) in [
            ("0.1.0", "0.1", true),
            ("0.1.0", "0.1.1", false),
            ("0.1.0", "0.2", false),
            ("0.10.0", "0.9", true),
            ("0.2.0-rc.1", "0.2", true),
            ("1.0.0", "0.99.99", true),
            ("0.1.0", "x", false),
        ] {
            assert_eq!(at_least(running, required), ok, "{running} >= {required}");
        }
    }

    #[test]
    fn a_push_concerns_an_unreadable_entry_by_its_tags_or_when_they_are_unreadable_its_repository() {
        let c = read(&format!(
            "{}{}",
            entry("web", "approval='x'\n"),
            entry("api", "").replace("tags=['latest']", "tags=[]")
        ))
        .unwrap();
        assert_eq!(c.unreadable_for_push("web", "latest").len(), 1);
        assert!(c.unreadable_for_push("web", "dev").is_empty());
        assert_eq!(c.unreadable_for_push("api", "dev").len(), 1, "its tags are unreadable: any tag");
        assert!(c.unreadable_for_push("other", "latest").is_empty());
    }
}
