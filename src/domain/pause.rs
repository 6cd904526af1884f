//! A pause: an operator's word, kept in S3 beside the config, that a service (or every service)
//! takes no new change until resumed. One object per pause, so two operators pausing two
//! services at once never overwrite each other's:
//!
//! - `<config key>.pauses/all.json`: every service (`pushdeploy pause --all`);
//! - `<config key>.pauses/service/<name>.json`: one service, by its name in the config.
//!
//! Only the operators may write them (the bucket policy); the functions only read them.

use serde::{Deserialize, Serialize};

/// What a pause stops: every service or one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every service of the config.
    All,
    /// One service, by its name in the config.
    Service(String),
}

impl Scope {
    /// The argument `pushdeploy resume` takes for it: `--all` or the service's name.
    pub fn argument(&self) -> &str {
        match self {
            Scope::All => "--all",
            Scope::Service(name) => name,
        }
    }
}

/// One pause, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// The config's name of the service paused; absent for a pause of every service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Why, as the operator gave it.
    pub reason: String,
    /// Who: the caller's ARN (STS GetCallerIdentity) when the pause was made.
    pub by: String,
    /// When, RFC 3339 UTC.
    pub since: String,
}

impl Pause {
    /// What it stops.
    pub fn scope(&self) -> Scope {
        match &self.service {
            Some(name) => Scope::Service(name.clone()),
            None => Scope::All,
        }
    }

    /// Reads a stored pause of `scope` found at `key`. An object that does not read as one is
    /// still a pause (only an operator can have written it): it is honoured, and says why it is odd.
    pub fn from_stored(key: &str, scope: Scope, bytes: &[u8]) -> Pause {
        match serde_json::from_slice::<Pause>(bytes) {
            Ok(p) if p.scope() == scope => p,
            Ok(_) => unreadable(key, scope, "it names another scope than its key"),
            Err(e) => unreadable(key, scope, &e.to_string()),
        }
    }
}

fn unreadable(key: &str, scope: Scope, why: &str) -> Pause {
    let service = match scope {
        Scope::All => None,
        Scope::Service(name) => Some(name),
    };
    Pause {
        service,
        reason: format!("the pause object {key} is not a pause ({why}); honoured as one until resumed"),
        by: "unknown".into(),
        since: "unknown".into(),
    }
}

/// Where the pauses of the config at `config_key` are kept (in the config's bucket).
pub fn pauses_prefix(config_key: &str) -> String {
    format!("{config_key}.pauses/")
}

/// The key of the pause of `scope`.
pub fn pause_key(config_key: &str, scope: &Scope) -> String {
    match scope {
        Scope::All => format!("{}all.json", pauses_prefix(config_key)),
        Scope::Service(name) => format!("{}service/{name}.json", pauses_prefix(config_key)),
    }
}

/// The scope a key under [`pauses_prefix`] stands for; `None` for any other object there.
pub fn scope_of_key(config_key: &str, key: &str) -> Option<Scope> {
    let rest = key.strip_prefix(&pauses_prefix(config_key))?;
    if rest == "all.json" {
        return Some(Scope::All);
    }
    let name = rest.strip_prefix("service/")?.strip_suffix(".json")?;
    (!name.is_empty() && !name.contains('/')).then(|| Scope::Service(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pause_has_its_own_key_beside_the_config() {
        let all = pause_key("pushdeploy.toml", &Scope::All);
        let backend = pause_key("pushdeploy.toml", &Scope::Service("backend".into()));
        assert_eq!(all, "pushdeploy.toml.pauses/all.json");
        assert_eq!(backend, "pushdeploy.toml.pauses/service/backend.json");
        // A service named "all" is not the pause of every service.
        assert_ne!(pause_key("pushdeploy.toml", &Scope::Service("all".into())), all);
        assert_eq!(scope_of_key("pushdeploy.toml", &all), Some(Scope::All));
        assert_eq!(scope_of_key("pushdeploy.toml", &backend), Some(Scope::Service("backend".into())));
        assert_eq!(
            scope_of_key("teams/a.toml", "teams/a.toml.pauses/service/x.json"),
            Some(Scope::Service("x".into()))
        );
        for other in ["pushdeploy.toml", "pushdeploy.toml.pauses/notes.txt", "pushdeploy.toml.pauses/service/.json"] {
            assert_eq!(scope_of_key("pushdeploy.toml", other), None, "{other}");
        }
    }

    #[test]
    fn a_stored_pause_reads_back_and_an_odd_one_is_still_a_pause() {
        let p = Pause {
            service: Some("backend".into()),
            reason: "incident 42".into(),
            by: "arn:a".into(),
            since: "t".into(),
        };
        let bytes = serde_json::to_vec(&p).unwrap();
        let backend = Scope::Service("backend".into());
        assert_eq!(Pause::from_stored("k", backend.clone(), &bytes), p);
        let odd = Pause::from_stored("k", backend.clone(), b"not json");
        assert_eq!(odd.scope(), backend);
        assert!(odd.reason.contains("k is not a pause") && odd.reason.contains("honoured"), "{}", odd.reason);
        let moved = Pause::from_stored("k", Scope::All, &bytes);
        assert_eq!(moved.scope(), Scope::All);
        assert!(moved.reason.contains("another scope"), "{}", moved.reason);
        let all = serde_json::to_value(Pause { service: None, ..p }).unwrap();
        assert!(all.get("service").is_none(), "{all}");
    }
}
