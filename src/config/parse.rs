//! `pushdeploy.toml`'s parts: `[defaults]`, and each `[[service]]` (the whole file is read by
//! [`super::compat`]'s `Config::read_as`).

use std::collections::BTreeSet;

use toml::Table;

use crate::domain::error::ConfigError;
use crate::domain::glob::TagPattern;
use crate::domain::image::validate_repository;
use crate::domain::lifecycle::Stage;

use super::fields::{is_ecs_name, Fields};
use super::parse_analysis::parse_analysis;
use super::parse_hook::{hook_fits, parse_hook};
use super::parse_smoke::parse_smoke;
use super::{Base, HookConfig, Mode, PrincipalPattern, ServiceConfig, SmokeConfig, Strategy};

/// `[defaults]`: what a service that does not say takes.
pub(super) struct Defaults {
    cluster: Option<String>,
    strategy: Strategy,
    base: Base,
    registrants: Option<Vec<PrincipalPattern>>,
    hold: bool,
    mode: Mode,
}

impl Defaults {
    /// Reads `[defaults]` from the root table, when there is one.
    pub(super) fn read(root: &mut Fields<'_>, source: &str) -> Result<Self, ConfigError> {
        let mut out = Self {
            cluster: None,
            strategy: Strategy::PinDigest,
            base: Base::Service,
            registrants: None,
            hold: false,
            mode: Mode::Enforce,
        };
        if let Some(defaults) = root.table("defaults")? {
            let mut d = Fields::new(defaults, "defaults", source);
            out.cluster = d.opt_cluster("cluster")?;
            if let Some(s) = d.opt_str("strategy")? {
                out.strategy = parse_strategy(&s).map_err(|m| d.err("strategy", m))?;
            }
            if let Some(b) = d.opt_str("base")? {
                out.base = parse_base(&b).map_err(|m| d.err("base", m))?;
            }
            out.registrants = registrants(&mut d)?;
            out.hold = d.opt_bool("hold_base_changes")?.unwrap_or(false);
            if let Some(m) = d.opt_str("mode")? {
                out.mode = parse_mode(&m).map_err(|m| d.err("mode", m))?;
            }
            d.finish()?;
        }
        Ok(out)
    }
}

/// One `[[service]]` at `path`; `names` are the names taken by the entries before it.
pub(super) fn parse_service(
    t: Table,
    path: &str,
    source: &str,
    defaults: &Defaults,
    names: &mut BTreeSet<String>,
) -> Result<ServiceConfig, ConfigError> {
    let mut f = Fields::new(t, path, source);
    let name = f.req_name("name")?;
    if !names.insert(name.clone()) {
        return Err(f.err("name", format!("service name {name:?} is used twice")));
    }
    let (cluster, service) = ecs_service(&mut f, defaults)?;
    let repository = f.req_str("repository")?;
    validate_repository(&repository).map_err(|e| f.err("repository", e.0))?;
    let tags = tags(&mut f)?;
    let containers = containers(&mut f)?;
    let copy = CopyRules::read(&mut f, defaults)?;
    let keep_revisions = f.opt_int("keep_revisions", 1, 1000)?.map(|n| n as u32);
    let (smoke, hook) = smoke_and_hook(&mut f, path, source)?;
    let analysis = match f.table("analysis")? {
        Some(t) => Some(parse_analysis(t, &format!("{path}.analysis"), source)?),
        None => None,
    };
    let mode = match f.opt_str("mode")? {
        Some(m) => parse_mode(&m).map_err(|m| f.err("mode", m))?,
        None => defaults.mode,
    };
    f.finish()?;
    Ok(ServiceConfig {
        name,
        cluster,
        service,
        repository,
        tags,
        containers,
        strategy: copy.strategy,
        base: copy.base,
        trusted_registrants: copy.trusted_registrants,
        hold_base_changes: copy.hold_base_changes,
        smoke,
        keep_revisions,
        hook,
        mode,
        analysis,
    })
}

/// `service` (a name or an ARN in either of ECS's forms; a long ARN names the cluster too) and
/// `cluster` (here or in `[defaults]`): the cluster and the service's name.
pub(super) fn ecs_service(f: &mut Fields<'_>, defaults: &Defaults) -> Result<(String, String), ConfigError> {
    let (arn_cluster, service) = f.req_service("service")?;
    let own_cluster = f.opt_cluster("cluster")?;
    let cluster = match (arn_cluster, own_cluster.or_else(|| defaults.cluster.clone())) {
        (Some(a), Some(c)) if a != c => {
            return Err(
                f.err("service", format!("the service ARN names cluster {a:?}, but the service's cluster is {c:?}"))
            )
        }
        (Some(c), _) | (None, Some(c)) => c,
        (None, None) => return Err(f.err("cluster", "missing: set it here or in [defaults]".into())),
    };
    Ok((cluster, service))
}

/// `tags`: at least one pattern, each named by its index when it does not parse.
pub(super) fn tags(f: &mut Fields<'_>) -> Result<Vec<TagPattern>, ConfigError> {
    let tag_strings = f.req_str_array("tags")?;
    if tag_strings.is_empty() {
        return Err(f.err("tags", "empty: list at least one tag pattern, e.g. [\"latest\"]".into()));
    }
    let mut tags = Vec::with_capacity(tag_strings.len());
    for (j, t) in tag_strings.iter().enumerate() {
        tags.push(TagPattern::parse(t).map_err(|m| f.err(&format!("tags[{j}]"), m))?);
    }
    Ok(tags)
}

/// `containers`, when set: not empty, each an ECS container name.
fn containers(f: &mut Fields<'_>) -> Result<Option<Vec<String>>, ConfigError> {
    let containers = f.opt_str_array("containers")?;
    if let Some(c) = &containers {
        if c.is_empty() {
            return Err(f.err("containers", "empty: omit it to update every container from the repository".into()));
        }
        for (j, name) in c.iter().enumerate() {
            if !is_ecs_name(name) {
                return Err(f.err(&format!("containers[{j}]"), format!("{name:?} is not a container name")));
            }
        }
    }
    Ok(containers)
}

/// What a rollout copies and how: `strategy`, `base`, and with `base = "family"` its trusted
/// registrants and whether base changes are held.
struct CopyRules {
    strategy: Strategy,
    base: Base,
    trusted_registrants: Vec<PrincipalPattern>,
    hold_base_changes: bool,
}

impl CopyRules {
    /// Reads a service's own settings, falling back on `[defaults]`.
    fn read(f: &mut Fields<'_>, defaults: &Defaults) -> Result<Self, ConfigError> {
        let strategy = match f.opt_str("strategy")? {
            Some(s) => parse_strategy(&s).map_err(|m| f.err("strategy", m))?,
            None => defaults.strategy,
        };
        let base = match f.opt_str("base")? {
            Some(b) => parse_base(&b).map_err(|m| f.err("base", m))?,
            None => defaults.base,
        };
        if base == Base::Family && strategy == Strategy::ForceNewDeployment {
            return Err(f.err(
                "base",
                "\"family\" copies a revision with the image pinned; strategy \"force-new-deployment\" copies nothing: use pin-digest".into(),
            ));
        }
        let own_registrants = registrants(f)?;
        let own_hold = f.opt_bool("hold_base_changes")?;
        // Set on a service that copies what it runs, they would silently do nothing.
        for (key, set) in
            [("trusted_registrants", own_registrants.is_some()), ("hold_base_changes", own_hold.is_some())]
        {
            if set && base != Base::Family {
                return Err(f.err(
                    key,
                    "only base = \"family\" reads it (this service copies the revision it runs): set base = \"family\" or remove it".into(),
                ));
            }
        }
        let trusted_registrants = own_registrants.or_else(|| defaults.registrants.clone()).unwrap_or_default();
        if base == Base::Family && trusted_registrants.is_empty() {
            // Without it, whoever may call ecs:RegisterTaskDefinition would choose production's
            // command, environment, sidecars and task role with the next push.
            return Err(f.err(
                "trusted_registrants",
                "missing: base = \"family\" copies the family's newest revision, so name the principals whose revisions may reach production (here or in [defaults]), e.g. [\"arn:aws:iam::123456789012:role/terraform\"]: the role your Terraform runs as (the book, The deploy function, \"Trusted registrants\")".into(),
            ));
        }
        let hold_base_changes = own_hold.unwrap_or(defaults.hold);
        Ok(Self { strategy, base, trusted_registrants, hold_base_changes })
    }
}

/// `[service.smoke]` and `[service.hook]`, and what a hook needs of the smoke test.
fn smoke_and_hook(
    f: &mut Fields<'_>,
    path: &str,
    source: &str,
) -> Result<(Option<SmokeConfig>, Option<HookConfig>), ConfigError> {
    let smoke = match f.table("smoke")? {
        Some(t) => Some(parse_smoke(t, &format!("{path}.smoke"), source)?),
        None => None,
    };
    let hook = match f.table("hook")? {
        Some(t) => Some(parse_hook(t, &format!("{path}.hook"), source)?),
        None => None,
    };
    match (&hook, &smoke) {
        (Some(_), None) => {
            return Err(f.err(
                "smoke",
                "missing: [service.hook] makes pushdeploy ECS's lifecycle hook, and the hook judges with [service.smoke] (url and checks)".into(),
            ))
        }
        (Some(h), Some(s)) if h.stages.contains(&Stage::PostTestTrafficShift) && s.test_url.is_none() => {
            return Err(f.err(
                "smoke.test_url",
                "missing: [service.hook] checks at POST_TEST_TRAFFIC_SHIFT, through the load balancer's test listener; set test_url to it".into(),
            ))
        }
        (None, Some(s)) if s.test_url.is_some() || !s.test_headers.is_empty() => {
            return Err(f.err(
                "smoke.test_url",
                "only [service.hook] checks through the test listener: add [service.hook] or remove test_url and test_headers".into(),
            ))
        }
        (Some(h), Some(s)) => hook_fits(h, s).map_err(|m| f.err("hook.timeout_minutes", m))?,
        _ => {}
    }
    Ok((smoke, hook))
}

fn parse_base(s: &str) -> Result<Base, String> {
    match s {
        "service" => Ok(Base::Service),
        "family" => Ok(Base::Family),
        other => Err(format!("unknown base {other:?}: use \"service\" (copy what runs) or \"family\" (copy the family's newest revision a trusted principal registered)")),
    }
}

/// `trusted_registrants`, when set: principal ARN patterns, each validated and named by its index.
fn registrants(f: &mut Fields<'_>) -> Result<Option<Vec<PrincipalPattern>>, ConfigError> {
    const KEY: &str = "trusted_registrants";
    let Some(list) = f.opt_str_array(KEY)? else { return Ok(None) };
    if list.is_empty() {
        return Err(f.err(
            KEY,
            "empty: list the principals whose revisions base = \"family\" may copy, e.g. your Terraform role's ARN"
                .into(),
        ));
    }
    let mut patterns = Vec::with_capacity(list.len());
    for (j, s) in list.iter().enumerate() {
        patterns.push(PrincipalPattern::parse(s).map_err(|m| f.err(&format!("{KEY}[{j}]"), m))?);
    }
    Ok(Some(patterns))
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    match s {
        "enforce" => Ok(Mode::Enforce),
        "observe" => Ok(Mode::Observe),
        other => Err(format!(
            "unknown mode {other:?}: use \"enforce\" (act on the verdict) or \"observe\" (only record and tell it)"
        )),
    }
}

fn parse_strategy(s: &str) -> Result<Strategy, String> {
    match s {
        "pin-digest" => Ok(Strategy::PinDigest),
        "force-new-deployment" => Ok(Strategy::ForceNewDeployment),
        other => Err(format!("unknown strategy {other:?}: use \"pin-digest\" or \"force-new-deployment\"")),
    }
}

pub(super) fn location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(r) => {
            let line = text[..r.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{key_of, parse, MIN};

    #[test]
    fn errors_name_the_key() {
        assert_eq!(key_of(&MIN.replace("tags=['latest']", "tags=[]")), "service[0].tags");
        assert_eq!(key_of(&MIN.replace("tags=['latest']", "tags=['v[1]']")), "service[0].tags[0]");
        assert_eq!(key_of(&format!("{MIN}colour='red'\n")), "service[0].colour");
        assert_eq!(key_of(&MIN.replace("repository='r'\n", "")), "service[0].repository");
        assert_eq!(key_of(&MIN.replace("cluster='c'\n", "")), "service[0].cluster");
        assert_eq!(key_of(&format!("{MIN}strategy='yolo'\n")), "service[0].strategy");
        assert_eq!(key_of(&format!("{MIN}base='repo'\n")), "service[0].base");
        assert_eq!(key_of(&format!("{MIN}base='family'\nstrategy='force-new-deployment'\n")), "service[0].base");
        assert_eq!(key_of(&format!("[defaults]\nbase='x'\n{MIN}")), "defaults.base");
        assert_eq!(key_of(&format!("{MIN}keep_revisions=0\n")), "service[0].keep_revisions");
        // Found by the fuzzer: an empty key is still named.
        assert_eq!(key_of("\"\" = \"\"\n"), "\"\"");
        assert_eq!(key_of(&format!("{MIN}{}", MIN.replace("service='s'", "service='t'"))), "service[1].name");
        assert_eq!(key_of(&MIN.replace("tags=['latest']", "tags='latest'")), "service[0].tags");
        assert_eq!(key_of(&format!("[defaults]\nregion='x'\n{MIN}")), "defaults.region");
        assert_eq!(key_of(&MIN.replace("name='a'", "name='../a'")), "service[0].name");
        assert_eq!(key_of("x = 1\nx = 2\n"), "(syntax)");
        assert_eq!(key_of(""), "service");
        assert_eq!(key_of(&format!("{MIN}[service.smoke]\nurl='http://x/'\n")), "service[0].smoke.check");
        assert_eq!(
            key_of(&format!(
                "{MIN}[service.smoke]\nurl='http://x/'\n[[service.smoke.check]]\npath='/'\nstatus='200'\n"
            )),
            "service[0].smoke.check[0].status"
        );
    }

    #[test]
    fn a_service_may_be_named_by_either_form_of_its_arn() {
        let svc = |service: &str, cluster: &str| {
            format!("{cluster}[[service]]\nname='b'\nservice='{service}'\nrepository='r'\ntags=['latest']\n")
        };
        const A: &str = "arn:aws:ecs:ap-southeast-2:123456789012";
        let long = parse(&svc(&format!("{A}:service/todo-cluster/todo-backend"), "")).unwrap();
        assert_eq!(
            (long.services[0].cluster.as_str(), long.services[0].service.as_str()),
            ("todo-cluster", "todo-backend")
        );
        // The short form names no cluster: it comes from the service's or [defaults]'s `cluster`.
        let short = parse(&svc(&format!("{A}:service/todo-backend"), "[defaults]\ncluster='todo-cluster'\n")).unwrap();
        assert_eq!(
            (short.services[0].cluster.as_str(), short.services[0].service.as_str()),
            ("todo-cluster", "todo-backend")
        );
        assert_eq!(short.clusters_of("todo-backend"), ["todo-cluster"]);
        assert!(short.clusters_of("todo-frontend").is_empty());
        let by_arn = parse(&svc(
            &format!("{A}:service/todo-backend"),
            &format!("[defaults]\ncluster='{A}:cluster/todo-cluster'\n"),
        ))
        .unwrap();
        assert_eq!(by_arn.services[0].cluster, "todo-cluster");
        let e = parse(&svc(&format!("{A}:service/todo-backend"), "")).unwrap_err();
        assert_eq!((e.key.as_str(), e.message.contains("missing")), ("service[0].cluster", true), "{e}");
        let e =
            parse(&svc(&format!("{A}:service/prod/todo-backend"), "[defaults]\ncluster='todo-cluster'\n")).unwrap_err();
        assert!(e.message.contains("names cluster \"prod\""), "{e}");
        let e = parse(&svc(&format!("{A}:service-deployment/c/s/1"), "")).unwrap_err();
        assert!(e.message.contains("not an ECS service ARN"), "{e}");
        let e = parse(&svc("todo-backend", &format!("[defaults]\ncluster='{A}:service/x'\n"))).unwrap_err();
        assert!(e.message.contains("not an ECS cluster ARN"), "{e}");
    }

    #[test]
    fn a_family_base_names_its_trusted_registrants() {
        const TF: &str = "arn:aws:iam::123456789012:role/terraform";
        let family = format!("{MIN}base='family'\n");
        // Without it, anyone who may register a revision would choose production's settings.
        let e = parse(&family).unwrap_err();
        assert_eq!(e.key, "service[0].trusted_registrants");
        assert!(e.message.starts_with("missing: base = \"family\" copies the family's newest revision"), "{e}");
        let c = parse(&format!("{family}trusted_registrants=['{TF}']\nhold_base_changes=true\n")).unwrap();
        let s = &c.services[0];
        assert_eq!(s.trusted_registrants.iter().map(|p| p.as_str()).collect::<Vec<_>>(), [TF]);
        assert!(s.hold_base_changes);
        assert!(s.trusted_registrants[0].matches("arn:aws:sts::123456789012:assumed-role/terraform/apply"));

        // [defaults] give every service its list and hold; a service's own list replaces it.
        let d = format!("[defaults]\nbase='family'\ntrusted_registrants=['{TF}']\nhold_base_changes=true\n");
        let c = parse(&format!("{d}{MIN}")).unwrap();
        assert_eq!(c.services[0].trusted_registrants[0].as_str(), TF);
        assert!(c.services[0].hold_base_changes);
        let other = "arn:aws:sts::123456789012:assumed-role/infra/*";
        let c = parse(&format!("{d}{MIN}trusted_registrants=['{other}']\nhold_base_changes=false\n")).unwrap();
        assert_eq!(c.services[0].trusted_registrants.iter().map(|p| p.as_str()).collect::<Vec<_>>(), [other]);
        assert!(!c.services[0].hold_base_changes);
        // [defaults] may name registrants for the family services among others; a service that
        // copies what it runs may not set them (they would do nothing).
        let c = parse(&format!("[defaults]\ntrusted_registrants=['{TF}']\n{MIN}")).unwrap();
        assert_eq!(c.services[0].base, Base::Service);
        assert_eq!(key_of(&format!("{MIN}trusted_registrants=['{TF}']\n")), "service[0].trusted_registrants");
        assert_eq!(key_of(&format!("{MIN}hold_base_changes=true\n")), "service[0].hold_base_changes");

        assert_eq!(key_of(&format!("{family}trusted_registrants=[]\n")), "service[0].trusted_registrants");
        assert_eq!(key_of(&format!("{family}trusted_registrants='{TF}'\n")), "service[0].trusted_registrants");
        let e = parse(&format!("{family}trusted_registrants=['{TF}', 'arn:aws:iam::*:role/terraform']\n")).unwrap_err();
        assert_eq!(e.key, "service[0].trusted_registrants[1]");
        assert!(e.message.contains("12 digits"), "{e}");
        assert_eq!(key_of(&format!("[defaults]\ntrusted_registrants=['*']\n{MIN}")), "defaults.trusted_registrants[0]");
        assert_eq!(
            key_of(&format!("{family}trusted_registrants=['{TF}']\nhold_base_changes='yes'\n")),
            "service[0].hold_base_changes"
        );
    }

    #[test]
    fn mode_is_enforce_unless_observe_is_asked_here_or_in_defaults() {
        use crate::config::Mode;
        assert_eq!(parse(MIN).unwrap().services[0].mode, Mode::Enforce);
        assert_eq!(parse(&format!("{MIN}mode='observe'\n")).unwrap().services[0].mode, Mode::Observe);
        let observing = format!("[defaults]\nmode='observe'\n{MIN}");
        assert_eq!(parse(&observing).unwrap().services[0].mode, Mode::Observe);
        assert_eq!(parse(&format!("{observing}mode='enforce'\n")).unwrap().services[0].mode, Mode::Enforce);
        assert_eq!(key_of(&format!("{MIN}mode='watch'\n")), "service[0].mode");
        assert_eq!(key_of("[defaults]\nmode='dry-run'\n"), "defaults.mode");
        let second = MIN.replace("name='a'", "name='b'");
        assert_eq!(key_of(&format!("{MIN}mode='observe'\n{second}")), "service[1].mode");
    }

    #[test]
    fn defaults_apply_and_can_be_overridden() {
        let c = parse(&format!(
            "[defaults]\ncluster='d'\nstrategy='force-new-deployment'\n{}",
            MIN.replace("cluster='c'\n", "")
        ))
        .unwrap();
        assert_eq!(c.services[0].cluster, "d");
        assert_eq!(c.services[0].strategy, Strategy::ForceNewDeployment);
    }
}
