//! What `init` reads of the running estate, as plain data: the cluster's services, their task
//! definitions' containers, and the load balancers in front of them. `describe` builds it from
//! AWS; `propose` reads it, so the proposal is tested on estates written by hand.

/// One cluster as it runs, in the caller's account and region.
#[derive(Debug, Clone, Default)]
pub struct Estate {
    /// The caller's account (STS GetCallerIdentity): the only registry account pushdeploy deploys from.
    pub account: String,
    /// The region the clients talk to.
    pub region: String,
    /// The cluster's name.
    pub cluster: String,
    /// The services, in the order ECS listed them.
    pub services: Vec<Service>,
    /// The target groups the services register with.
    pub target_groups: Vec<TargetGroup>,
    /// The load balancers of those target groups.
    pub load_balancers: Vec<LoadBalancer>,
    /// Those load balancers' listeners, each with its rules.
    pub listeners: Vec<Listener>,
}

/// One ECS service and the task definition it runs.
#[derive(Debug, Clone, Default)]
pub struct Service {
    /// The service's name.
    pub name: String,
    /// The task definition ARN it runs.
    pub task_definition: String,
    /// `deploymentController.type`: ECS (the default), CODE_DEPLOY or EXTERNAL.
    pub controller: String,
    /// `deploymentConfiguration.strategy`: ROLLING (the default), BLUE_GREEN, LINEAR or CANARY.
    pub strategy: String,
    /// The stages of its lifecycle hooks (`deploymentConfiguration.lifecycleHooks`).
    pub hook_stages: Vec<String>,
    /// The deployment circuit breaker is on.
    pub circuit_breaker: bool,
    /// `loadBalancers[].targetGroupArn`, in order.
    pub target_groups: Vec<String>,
    /// The task definition's containers.
    pub containers: Vec<Container>,
    /// The task definition's task role.
    pub task_role: Option<String>,
    /// The task definition's execution role.
    pub execution_role: Option<String>,
}

/// One container of a task definition.
#[derive(Debug, Clone, Default)]
pub struct Container {
    /// Its name.
    pub name: String,
    /// Its image, as the task definition names it.
    pub image: String,
}

/// One target group.
#[derive(Debug, Clone, Default)]
pub struct TargetGroup {
    /// Its ARN.
    pub arn: String,
    /// Its health check's path, for HTTP(S) health checks.
    pub health_check_path: Option<String>,
}

/// One load balancer.
#[derive(Debug, Clone, Default)]
pub struct LoadBalancer {
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// Its DNS name.
    pub dns_name: String,
    /// Scheme `internal`: reachable only inside the VPC.
    pub internal: bool,
}

/// One listener and its rules.
#[derive(Debug, Clone, Default)]
pub struct Listener {
    /// Its load balancer's ARN.
    pub load_balancer: String,
    /// HTTP or HTTPS (others are never a smoke URL).
    pub protocol: String,
    /// Its port.
    pub port: u16,
    /// Its rules, the default one included (priority `default`, no condition).
    pub rules: Vec<Rule>,
}

/// One listener rule: what it matches and where it forwards.
#[derive(Debug, Clone, Default)]
pub struct Rule {
    /// `default` or a number.
    pub priority: String,
    /// Its conditions.
    pub conditions: Vec<Condition>,
    /// The target groups its forward action sends to (`TargetGroupArn` or `ForwardConfig`).
    pub forwards_to: Vec<String>,
}

/// One rule condition: `host-header`, `path-pattern`, `http-header`, `query-string`,
/// `http-request-method` or `source-ip`, and its values.
#[derive(Debug, Clone, Default)]
pub struct Condition {
    /// The field.
    pub field: String,
    /// Its values (for `http-header`, `NAME: value`; for `query-string`, `key=value`).
    pub values: Vec<String>,
}
