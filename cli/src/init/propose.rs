//! The proposal: from the described estate to what `pushdeploy.toml` would say for each service,
//! and what to check before enforcing. Pure: `render` writes it as TOML.

use pushdeploy::domain::image::ImageRef;

use super::estate::{Estate, Service};
use super::smoke::{propose_smoke, SmokeFinding};
use super::tags::{propose_tags, TagsProposal};

/// What `init` proposes for a cluster.
#[derive(Debug, Clone)]
pub struct Proposal {
    /// The cluster.
    pub cluster: String,
    /// The account and region images must come from.
    pub account: String,
    /// The region.
    pub region: String,
    /// The services pushdeploy can deploy.
    pub services: Vec<ServicePlan>,
    /// The services it cannot, each with why.
    pub skipped: Vec<(String, String)>,
}

/// One deployable ECS service.
#[derive(Debug, Clone)]
pub struct ServicePlan {
    /// The ECS service's name.
    pub service: String,
    /// One `[[service]]` per ECR repository its containers run from.
    pub entries: Vec<Entry>,
    /// Containers whose image pushdeploy does not deploy: name, image, why.
    pub foreign: Vec<(String, String, String)>,
    /// The smoke URL from its load balancer.
    pub smoke: SmokeFinding,
    /// A blue/green (linear, canary) strategy with lifecycle hooks: the strategy and its stages.
    pub blue_green: Option<(String, Vec<String>)>,
    /// The deployment circuit breaker is on.
    pub circuit_breaker: bool,
    /// The task definition's task and execution roles.
    pub roles: (Option<String>, Option<String>),
}

/// One `[[service]]`: a repository and the containers that run it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `name`, unique in the file.
    pub name: String,
    /// `repository`.
    pub repository: String,
    /// The containers running images of it.
    pub containers: Vec<String>,
    /// `tags`.
    pub tags: TagsProposal,
}

/// Where a container's image comes from.
enum Source {
    /// An ECR repository of the caller's account and region.
    Own(ImageRef),
    /// Anywhere else, with why pushdeploy does not deploy it.
    Foreign(String),
}

/// The proposal for `estate`.
pub fn propose(estate: &Estate) -> Proposal {
    let mut out = Proposal {
        cluster: estate.cluster.clone(),
        account: estate.account.clone(),
        region: estate.region.clone(),
        services: Vec::new(),
        skipped: Vec::new(),
    };
    let mut names: Vec<String> = Vec::new();
    for service in &estate.services {
        match plan_service(estate, service, &mut names) {
            Ok(plan) => out.services.push(plan),
            Err(why) => out.skipped.push((service.name.clone(), why)),
        }
    }
    out
}

fn plan_service(estate: &Estate, service: &Service, names: &mut Vec<String>) -> Result<ServicePlan, String> {
    if !service.controller.is_empty() && service.controller != "ECS" {
        return Err(format!(
            "its deployment controller is {}: pushdeploy deploys services that use the ECS deployment controller",
            service.controller
        ));
    }
    let mut own: Vec<(String, ImageRef)> = Vec::new();
    let mut foreign = Vec::new();
    for c in &service.containers {
        match classify(&c.image, &estate.account, &estate.region) {
            Source::Own(image) => own.push((c.name.clone(), image)),
            Source::Foreign(why) => foreign.push((c.name.clone(), c.image.clone(), why)),
        }
    }
    if own.is_empty() {
        let each: Vec<String> = foreign.iter().map(|(c, i, why)| format!("{c} runs {i} ({why})")).collect();
        return Err(format!(
            "no container runs an image from this account's ECR in {}: {}",
            estate.region,
            each.join("; ")
        ));
    }
    let mut repositories: Vec<&str> = Vec::new();
    for (_, image) in &own {
        if !repositories.contains(&image.repository.as_str()) {
            repositories.push(&image.repository);
        }
    }
    let entries = repositories.iter().map(|repo| entry(service, repo, &own, names)).collect();
    let hooked = matches!(service.strategy.as_str(), "BLUE_GREEN" | "LINEAR" | "CANARY");
    Ok(ServicePlan {
        service: service.name.clone(),
        entries,
        foreign,
        smoke: propose_smoke(estate, service),
        blue_green: hooked.then(|| (service.strategy.clone(), service.hook_stages.clone())),
        circuit_breaker: service.circuit_breaker,
        roles: (service.task_role.clone(), service.execution_role.clone()),
    })
}

/// The entry for `repo`'s containers: named after the service (and the repository's last part
/// when the service runs several), unique among `names`.
fn entry(service: &Service, repo: &str, own: &[(String, ImageRef)], names: &mut Vec<String>) -> Entry {
    let runs: Vec<&(String, ImageRef)> = own.iter().filter(|(_, i)| i.repository == repo).collect();
    let images: Vec<&ImageRef> = runs.iter().map(|(_, i)| i).collect();
    let tail: String = repo.rsplit('/').next().unwrap_or(repo).replace('.', "-");
    let several = own.iter().any(|(_, i)| i.repository != repo);
    let base = if several && tail != service.name { format!("{}-{tail}", service.name) } else { service.name.clone() };
    let mut name = base.clone();
    let mut n = 2;
    while names.contains(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    names.push(name.clone());
    Entry {
        name,
        repository: repo.to_string(),
        containers: runs.iter().map(|(c, _)| c.clone()).collect(),
        tags: propose_tags(&images),
    }
}

/// Whether pushdeploy deploys `image`: only from ECR in the caller's own account and region.
fn classify(image: &str, account: &str, region: &str) -> Source {
    let parsed = match ImageRef::parse(image) {
        Ok(p) => p,
        Err(e) => return Source::Foreign(format!("not an image reference pushdeploy reads: {}", e.0)),
    };
    if parsed.registry == ImageRef::ecr_registry(account, region) {
        return Source::Own(parsed);
    }
    let ecr =
        parsed.registry.split_once(".dkr.ecr.").and_then(|(a, rest)| Some((a, rest.strip_suffix(".amazonaws.com")?)));
    let why = match (parsed.registry.as_str(), ecr) {
        ("", _) | ("docker.io" | "registry-1.docker.io" | "index.docker.io", _) => {
            "Docker Hub: pushes there send pushdeploy no event".to_string()
        }
        ("public.ecr.aws", _) => "ECR Public: pushes there send pushdeploy no event".to_string(),
        (_, Some((a, _))) if a != account => {
            format!("ECR of account {a}: pushdeploy deploys pushes to this account's ECR ({account}) only")
        }
        (_, Some((_, r))) => format!("ECR in {r}: pushdeploy deploys pushes to ECR in {region} only"),
        (host, None) => format!("registry {host}: pushdeploy deploys pushes to this account's ECR only"),
    };
    Source::Foreign(why)
}
