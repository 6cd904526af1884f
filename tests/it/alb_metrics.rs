//! The blue/green ALB's CloudWatch metrics as verify reads them: simulated users' traffic
//! published into moto per target group, read back with one AWS JSON 1.0 GetMetricData signed as
//! the verify role through the IAM guard, which answers the percentile statistics moto cannot.

use serde_json::{json, Value};
use testkit::estate::{Aws, Followers};
use testkit::guard::Emulator;
use testkit::iam::{Policies, Role};
use testkit::names::REGION;
use testkit::traffic::{now_s, Profile};

/// GetMetricData as the product sends it (AWS JSON 1.0), with `access_key`'s credential scope:
/// moto checks no signature; the guard tells the role by its key.
async fn get_metric_data(endpoint: &str, access_key: &str, request: &Value) -> (u16, Value) {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={access_key}/20260101/{REGION}/monitoring/aws4_request, SignedHeaders=host, Signature=0"
    );
    let resp = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .header("Authorization", auth)
        .header("X-Amz-Target", "GraniteServiceVersion20100801.GetMetricData")
        .header("Content-Type", "application/x-amz-json-1.0")
        .body(request.to_string())
        .send()
        .await
        .expect("GetMetricData");
    let status = resp.status().as_u16();
    (status, serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or_default())
}

/// One query of `metric`'s `stat` for a group over the whole window.
fn query(id: &str, lb: &str, tg: &str, metric: &str, stat: &str, period: i64) -> Value {
    let dims = json!([{"Name": "LoadBalancer", "Value": lb}, {"Name": "TargetGroup", "Value": tg}]);
    json!({"Id": id, "MetricStat": {"Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": metric,
        "Dimensions": dims}, "Period": period, "Stat": stat}, "ReturnData": true})
}

/// The value of result `id` (one datapoint expected), None when it has none.
fn value(answer: &Value, id: &str) -> Option<f64> {
    let result = answer["MetricDataResults"].as_array().unwrap().iter().find(|r| r["Id"] == id).cloned().unwrap();
    assert_eq!(result["StatusCode"], "Complete", "{result}");
    let values = result["Values"].as_array().unwrap();
    assert!(values.len() <= 1, "one datapoint per query: {result}");
    values.first().map(|v| v.as_f64().unwrap())
}

#[tokio::test]
async fn a_canary_windows_metrics_read_back_per_group_with_percentiles_answered_by_the_guard() {
    let emu = Emulator::start().await;
    let aws = Aws::new(&emu.endpoint).await;
    let alb = aws.create_blue_green_alb("todo-bg").await;
    assert_eq!(aws.rule_weights(&alb.production_rule).await, [(alb.primary.clone(), 1)]);
    let (blue, green) = (Profile::new(0.001, 40.0, 90.0), Profile::new(0.02, 60.0, 200.0).hosts(1, 1));
    let traffic = alb.traffic(&aws, emu.guard.latencies.clone(), blue, green);
    traffic.seed(25);
    let end = now_s() / 60 * 60;
    // The five minutes before the deployment (ten minutes ago): every request on blue.
    let before = traffic.run(300, 20, end - 600).await;
    assert_eq!(before[&alb.primary].requests, 6000);

    // ECS registers green's tasks, points the test rule at them, then shifts 10 % of production.
    aws.register_ips(&alb.alternate, &["10.0.2.10", "10.0.2.11"]).await;
    alb.test_to(&aws, &alb.alternate).await;
    assert_eq!(aws.rule_weights(&alb.test_rule).await, [(alb.alternate.clone(), 100), (alb.primary.clone(), 0)]);
    alb.shift(&aws, &alb.alternate, 10, Followers { traffic: Some(&traffic), ..Followers::default() }).await;
    assert_eq!(aws.rule_weights(&alb.production_rule).await, [(alb.primary.clone(), 90), (alb.alternate.clone(), 10)]);
    let during = traffic.run(300, 20, end).await;
    let (b, g) = (during[&alb.primary], during[&alb.alternate]);
    assert_eq!(b.requests + g.requests, 6000);
    assert!((500..700).contains(&g.requests), "about 10 % at random: {g:?}");

    let lb = alb.dimension();
    let tg = |arn: &str| testkit::traffic::dimension_of(arn);
    let mut queries = Vec::new();
    for (i, group) in [&alb.primary, &alb.alternate].into_iter().enumerate() {
        for (suffix, metric, stat) in [
            ("req", "RequestCount", "Sum"),
            ("5xx", "HTTPCode_Target_5XX_Count", "Sum"),
            ("p95", "TargetResponseTime", "p95"),
            ("p99", "TargetResponseTime", "p99"),
            ("unh", "UnHealthyHostCount", "Maximum"),
        ] {
            queries.push(query(&format!("g{i}_{suffix}"), &lb, &tg(group), metric, stat, 300));
        }
    }
    let request = json!({"StartTime": end - 300, "EndTime": end, "MetricDataQueries": queries});
    let (status, answer) = get_metric_data(&emu.endpoint, Role::Verify.access_key(), &request).await;
    assert_eq!(status, 200, "{answer}");
    let ids: Vec<&str> =
        answer["MetricDataResults"].as_array().unwrap().iter().map(|r| r["Id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 10);
    assert_eq!(ids[..5], ["g0_req", "g0_5xx", "g0_p95", "g0_p99", "g0_unh"], "in the request's order");
    assert_eq!(value(&answer, "g0_req"), Some(b.requests as f64));
    assert_eq!(value(&answer, "g1_req"), Some(g.requests as f64));
    assert_eq!(value(&answer, "g1_5xx"), Some(g.errors_5xx as f64));
    assert_eq!(value(&answer, "g1_unh"), Some(1.0));
    assert_eq!(value(&answer, "g0_unh"), Some(0.0));
    // Seconds, as ALB reports TargetResponseTime, near each profile's p95.
    let (p95_blue, p95_green) = (value(&answer, "g0_p95").unwrap(), value(&answer, "g1_p95").unwrap());
    assert!((p95_blue - 0.090).abs() < 0.010, "blue p95 {p95_blue}");
    assert!((p95_green - 0.200).abs() < 0.040, "green p95 {p95_green}");
    assert!(value(&answer, "g1_p99").unwrap() > p95_green);

    // The baseline window, read back the same way: blue only; green published nothing (an ALB
    // reports no zero counts).
    let before_request = json!({"StartTime": end - 900, "EndTime": end - 600, "MetricDataQueries": [
        query("b_req", &lb, &tg(&alb.primary), "RequestCount", "Sum", 300),
        query("g_req", &lb, &tg(&alb.alternate), "RequestCount", "Sum", 300),
        query("b_p95", &lb, &tg(&alb.primary), "TargetResponseTime", "p95", 300)]});
    let (_, baseline) = get_metric_data(&emu.endpoint, Role::Verify.access_key(), &before_request).await;
    assert_eq!(value(&baseline, "b_req"), Some(6000.0));
    assert_eq!(value(&baseline, "g_req"), None);
    assert!(value(&baseline, "b_p95").is_some());

    // The IAM guard classified each read as cloudwatch:GetMetricData on "*", allowed by its statement.
    let calls = emu.guard.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    for call in &calls {
        assert_eq!((call.operation.as_str(), call.allowed), ("cloudwatch:GetMetricData", true));
        assert_eq!(call.checks[0].0.resource, "*");
        assert_eq!(call.checks[0].1.allowed_by, ["CanaryAnalysisMetrics"]);
    }
    // Without that statement the verify role is denied, as CloudWatch would deny it.
    let bare = Policies::template().without(Role::Verify, |s| s["Sid"] == "CanaryAnalysisMetrics");
    emu.guard.set_policies(bare);
    let (status, denied) = get_metric_data(&emu.endpoint, Role::Verify.access_key(), &request).await;
    assert_eq!(status, 400, "{denied}");
    assert_eq!(denied["__type"], "AccessDeniedException");
}

#[tokio::test]
async fn the_service_names_its_listener_rules_and_alternate_group() {
    let emu = Emulator::start().await;
    let aws = Aws::new(&emu.endpoint).await;
    let app = testkit::estate::TodoApp::create(aws.clone()).await;
    let alb = app.aws.create_blue_green_alb("todo-be").await;
    alb.describe_as(&emu.guard.ecs, "todo-backend");
    let out =
        aws.ecs.describe_services().cluster(testkit::names::CLUSTER).services("todo-backend").send().await.unwrap();
    let lb = &out.services()[0].load_balancers()[0];
    assert_eq!(lb.target_group_arn(), Some(alb.primary.as_str()));
    let advanced = lb.advanced_configuration().expect("advancedConfiguration");
    assert_eq!(advanced.alternate_target_group_arn(), Some(alb.alternate.as_str()));
    assert_eq!(advanced.production_listener_rule(), Some(alb.production_rule.as_str()));
    assert_eq!(advanced.test_listener_rule(), Some(alb.test_rule.as_str()));
    assert!(advanced.role_arn().is_some_and(|r| r.starts_with("arn:aws:iam::")));
}

/// The stand-in's production listener during a 10 % step: each request reaches green at random by
/// weight (no request is promised to it), and a flaky green fails about its share of them.
#[tokio::test]
async fn the_standins_production_listener_routes_at_random_by_weight_and_a_flaky_green_fails_some() {
    use testkit::standin::{Behaviour, TodoStandIn};
    let emu = Emulator::start().await;
    let app = testkit::estate::TodoApp::create(Aws::new(&emu.endpoint).await).await;
    let (cluster, service) = (testkit::names::CLUSTER, "todo-backend");
    let blue = app.aws.service_task_definition(cluster, service).await;
    let digest = app.aws.push_image(service, "v1", "backend-flaky").await;
    let image = format!("{}/{service}@{}", testkit::names::registry(), digest.as_str());
    let green = app.aws.register_rich_task_definition(service, &[("backend", image)]).await;
    let standin = TodoStandIn::start(app.aws.clone()).await;
    standin.set(digest.as_str(), Behaviour::Flaky { errors_per_mille: 500 });
    standin.hold_production(service, &blue);
    standin.shift_production(service, &green, 10);
    let green_digest = digest.as_str().to_string();
    let run = |seed: u64| {
        let (standin, green_digest) = (&standin, &green_digest);
        async move {
            standin.seed(seed);
            let before = standin.served().len();
            let client = reqwest::Client::new();
            for _ in 0..300 {
                client.get(format!("{}api/todoItems", standin.url())).send().await.unwrap();
            }
            let served = standin.served()[before..].to_vec();
            served.iter().map(|s| (&s.digest == green_digest, s.status)).collect::<Vec<_>>()
        }
    };
    let first = run(9).await;
    let on_green: Vec<u16> = first.iter().filter(|(g, _)| *g).map(|(_, s)| *s).collect();
    assert!((15..=50).contains(&on_green.len()), "about 30 of 300 on green: {}", on_green.len());
    let failed = on_green.iter().filter(|s| **s == 500).count();
    assert!(failed > 0 && failed < on_green.len(), "half of green's fail: {failed} of {}", on_green.len());
    assert!(first.iter().filter(|(g, _)| !*g).all(|(_, s)| *s == 200), "blue is good");
    assert_eq!(run(9).await, first, "the same seed routes the same sequential requests the same way");
}
