//! `status` reads the live config, where the deploy function reads it (its `PUSHDEPLOY_CONFIG`,
//! from Lambda GetFunctionConfiguration; else the template's default, s3://BUCKET/pushdeploy.toml),
//! and says when the local file `--config` names differs from it: which services and keys, from
//! the parsed configs (comments, order and layout are no difference).

use pushdeploy::config::{Config, ServiceConfig, SmokeConfig};
use pushdeploy::lambda::live_config::Location;

use crate::insight::{Aws, Failed};

/// The config `status` shows, and the lines saying where it came from and how the local file differs.
pub struct Chosen {
    /// The config to show.
    pub config: Config,
    /// Lines for the operator.
    pub notes: Vec<String>,
}

/// The live config (or, when it cannot be read, the local one), compared with `--config`'s file.
pub async fn config_for_status(aws: &Aws, asked: &str, bucket: &str, function: &str) -> Result<Chosen, Failed> {
    if asked.starts_with("s3://") {
        // The operator named the live location: nothing else to compare it with.
        return Ok(Chosen { config: crate::insight::load_config(aws, asked).await?, notes: Vec::new() });
    }
    let (location, from) = match crate::deployed::read_one(function).await {
        Ok(f) => match f.var("PUSHDEPLOY_CONFIG") {
            Some(l) => (l.to_string(), format!("{function}'s PUSHDEPLOY_CONFIG")),
            None => (format!("s3://{bucket}/pushdeploy.toml"), format!("{function} has no PUSHDEPLOY_CONFIG")),
        },
        Err(why) => (format!("s3://{bucket}/pushdeploy.toml"), format!("the template's default; {why}")),
    };
    let live = crate::insight::load_config(aws, &location).await;
    let local = std::fs::metadata(asked).is_ok().then(|| Location::File(asked.to_string()));
    match (live, local) {
        (Ok(live), None) => Ok(Chosen { config: live, notes: vec![format!("live config: {location} ({from})")] }),
        (Ok(live), Some(_)) => {
            let local = crate::insight::load_config(aws, asked).await?;
            let differences = differences(&local, &live);
            let note = if differences.is_empty() {
                format!("live config: {location} ({from}); {asked} matches it")
            } else {
                format!("{asked} differs from the live config {location} ({from}): {}", differences.join("; "))
            };
            Ok(Chosen { config: live, notes: vec![note] })
        }
        (Err(why), Some(_)) => Ok(Chosen {
            config: crate::insight::load_config(aws, asked).await?,
            notes: vec![format!("cannot read the live config {location} ({from}): {}; showing {asked}", why.0)],
        }),
        (Err(why), None) => Err(Failed(format!("cannot read the live config {location} ({from}): {}", why.0))),
    }
}

/// Per service (by name), the keys whose values differ; a service only in one config says which.
pub fn differences(local: &Config, live: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for l in &local.services {
        match live.services.iter().find(|s| s.name == l.name) {
            None => out.push(format!("{}: only in the local file", l.name)),
            Some(v) => {
                let keys = service_keys(l, v);
                if !keys.is_empty() {
                    out.push(format!("{}: {}", l.name, keys.join(", ")));
                }
            }
        }
    }
    for v in live.services.iter().filter(|v| !local.services.iter().any(|l| l.name == v.name)) {
        out.push(format!("{}: only in the live config", v.name));
    }
    out
}

/// The keys of one service whose values differ (`smoke.attempts`, `tags`).
fn service_keys(a: &ServiceConfig, b: &ServiceConfig) -> Vec<String> {
    let fields = |s: &ServiceConfig| -> Vec<(&'static str, String)> {
        vec![
            ("cluster", s.cluster.clone()),
            ("service", s.service.clone()),
            ("repository", s.repository.clone()),
            ("tags", format!("{:?}", s.tags)),
            ("containers", format!("{:?}", s.containers)),
            ("strategy", format!("{:?}", s.strategy)),
            ("base", format!("{:?}", s.base)),
            ("trusted_registrants", format!("{:?}", s.trusted_registrants)),
            ("hold_base_changes", format!("{:?}", s.hold_base_changes)),
            ("keep_revisions", format!("{:?}", s.keep_revisions)),
            ("hook", format!("{:?}", s.hook)),
            ("mode", format!("{:?}", s.mode)),
            ("analysis", format!("{:?}", s.analysis)),
        ]
    };
    let mut keys: Vec<String> =
        fields(a).into_iter().zip(fields(b)).filter(|(x, y)| x.1 != y.1).map(|(x, _)| x.0.to_string()).collect();
    match (&a.smoke, &b.smoke) {
        (Some(x), Some(y)) => keys.extend(smoke_keys(x, y).into_iter().map(|k| format!("smoke.{k}"))),
        (None, None) => {}
        _ => keys.push("smoke".into()),
    }
    if keys.is_empty() && format!("{a:?}") != format!("{b:?}") {
        keys.push("other settings".into());
    }
    keys
}

/// The keys of `[service.smoke]` whose values differ.
fn smoke_keys(a: &SmokeConfig, b: &SmokeConfig) -> Vec<&'static str> {
    let fields = |s: &SmokeConfig| -> Vec<(&'static str, String)> {
        vec![
            ("url", s.url.clone()),
            ("test_url", format!("{:?}", s.test_url)),
            ("test_headers", format!("{:?}", s.test_headers)),
            ("attempts", s.attempts.to_string()),
            ("interval_ms", s.interval_ms.to_string()),
            ("timeout_ms", s.timeout_ms.to_string()),
            ("consecutive", s.consecutive.to_string()),
            ("target_group_arn", format!("{:?}", s.target_group_arn)),
            ("check", format!("{:?}", s.checks)),
            ("max_body_bytes", s.max_body_bytes.to_string()),
            ("read_after_write", format!("{:?}", s.read_after_write)),
            ("connect_to", format!("{:?}", s.connect_to)),
        ]
    };
    let mut keys: Vec<&'static str> =
        fields(a).into_iter().zip(fields(b)).filter(|(x, y)| x.1 != y.1).map(|(x, _)| x.0).collect();
    if keys.is_empty() && a != b {
        keys.push("other settings");
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: &str = "[defaults]\ncluster = 'c'\n\n[[service]]\nname = 'web'\nservice = 'web'\nrepository = 'web'\ntags = ['latest']\n[service.smoke]\nurl = 'http://127.0.0.1/'\nattempts = 5\n[[service.smoke.check]]\npath = '/'\n\n[[service]]\nname = 'api'\nservice = 'api'\nrepository = 'api'\ntags = ['latest']\n";

    fn parse(text: &str) -> Config {
        Config::parse(text, "t.toml").unwrap()
    }

    #[test]
    fn the_same_config_written_differently_is_no_difference() {
        let reordered =
            LIVE.replace("[defaults]\ncluster = 'c'\n", "# a comment\n[defaults]\ncluster = \"c\"  # same\n");
        assert!(differences(&parse(&reordered), &parse(LIVE)).is_empty());
        // A default moved into the entry it applies to is the same effective config.
        let moved = LIVE
            .replace("[defaults]\ncluster = 'c'\n", "")
            .replace("name = 'web'\n", "name = 'web'\ncluster = 'c'\n")
            .replace("name = 'api'\n", "name = 'api'\ncluster = 'c'\n");
        assert!(differences(&parse(&moved), &parse(LIVE)).is_empty());
    }

    #[test]
    fn each_differing_service_names_its_keys_and_a_missing_one_says_where_it_is() {
        let local = LIVE
            .replace("attempts = 5", "attempts = 6")
            .replacen("tags = ['latest']", "tags = ['v*']", 1)
            .replace("[[service]]\nname = 'api'\nservice = 'api'\nrepository = 'api'\ntags = ['latest']\n", "")
            + "\n[[service]]\nname = 'worker'\nservice = 'worker'\nrepository = 'worker'\ntags = ['latest']\n";
        assert_eq!(
            differences(&parse(&local), &parse(LIVE)),
            ["web: tags, smoke.attempts", "worker: only in the local file", "api: only in the live config"]
        );
    }
}
