//! The canary analysis' CloudWatch reads on the wire: verify's hand-signed AWS JSON 1.0 request
//! (`GraniteServiceVersion20100801.GetMetricData`, signed as `monitoring`) reads back, from moto
//! itself, the ALB metrics the harness published under the ALB's namespace and dimensions.
//!
//! moto answers percentile statistics with an HTTP 500, so the p95/p99 queries are left out of
//! the request read here; through the IAM guard (which answers them) `MetricsReader::window`
//! asks all five figures.

use std::time::{SystemTime, UNIX_EPOCH};

use pushdeploy::aws::signed_json::{read_failure, SignedJsonClient, CLOUDWATCH};
use pushdeploy::rules::alb_metrics::{dimension_of, query, read_figures, NAMESPACE};
use serde_json::{json, Value};
use testkit::clients::Aws;
use testkit::moto::Moto;

const LB: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/todo-alb/50dc6c495c0c9188";
const BLUE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/todo-blue/6d0ecf831eec9f09";
const GREEN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/todo-green/1a2b3c4d5e6f7a8b";

/// One datapoint as the harness publishes it (PutMetricData, AWS JSON 1.0).
fn datum(name: &str, group: &str, at: i64, value: f64, unit: &str) -> Value {
    json!({
        "MetricName": name,
        "Dimensions": [
            { "Name": "LoadBalancer", "Value": dimension_of(LB).unwrap() },
            { "Name": "TargetGroup", "Value": dimension_of(group).unwrap() },
        ],
        "Timestamp": at,
        "Value": value,
        "Unit": unit,
    })
}

async fn put(client: &SignedJsonClient, data: Vec<Value>) {
    let body = json!({ "Namespace": NAMESPACE, "MetricData": data }).to_string();
    let read = |status: u16, bytes: &[u8]| if status == 200 { Ok(()) } else { Err(read_failure(status, bytes)) };
    client.call("PutMetricData", &body, read).await.expect("moto takes the metrics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_metric_data_reads_back_what_the_alb_published() {
    let moto = Moto::start();
    let aws = Aws::new(&moto.endpoint).await;
    // The harness publishes; verify's client (the same signer, its own request) reads.
    let client = SignedJsonClient::new(&aws.sdk, CLOUDWATCH);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let minute = now / 60 * 60 - 180;
    put(
        &client,
        vec![
            datum("RequestCount", BLUE, minute + 5, 11_400.0, "Count"),
            datum("RequestCount", BLUE, minute + 65, 11_400.0, "Count"),
            datum("HTTPCode_Target_5XX_Count", BLUE, minute + 65, 23.0, "Count"),
            datum("RequestCount", GREEN, minute + 5, 600.0, "Count"),
            datum("RequestCount", GREEN, minute + 65, 600.0, "Count"),
            datum("HTTPCode_Target_5XX_Count", GREEN, minute + 5, 24.0, "Count"),
            datum("UnHealthyHostCount", GREEN, minute + 65, 1.0, "Count"),
            // Outside the window: not counted.
            datum("RequestCount", GREEN, minute - 600, 9_999.0, "Count"),
        ],
    )
    .await;

    let groups = vec![dimension_of(BLUE).unwrap(), dimension_of(GREEN).unwrap()];
    let mut q = query(&dimension_of(LB).unwrap(), &groups, minute, minute + 120);
    let all = q["MetricDataQueries"].as_array().unwrap().len();
    q["MetricDataQueries"]
        .as_array_mut()
        .unwrap()
        .retain(|x| !x["MetricStat"]["Stat"].as_str().unwrap().starts_with('p'));
    assert_eq!(
        (all, q["MetricDataQueries"].as_array().unwrap().len()),
        (12, 8),
        "six figures a group, two of them percentiles"
    );
    let read = |status: u16, bytes: &[u8]| match status {
        200 => read_figures(&groups, bytes).map_err(|e| (e, false)),
        _ => Err(read_failure(status, bytes)),
    };
    let figures = client.call("GetMetricData", &q.to_string(), read).await.expect("moto answers GetMetricData");
    let (blue, green) = (&figures[0], &figures[1]);
    assert_eq!(blue.target_group, "targetgroup/todo-blue/6d0ecf831eec9f09");
    assert_eq!((blue.requests, blue.errors_5xx, blue.max_unhealthy), (22_800.0, 23.0, None));
    assert_eq!((green.requests, green.errors_5xx, green.max_unhealthy), (1_200.0, 24.0, Some(1.0)));
    assert_eq!((green.p95_ms, green.p99_ms), (None, None), "not asked of moto");
}
