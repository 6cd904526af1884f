//! Percentile statistics of ALB response times, answered from the simulated requests.
//!
//! CloudWatch computes `p95`, `p99.9`, `tm90` … from the datapoints' distribution; moto keeps no
//! distribution and fails serializing the empty values it answers for them. So the guard strips
//! every query with such a statistic from a GetMetricData before moto sees it, and adds its
//! result computed from the raw latencies ([`Latencies`]), shaped as the API model's
//! `MetricDataResult` (Id, Label, Timestamps, Values, StatusCode): one value per Period bucket
//! from StartTime that has requests, in seconds as ALB reports `TargetResponseTime`, newest first
//! unless `ScanBy` is `TimestampAscending`.

use serde_json::{json, Value};

use super::Latencies;

/// True for the extended statistics CloudWatch computes from a distribution (`p95`, `p99.9`,
/// `tm90`, `TM(10%:90%)`, `wm…`, `tc…`, `ts…`, `PR(…)`); false for Sum, Average, Maximum, ….
pub fn is_percentile(stat: &str) -> bool {
    let lower = stat.to_ascii_lowercase();
    ["p", "tm", "wm", "tc", "ts", "pr"].iter().any(|prefix| {
        lower.strip_prefix(prefix).is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit() || c == '('))
    })
}

/// Splits a GetMetricData request: the request without its percentile queries (what moto can
/// answer), and those queries.
pub fn split(request: &Value) -> (Value, Vec<Value>) {
    let mut forwarded = request.clone();
    let mut ours = Vec::new();
    if let Some(queries) = forwarded["MetricDataQueries"].as_array_mut() {
        let (p, rest): (Vec<Value>, Vec<Value>) =
            queries.drain(..).partition(|q| q["MetricStat"]["Stat"].as_str().is_some_and(is_percentile));
        ours = p;
        *queries = rest;
    }
    (forwarded, ours)
}

/// The `MetricDataResult` of one percentile query over `[start_s, end_s)` (ReturnData false: none).
pub fn answer(latencies: &Latencies, query: &Value, start_s: i64, end_s: i64, ascending: bool) -> Option<Value> {
    if query["ReturnData"] == false {
        return None;
    }
    let stat = &query["MetricStat"];
    let metric = &stat["Metric"];
    let name = metric["MetricName"].as_str().unwrap_or_default();
    let stat_name = stat["Stat"].as_str().unwrap_or_default();
    let label = query["Label"].as_str().map_or_else(|| format!("{name} {stat_name}"), str::to_string);
    let dims: Vec<(&str, &str)> = metric["Dimensions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| Some((d["Name"].as_str()?, d["Value"].as_str()?)))
        .collect();
    let lb = dims.iter().find(|(n, _)| *n == "LoadBalancer").map(|(_, v)| *v);
    let tg = dims.iter().find(|(n, _)| *n == "TargetGroup").map(|(_, v)| *v);
    let mut points = Vec::new();
    // Only what the simulator published: TargetResponseTime under exactly these two dimensions.
    if let (true, 2, Some(lb), Some(tg)) =
        (metric["Namespace"] == "AWS/ApplicationELB" && name == "TargetResponseTime", dims.len(), lb, tg)
    {
        let period = stat["Period"].as_i64().unwrap_or(60).max(1);
        let samples = latencies.between(lb, tg, start_s, end_s);
        let mut bucket = start_s;
        while bucket < end_s {
            let mut values: Vec<f64> =
                samples.iter().filter(|(t, _)| (bucket..bucket + period).contains(t)).map(|(_, v)| *v).collect();
            if let Some(v) = statistic(stat_name, &mut values) {
                points.push((bucket, v));
            }
            bucket += period;
        }
    }
    if !ascending {
        points.reverse();
    }
    let (timestamps, values): (Vec<i64>, Vec<f64>) = points.into_iter().unzip();
    Some(
        json!({"Id": query["Id"], "Label": label, "Timestamps": timestamps, "Values": values, "StatusCode": "Complete"}),
    )
}

/// `pNN` (nearest rank) or `tmNN` (the mean of the lowest NN %) of `values`; None without values
/// or for a statistic the stand-in does not compute.
pub fn statistic(stat: &str, values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = |q: f64| ((q / 100.0 * values.len() as f64).ceil() as usize).clamp(1, values.len());
    if let Some(q) = stat.strip_prefix('p').and_then(|q| q.parse::<f64>().ok()) {
        return Some(values[rank(q) - 1]);
    }
    let q = stat.strip_prefix("tm").and_then(|q| q.parse::<f64>().ok())?;
    let kept = &values[..rank(q)];
    Some(kept.iter().sum::<f64>() / kept.len() as f64)
}

/// moto's answer to the forwarded request with the percentile results added, every result in
/// the order the request asked for them.
pub fn merge(request: &Value, moto: Value, ours: Vec<Value>) -> Value {
    let mut all: Vec<Value> = moto["MetricDataResults"].as_array().cloned().unwrap_or_default();
    all.extend(ours);
    let order: Vec<&str> =
        request["MetricDataQueries"].as_array().into_iter().flatten().filter_map(|q| q["Id"].as_str()).collect();
    all.sort_by_key(|r| order.iter().position(|id| r["Id"] == *id).unwrap_or(usize::MAX));
    let mut out = if moto.is_object() { moto } else { json!({}) };
    out["MetricDataResults"] = Value::Array(all);
    if out["Messages"].is_null() {
        out["Messages"] = json!([]);
    }
    out
}

/// Every percentile result a GetMetricData `request` asks for.
pub fn answers(latencies: &Latencies, request: &Value, ours: &[Value]) -> Vec<Value> {
    let time = |k: &str| request[k].as_f64().map_or(0, |t| t.floor() as i64);
    let ascending = request["ScanBy"] == "TimestampAscending";
    ours.iter().filter_map(|q| answer(latencies, q, time("StartTime"), time("EndTime"), ascending)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_statistics_are_told_from_the_plain_ones() {
        for s in ["p95", "p99.9", "tm90", "TM(10%:90%)", "wm99", "PR(:0.5)", "tc90", "ts90"] {
            assert!(is_percentile(s), "{s}");
        }
        for s in ["Sum", "Average", "Maximum", "Minimum", "SampleCount", "p", "tm"] {
            assert!(!is_percentile(s), "{s}");
        }
    }

    #[test]
    fn nearest_rank_percentiles_and_trimmed_means() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(statistic("p95", &mut v), Some(95.0));
        assert_eq!(statistic("p99.9", &mut v), Some(100.0));
        assert_eq!(statistic("tm10", &mut v), Some(5.5));
        assert_eq!(statistic("p50", &mut []), None);
        assert_eq!(statistic("wm99", &mut v), None);
    }

    #[test]
    fn percentile_queries_are_answered_per_period_and_merged_in_order() {
        let lat = Latencies::default();
        for (t, v) in [(0, 0.01), (30, 0.02), (60, 0.5), (119, 0.3), (120, 9.0)] {
            lat.record("app/a/1", "targetgroup/g/2", t, v);
        }
        let metric = |stat: &str| {
            json!({"Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": "TargetResponseTime",
            "Dimensions": [{"Name": "LoadBalancer", "Value": "app/a/1"}, {"Name": "TargetGroup", "Value": "targetgroup/g/2"}]},
            "Period": 60, "Stat": stat})
        };
        let request = json!({"StartTime": 0, "EndTime": 120, "MetricDataQueries": [
            {"Id": "p", "MetricStat": metric("p95")}, {"Id": "s", "MetricStat": metric("Sum")}]});
        let (forwarded, ours) = split(&request);
        assert_eq!(forwarded["MetricDataQueries"].as_array().unwrap().len(), 1);
        let results = answers(&lat, &request, &ours);
        assert_eq!(results[0]["Timestamps"], json!([60, 0]), "newest first; 120 is past EndTime");
        assert_eq!(results[0]["Values"], json!([0.5, 0.02]));
        assert_eq!(results[0]["Label"], "TargetResponseTime p95");
        let moto =
            json!({"MetricDataResults": [{"Id": "s", "Values": [], "Timestamps": [], "StatusCode": "Complete"}]});
        let merged = merge(&request, moto, results);
        let ids: Vec<&str> =
            merged["MetricDataResults"].as_array().unwrap().iter().map(|r| r["Id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["p", "s"]);
    }
}
