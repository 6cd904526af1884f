//! The ALB's CloudWatch metrics as the analysis reads them: ARNs to the dimensions CloudWatch
//! files them under, the one GetMetricData request for a window, and its answer as figures.
//! Pure: [`crate::aws::cloudwatch`] sends the request.

use serde::Deserialize;
use serde_json::{json, Value};

use super::analysis::GroupFigures;

/// The namespace every Application Load Balancer metric is in.
pub const NAMESPACE: &str = "AWS/ApplicationELB";

/// What is read per target group: the query id's suffix, the metric, its statistic, and the
/// factor to the figure's unit (TargetResponseTime is in seconds; figures are in ms).
const METRICS: [(&str, &str, &str, f64); 6] = [
    ("req", "RequestCount", "Sum", 1.0),
    ("5xx", "HTTPCode_Target_5XX_Count", "Sum", 1.0),
    ("p95", "TargetResponseTime", "p95", 1000.0),
    ("p99", "TargetResponseTime", "p99", 1000.0),
    ("unh", "UnHealthyHostCount", "Maximum", 1.0),
    // A target that refuses or drops the connection answers no 5XX of its own: the ALB answers
    // 502 (HTTPCode_ELB_5XX_Count, which has no TargetGroup dimension), so it is counted here.
    ("conn", "TargetConnectionErrorCount", "Sum", 1.0),
];

/// Pure: the CloudWatch dimension of an ELBv2 ARN: `…:loadbalancer/app/N/ID` → `app/N/ID`,
/// `…:targetgroup/N/ID` → `targetgroup/N/ID`, and a listener or rule's load balancer
/// (`…:listener-rule/app/N/ID/L/R` → `app/N/ID`). A value that is no ARN is taken as a dimension
/// already; `None` for an ARN of anything else.
pub fn dimension_of(arn: &str) -> Option<String> {
    if !arn.starts_with("arn:") {
        return Some(arn.to_string());
    }
    let resource = arn.splitn(6, ':').nth(5)?;
    let (kind, rest) = resource.split_once('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    match kind {
        "targetgroup" if parts.len() == 2 => Some(format!("targetgroup/{rest}")),
        "loadbalancer" | "listener" | "listener-rule" if parts.len() >= 3 && parts[0] == "app" => {
            Some(parts[..3].join("/"))
        }
        _ => None,
    }
}

/// Pure: the window CloudWatch is asked for, and its period: the times as given (CloudWatch
/// itself rounds a recent start down to the minute, and ALB metrics are per minute), the period
/// the whole window rounded up to a multiple of 60 s, so each query answers one datapoint.
/// Epoch seconds: (start, end, period).
pub fn window_bounds(start_s: i64, end_s: i64) -> (i64, i64, i64) {
    let end = end_s.max(start_s + 1);
    let period = ((end - start_s + 59) / 60).max(1) * 60;
    (start_s, end, period)
}

/// Pure: the GetMetricData request (AWS JSON 1.0) for `groups` (target-group dimensions) behind
/// `load_balancer` (its dimension) over `start_s..end_s` ([`window_bounds`]): one datapoint per
/// query (the period is the whole window), ids `g{i}_req`, `g{i}_5xx`, `g{i}_p95`, `g{i}_p99`,
/// `g{i}_unh`; times as epoch seconds, as JSON 1.0 carries timestamps.
pub fn query(load_balancer: &str, groups: &[String], start_s: i64, end_s: i64) -> Value {
    let (start, end, period) = window_bounds(start_s, end_s);
    let queries: Vec<Value> = groups
        .iter()
        .enumerate()
        .flat_map(|(i, group)| {
            METRICS.iter().map(move |(suffix, name, stat, _)| {
                json!({
                    "Id": format!("g{i}_{suffix}"),
                    "MetricStat": {
                        "Metric": {
                            "Namespace": NAMESPACE,
                            "MetricName": name,
                            "Dimensions": [
                                { "Name": "LoadBalancer", "Value": load_balancer },
                                { "Name": "TargetGroup", "Value": group },
                            ],
                        },
                        "Period": period,
                        "Stat": stat,
                    },
                    "ReturnData": true,
                })
            })
        })
        .collect();
    json!({ "MetricDataQueries": queries, "StartTime": start, "EndTime": end })
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "MetricDataResults", default)]
    results: Vec<Result>,
}

#[derive(Deserialize)]
struct Result {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "Values", default)]
    values: Vec<f64>,
}

/// Pure: GetMetricData's answer as one [`GroupFigures`] per group, in `groups`' order. A query
/// with no datapoint is 0 for a count (no request, no 5XX: ALB publishes no zeros) and `None`
/// otherwise. Should CloudWatch split the window, counts are summed and the latency and unhealthy
/// figures take the worst datapoint.
pub fn read_figures(groups: &[String], body: &[u8]) -> std::result::Result<Vec<GroupFigures>, String> {
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| format!("unreadable GetMetricData answer: {}", e.classify_name()))?;
    let values = |id: String| answer.results.iter().find(|r| r.id == id).map(|r| r.values.as_slice());
    let sum = |id: String| values(id).map_or(0.0, |v| v.iter().sum());
    let worst =
        |id: String, factor: f64| values(id).and_then(|v| v.iter().copied().reduce(f64::max)).map(|x| x * factor);
    Ok(groups
        .iter()
        .enumerate()
        .map(|(i, group)| GroupFigures {
            target_group: group.clone(),
            requests: sum(format!("g{i}_req")),
            errors_5xx: sum(format!("g{i}_5xx")) + sum(format!("g{i}_conn")),
            p95_ms: worst(format!("g{i}_p95"), METRICS[2].3),
            p99_ms: worst(format!("g{i}_p99"), METRICS[3].3),
            max_unhealthy: worst(format!("g{i}_unh"), METRICS[4].3),
        })
        .collect())
}

/// The name of a JSON error's category, without the input it quotes.
trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "unexpected shape",
            serde_json::error::Category::Eof => "cut short",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LB: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/todo-alb/50dc6c495c0c9188";

    #[test]
    fn arns_give_their_dimensions() {
        assert_eq!(dimension_of(LB).as_deref(), Some("app/todo-alb/50dc6c495c0c9188"));
        assert_eq!(
            dimension_of("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/todo-blue/6d0ecf831eec9f09")
                .as_deref(),
            Some("targetgroup/todo-blue/6d0ecf831eec9f09")
        );
        assert_eq!(
            dimension_of("arn:aws:elasticloadbalancing:eu-west-1:1:listener-rule/app/todo-alb/50dc/f2f7dc8efc522ab2/9683b2d02a6cabee")
                .as_deref(),
            Some("app/todo-alb/50dc")
        );
        assert_eq!(
            dimension_of("arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/a/b/c").as_deref(),
            Some("app/a/b")
        );
        assert_eq!(dimension_of("app/todo-alb/50dc").as_deref(), Some("app/todo-alb/50dc"), "already a dimension");
        assert_eq!(dimension_of("arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/net/n/1"), None, "an NLB");
        assert_eq!(dimension_of("arn:aws:ecs:eu-west-1:1:service/c/s"), None);
        assert_eq!(dimension_of("arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/x"), None);
    }

    #[test]
    fn the_window_is_read_whole_in_one_period_of_whole_minutes() {
        assert_eq!(window_bounds(1_765_000_030, 1_765_000_290), (1_765_000_030, 1_765_000_290, 300));
        assert_eq!(window_bounds(1_765_000_020, 1_765_000_080), (1_765_000_020, 1_765_000_080, 60));
        assert_eq!(window_bounds(120, 120), (120, 121, 60), "never empty, at least a minute's period");
        assert_eq!(window_bounds(100, 103), (100, 103, 60));
    }

    #[test]
    fn one_request_asks_six_figures_per_group() {
        let groups = vec!["targetgroup/blue/1".to_string(), "targetgroup/green/2".to_string()];
        let q = query("app/todo-alb/50dc", &groups, 1_765_000_030, 1_765_000_290);
        assert_eq!(q["StartTime"], 1_765_000_030);
        assert_eq!(q["EndTime"], 1_765_000_290);
        let queries = q["MetricDataQueries"].as_array().unwrap();
        let ids: Vec<&str> = queries.iter().map(|x| x["Id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            [
                "g0_req", "g0_5xx", "g0_p95", "g0_p99", "g0_unh", "g0_conn", "g1_req", "g1_5xx", "g1_p95", "g1_p99",
                "g1_unh", "g1_conn"
            ]
        );
        let green_p99 = &queries[9]["MetricStat"];
        assert_eq!(green_p99["Period"], 300);
        assert_eq!(green_p99["Stat"], "p99");
        assert_eq!(green_p99["Metric"]["Namespace"], "AWS/ApplicationELB");
        assert_eq!(green_p99["Metric"]["MetricName"], "TargetResponseTime");
        assert_eq!(green_p99["Metric"]["Dimensions"][0], json!({"Name": "LoadBalancer", "Value": "app/todo-alb/50dc"}));
        assert_eq!(
            green_p99["Metric"]["Dimensions"][1],
            json!({"Name": "TargetGroup", "Value": "targetgroup/green/2"})
        );
        assert_eq!(queries[4]["MetricStat"]["Stat"], "Maximum");
        assert_eq!(queries[1]["MetricStat"]["Metric"]["MetricName"], "HTTPCode_Target_5XX_Count");
    }

    #[test]
    fn the_answer_becomes_figures() {
        let groups = vec!["targetgroup/blue/1".to_string(), "targetgroup/green/2".to_string()];
        let body = br#"{"MetricDataResults":[
            {"Id":"g0_req","Label":"RequestCount","Timestamps":[1765000000],"Values":[22800.0],"StatusCode":"Complete"},
            {"Id":"g0_5xx","Timestamps":[1765000000],"Values":[23.0],"StatusCode":"Complete"},
            {"Id":"g0_p95","Timestamps":[1765000000],"Values":[0.039],"StatusCode":"Complete"},
            {"Id":"g0_conn","Timestamps":[1765000000],"Values":[4.0],"StatusCode":"Complete"},
            {"Id":"g1_req","Timestamps":[1765000000,1764999940],"Values":[700.0,500.0],"StatusCode":"Complete"},
            {"Id":"g1_5xx","Timestamps":[],"Values":[],"StatusCode":"Complete"},
            {"Id":"g1_p95","Timestamps":[1765000000,1764999940],"Values":[0.041,0.052],"StatusCode":"Complete"},
            {"Id":"g1_unh","Timestamps":[1765000000],"Values":[1.0],"StatusCode":"Complete"}
        ],"Messages":[]}"#;
        let f = read_figures(&groups, body).unwrap();
        assert_eq!(f[0].target_group, "targetgroup/blue/1");
        assert_eq!((f[0].requests, f[0].errors_5xx), (22_800.0, 27.0), "target 5XX and connection errors");
        assert!((f[0].p95_ms.unwrap() - 39.0).abs() < 1e-9);
        assert_eq!((f[0].p99_ms, f[0].max_unhealthy), (None, None));
        assert_eq!((f[1].requests, f[1].errors_5xx), (1200.0, 0.0), "summed; no datapoint is no error");
        assert!((f[1].p95_ms.unwrap() - 52.0).abs() < 1e-9, "the worst minute");
        assert_eq!(f[1].max_unhealthy, Some(1.0));
        assert_eq!(read_figures(&groups, br#"{}"#).unwrap()[1].requests, 0.0);
        assert_eq!(read_figures(&groups, b"<html>x</html>").unwrap_err(), "unreadable GetMetricData answer: not JSON");
    }
}
