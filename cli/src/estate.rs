//! What `validate` reads of the estate once it has read the stack: the task definition each
//! configured service runs, whose roles the stack must pass for deploy to register its copy
//! (ECS DescribeServices and DescribeTaskDefinition, with the operator's credentials).

use pushdeploy::config::Config;
use pushdeploy::rules::pass_role;

use crate::settings::Checked;

/// One warning per role a service's running task definition names that the stack does not pass,
/// as (service name, warning); a service whose task definition cannot be read is said so.
pub async fn role_warnings(config: &Config, checked: &Checked) -> Vec<(String, String)> {
    let Some(roles) = &checked.roles else { return Vec::new() };
    let clients = match pushdeploy::aws::Clients::load(String::new(), None).await {
        Ok(c) => c,
        Err(e) => {
            return config.services.iter().map(|s| (s.name.clone(), format!("cannot read the estate: {e}"))).collect()
        }
    };
    let mut warnings = Vec::new();
    for s in &config.services {
        let running = match clients.ecs.current_task_definition(&s.cluster, &s.service).await {
            Ok(arn) => clients.ecs.describe_task_definition(&arn).await,
            Err(e) => Err(e),
        };
        match running {
            Ok(td) => {
                let td = &td.task_definition;
                for w in pass_role::unpassable(td.task_role_arn(), td.execution_role_arn(), roles) {
                    warnings.push((s.name.clone(), w));
                }
            }
            Err(e) => warnings.push((s.name.clone(), format!("the roles it passes are unchecked: {e}"))),
        }
    }
    warnings
}
