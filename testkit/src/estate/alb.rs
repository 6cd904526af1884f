//! The todo app's load balancer, as the seed's Terraform builds it: HTTP on 80 redirecting to
//! HTTPS on 443, whose rules send `todo.example.com` + `/api/*` to the backend and the rest of
//! `todo.example.com` to the frontend (anything else: a fixed 404). What `pushdeploy init` reads.

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, FixedResponseActionConfig, ProtocolEnum, RedirectActionConfig,
    RedirectActionStatusCodeEnum, RuleCondition,
};

use crate::clients::Aws;
use crate::names::ACCOUNT;

/// The todo app's host name, on the HTTPS listener's rules.
pub const TODO_HOST: &str = "todo.example.com";

/// The load balancer in front of the todo app.
#[derive(Debug, Clone)]
pub struct TodoAlb {
    /// Its DNS name.
    pub dns_name: String,
    /// The frontend's target group.
    pub frontend: String,
    /// The backend's target group (health check `/api/health`).
    pub backend: String,
}

fn forward(target_group: &str) -> Action {
    Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(target_group).build()
}

fn condition(field: &str, value: &str) -> RuleCondition {
    RuleCondition::builder().field(field).values(value).build()
}

impl Aws {
    /// Creates the todo app's ALB, its two target groups (no targets) and listeners.
    pub async fn create_todo_alb(&self) -> TodoAlb {
        let frontend = self.create_target_group("todo-frontend-tg", &[]).await;
        let backend = self.create_target_group("todo-backend-tg", &[]).await;
        self.elbv2
            .modify_target_group()
            .target_group_arn(&backend)
            .health_check_path("/api/health")
            .send()
            .await
            .expect("backend health check");
        let (subnet, sg) = self.network().await;
        let lb = self
            .elbv2
            .create_load_balancer()
            .name("todo-alb")
            .subnets(subnet)
            .security_groups(sg)
            .send()
            .await
            .expect("create load balancer");
        let lb = &lb.load_balancers()[0];
        let arn = lb.load_balancer_arn().expect("lb arn").to_string();
        let dns_name = lb.dns_name().expect("dns name").to_string();
        let redirect = Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol("HTTPS")
                    .port("443")
                    .status_code(RedirectActionStatusCodeEnum::Http301)
                    .build(),
            )
            .build();
        self.listener(&arn, ProtocolEnum::Http, 80, redirect).await;
        let not_found = Action::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .fixed_response_config(
                FixedResponseActionConfig::builder().status_code("404").content_type("text/plain").build(),
            )
            .build();
        let https = self.listener(&arn, ProtocolEnum::Https, 443, not_found).await;
        for (priority, conditions, tg) in [
            (10, vec![condition("host-header", TODO_HOST), condition("path-pattern", "/api/*")], &backend),
            (20, vec![condition("host-header", TODO_HOST)], &frontend),
        ] {
            self.elbv2
                .create_rule()
                .listener_arn(&https)
                .priority(priority)
                .set_conditions(Some(conditions))
                .actions(forward(tg))
                .send()
                .await
                .expect("create rule");
        }
        TodoAlb { dns_name, frontend, backend }
    }

    /// A listener on `lb` with `default` as its default action (HTTPS with an IAM server certificate).
    async fn listener(&self, lb: &str, protocol: ProtocolEnum, port: i32, default: Action) -> String {
        let mut create = self
            .elbv2
            .create_listener()
            .load_balancer_arn(lb)
            .protocol(protocol.clone())
            .port(port)
            .default_actions(default);
        if protocol == ProtocolEnum::Https {
            let cert = format!("arn:aws:iam::{ACCOUNT}:server-certificate/todo-example-com");
            create = create.certificates(Certificate::builder().certificate_arn(cert).build());
        }
        let out = create.send().await.expect("create listener");
        out.listeners()[0].listener_arn().expect("listener arn").to_string()
    }
}
