//! Users' traffic through a blue/green service's load balancer, and the CloudWatch metrics an
//! ALB publishes about it.
//!
//! A [`Traffic`] knows the load balancer and its target groups, each with the [`Profile`] of the
//! image it serves and its weight on the production rule. [`Traffic::run`] simulates N requests a
//! second over a window ending at any time (the five minutes before a deployment, or now) and
//! publishes what an ALB would with PutMetricData into moto's CloudWatch: namespace
//! `AWS/ApplicationELB`, dimensions `LoadBalancer` (`app/NAME/ID`) and `TargetGroup`
//! (`targetgroup/NAME/ID`), one datapoint a minute as an ALB reports, count metrics only when not
//! zero (the AWS documentation's reporting criterion). moto answers no percentile of what it was
//! sent, so every request's latency is also kept in [`Latencies`], from which the guard answers
//! `pNN` and `tmNN` statistics ([`percentiles`]).

pub mod percentiles;
mod simulate;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

pub use simulate::{Profile, Sample, Simulator};

use crate::clients::Aws;
use crate::names::REGION;

/// The seed a [`Traffic`] starts with, so a test that never seeds one sees the same traffic each run.
pub const DEFAULT_SEED: u64 = 0x7ea_ff1c;

/// The dimension value CloudWatch names a load balancer or target group by: the ARN's resource
/// part after `loadbalancer/` (`app/NAME/ID`) or from `targetgroup/` on. Anything else is kept.
pub fn dimension_of(arn: &str) -> String {
    if let Some((_, rest)) = arn.split_once(":loadbalancer/") {
        return rest.to_string();
    }
    match arn.split_once(":targetgroup/") {
        Some((_, rest)) => format!("targetgroup/{rest}"),
        None => arn.to_string(),
    }
}

/// Every simulated request's response time, by (LoadBalancer, TargetGroup) dimension values:
/// what the guard computes percentiles from. Shared by the guard and the tests' [`Traffic`].
#[derive(Default)]
pub struct Latencies {
    by_group: Mutex<HashMap<(String, String), Timed>>,
}

/// Latencies (seconds) with the epoch second of their request.
type Timed = Vec<(i64, f64)>;

/// One target group's requests in one minute, as an ALB sums them for its datapoints.
#[derive(Clone, Copy)]
struct Minute {
    requests: u64,
    errors: u64,
    sum_s: f64,
    min_s: f64,
    max_s: f64,
}

impl Minute {
    const EMPTY: Minute = Minute { requests: 0, errors: 0, sum_s: 0.0, min_s: f64::MAX, max_s: 0.0 };
}

impl Latencies {
    /// Keeps `latency_s` (seconds) of a request at `at_s` (epoch seconds).
    pub fn record(&self, load_balancer: &str, target_group: &str, at_s: i64, latency_s: f64) {
        let mut by = self.by_group.lock().expect("lock");
        by.entry((load_balancer.to_string(), target_group.to_string())).or_default().push((at_s, latency_s));
    }

    /// The latencies (seconds) of a group's requests at `at_s` in `[start_s, end_s)`, with their times.
    pub fn between(&self, load_balancer: &str, target_group: &str, start_s: i64, end_s: i64) -> Vec<(i64, f64)> {
        let by = self.by_group.lock().expect("lock");
        let key = (load_balancer.to_string(), target_group.to_string());
        by.get(&key).into_iter().flatten().filter(|(t, _)| (start_s..end_s).contains(t)).copied().collect()
    }
}

/// One target group's requests in one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    /// Requests it served.
    pub requests: u64,
    /// Of them, answered 5XX.
    pub errors_5xx: u64,
}

/// The users of one load balancer's production listener.
pub struct Traffic {
    aws: Aws,
    latencies: Arc<Latencies>,
    load_balancer: String,
    /// Each group's ARN and dimension value, in the simulator's order.
    groups: Mutex<Vec<(String, String)>>,
    sim: Mutex<Simulator>,
    /// Seconds per published datapoint: 60 as an ALB reports; tests with windows of seconds
    /// publish by the second, since moto (unlike CloudWatch) does not round a query's times to
    /// the minute.
    resolution_s: std::sync::atomic::AtomicI64,
}

impl Traffic {
    /// Users of `load_balancer` (its ARN or `app/NAME/ID`), publishing through `aws` (the
    /// harness's clients: behind the guard they pass unchecked) and keeping latencies in
    /// `latencies` (the guard's, [`crate::guard::Guard::latencies`]).
    pub fn new(aws: &Aws, latencies: Arc<Latencies>, load_balancer: &str) -> Self {
        Self {
            aws: aws.clone(),
            latencies,
            load_balancer: dimension_of(load_balancer),
            groups: Mutex::new(Vec::new()),
            sim: Mutex::new(Simulator::new(DEFAULT_SEED)),
            resolution_s: std::sync::atomic::AtomicI64::new(60),
        }
    }

    /// Publishes one datapoint per `seconds` (default 60, as an ALB does).
    pub fn resolution(&self, seconds: i64) {
        self.resolution_s.store(seconds.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Restarts the random draws from `seed`.
    pub fn seed(&self, seed: u64) {
        self.sim.lock().expect("lock").seed(seed);
    }

    /// Adds a target group (its ARN) with its production weight and profile.
    pub fn add_group(&self, target_group: &str, weight: u32, profile: Profile) {
        self.groups.lock().expect("lock").push((target_group.to_string(), dimension_of(target_group)));
        self.sim.lock().expect("lock").add(weight, profile);
    }

    fn index(&self, target_group: &str) -> usize {
        let groups = self.groups.lock().expect("lock");
        groups.iter().position(|(arn, dim)| arn == target_group || dim == target_group).expect("an added group")
    }

    /// Sets the production rule's weights, as `(target group, weight)`; groups not named keep theirs.
    pub fn set_weights(&self, weights: &[(&str, u32)]) {
        for (tg, w) in weights {
            let i = self.index(tg);
            self.sim.lock().expect("lock").set_weight(i, *w);
        }
    }

    /// Sets a group's profile: it now serves another image, or its hosts changed.
    pub fn set_profile(&self, target_group: &str, profile: Profile) {
        let i = self.index(target_group);
        self.sim.lock().expect("lock").set_profile(i, profile);
    }

    /// Simulates `requests_per_second` users' requests in each of the `seconds` before `end_s`
    /// (epoch seconds; [`now_s`] for traffic now), keeps their latencies and publishes the ALB's
    /// metrics for them; answers what each group (by ARN) served.
    pub async fn run(&self, seconds: u64, requests_per_second: u32, end_s: i64) -> BTreeMap<String, Counted> {
        let samples = self.sim.lock().expect("lock").run(seconds, requests_per_second, end_s);
        let groups = self.groups.lock().expect("lock").clone();
        let profiles: Vec<Profile> = {
            let sim = self.sim.lock().expect("lock");
            (0..groups.len()).map(|i| sim.profile(i)).collect()
        };
        let mut counted: BTreeMap<String, Counted> =
            groups.iter().map(|(a, _)| (a.clone(), Counted::default())).collect();
        for s in &samples {
            self.latencies.record(&self.load_balancer, &groups[s.group].1, s.at_s, s.latency_s);
            let c = counted.get_mut(&groups[s.group].0).expect("a group");
            c.requests += 1;
            c.errors_5xx += u64::from(s.error);
        }
        let res = self.resolution_s.load(std::sync::atomic::Ordering::Relaxed);
        let datums = datums(&self.load_balancer, &groups, &profiles, &samples, (end_s - seconds as i64, end_s), res);
        for chunk in datums.chunks(500) {
            self.put_metric_data(chunk).await;
        }
        counted
    }

    /// One PutMetricData (AWS JSON 1.0, as moto 5 takes CloudWatch calls), signed with the
    /// harness's access key: moto checks no signature, and the guard passes the harness unchecked.
    async fn put_metric_data(&self, data: &[Value]) {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/20260101/{REGION}/monitoring/aws4_request, SignedHeaders=host, Signature=0",
            crate::iam::HARNESS_ACCESS_KEY
        );
        let body = json!({"Namespace": "AWS/ApplicationELB", "MetricData": data});
        pushdeploy::aws::tls::install_crypto();
        let resp = reqwest::Client::new()
            .post(format!("{}/", self.aws.endpoint))
            .header("Authorization", auth)
            .header("X-Amz-Target", "GraniteServiceVersion20100801.PutMetricData")
            .header("Content-Type", "application/x-amz-json-1.0")
            .body(body.to_string())
            .send()
            .await
            .expect("PutMetricData");
        let status = resp.status();
        assert!(status.is_success(), "PutMetricData: {status} {}", resp.text().await.unwrap_or_default());
    }
}

/// Now, in epoch seconds.
pub fn now_s() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs() as i64
}

/// What an ALB publishes for `samples` in `[start_s, end_s)`: per group and minute, RequestCount,
/// HTTPCode_Target_2XX_Count and HTTPCode_Target_5XX_Count (Count, only when not zero),
/// TargetResponseTime (Seconds, as statistic values, only with requests), and HealthyHostCount and
/// UnHealthyHostCount (Count, every minute: reported while health checks are enabled).
fn datums(
    lb: &str,
    groups: &[(String, String)],
    profiles: &[Profile],
    samples: &[Sample],
    (start_s, end_s): (i64, i64),
    res: i64,
) -> Vec<Value> {
    let mut minutes: BTreeMap<(usize, i64), Minute> = BTreeMap::new();
    for g in 0..groups.len() {
        let mut m = start_s - start_s.rem_euclid(res);
        while m < end_s {
            minutes.insert((g, m), Minute::EMPTY);
            m += res;
        }
    }
    for s in samples {
        let e = minutes.entry((s.group, s.at_s - s.at_s.rem_euclid(res))).or_insert(Minute::EMPTY);
        e.requests += 1;
        e.errors += u64::from(s.error);
        e.sum_s += s.latency_s;
        e.min_s = e.min_s.min(s.latency_s);
        e.max_s = e.max_s.max(s.latency_s);
    }
    let mut out = Vec::new();
    for ((g, minute), m) in minutes {
        let Minute { requests: n, errors, sum_s: sum, min_s: min, max_s: max } = m;
        let dims = json!([{"Name": "LoadBalancer", "Value": lb}, {"Name": "TargetGroup", "Value": groups[g].1}]);
        let datum = |name: &str, value: f64| json!({"MetricName": name, "Dimensions": dims, "Timestamp": minute, "Value": value, "Unit": "Count"});
        for (name, value) in
            [("RequestCount", n), ("HTTPCode_Target_2XX_Count", n - errors), ("HTTPCode_Target_5XX_Count", errors)]
        {
            if value > 0 {
                out.push(datum(name, value as f64));
            }
        }
        if n > 0 {
            let stats = json!({"SampleCount": n as f64, "Sum": sum, "Minimum": min, "Maximum": max});
            out.push(json!({"MetricName": "TargetResponseTime", "Dimensions": dims, "Timestamp": minute,
                "StatisticValues": stats, "Unit": "Seconds"}));
        }
        out.push(datum("HealthyHostCount", f64::from(profiles[g].healthy_hosts)));
        out.push(datum("UnHealthyHostCount", f64::from(profiles[g].unhealthy_hosts)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_come_from_the_arns_as_cloudwatch_names_them() {
        let lb = "arn:aws:elasticloadbalancing:ap-southeast-2:123456789012:loadbalancer/app/todo-alb/50dc6c495c0c9188";
        assert_eq!(dimension_of(lb), "app/todo-alb/50dc6c495c0c9188");
        let tg = "arn:aws:elasticloadbalancing:ap-southeast-2:123456789012:targetgroup/blue/73e2d6bc24d8a067";
        assert_eq!(dimension_of(tg), "targetgroup/blue/73e2d6bc24d8a067");
        assert_eq!(dimension_of("app/x/1"), "app/x/1");
    }

    #[test]
    fn an_alb_reports_per_minute_and_leaves_out_zero_counts() {
        let groups = vec![("arn:b".to_string(), "targetgroup/b/1".to_string())];
        let profiles = [Profile::new(0.0, 10.0, 20.0)];
        let samples = [
            Sample { group: 0, at_s: 120, error: false, latency_s: 0.01 },
            Sample { group: 0, at_s: 170, error: true, latency_s: 0.03 },
        ];
        let d = datums("app/a/1", &groups, &profiles, &samples, (60, 240), 60);
        let names: Vec<(i64, &str)> =
            d.iter().map(|v| (v["Timestamp"].as_i64().unwrap(), v["MetricName"].as_str().unwrap())).collect();
        // 60 and 180 had no requests: host counts only.
        assert_eq!(names.iter().filter(|(t, _)| *t == 60).count(), 2);
        assert_eq!(names.iter().filter(|(t, _)| *t == 120).count(), 6);
        let rt = d.iter().find(|v| v["MetricName"] == "TargetResponseTime").unwrap();
        assert_eq!(rt["StatisticValues"], json!({"SampleCount": 2.0, "Sum": 0.04, "Minimum": 0.01, "Maximum": 0.03}));
        assert_eq!(rt["Unit"], "Seconds");
        assert_eq!(rt["Dimensions"][1], json!({"Name": "TargetGroup", "Value": "targetgroup/b/1"}));
    }
}
