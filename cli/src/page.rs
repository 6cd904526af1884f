//! `report --html FILE`: one self-contained page (no script, no CDN): the four keys per service,
//! deployments per day coloured by outcome, the lead-time distribution and the last 20
//! deployments. HTML from a minijinja template, charts drawn by plotters as inline SVG.

use plotters::prelude::*;
use pushdeploy::domain::record::{epoch_seconds, DeploymentRecord, Status};
use pushdeploy::rules::report::{is_deployment, Keys, Report, Window};
use serde::Serialize;

use crate::insight::{started, trigger_name};
use crate::render::duration;

/// The template, compiled into the binary.
const TEMPLATE: &str = include_str!("../templates/report.html");
/// How many deployments the page lists.
const LAST: usize = 20;

#[derive(Serialize)]
struct Row {
    name: String,
    deployments: usize,
    per_day: String,
    band: &'static str,
    lead_median: String,
    lead_p90: String,
    failure_rate: String,
    recovery: String,
}

impl Row {
    fn of(name: &str, k: &Keys) -> Row {
        let secs = |v: Option<f64>| v.map_or("—".to_string(), duration);
        Row {
            name: name.to_string(),
            deployments: k.deployments,
            per_day: format!("{:.2}", k.per_day),
            band: k.band.as_str(),
            lead_median: secs(k.lead_time_seconds.median),
            lead_p90: secs(k.lead_time_seconds.p90),
            failure_rate: crate::render::failure_rate(k),
            recovery: secs(k.recovery_seconds.median),
        }
    }
}

#[derive(Serialize)]
struct Listed {
    started: String,
    service: String,
    image: String,
    trigger: String,
    status: &'static str,
    reason: Option<String>,
    timeline: Vec<pushdeploy::domain::record::TimelineEntry>,
}

/// Renders the page for `report` over `records` (those the report was computed from).
pub fn render(
    report: &Report,
    records: &[DeploymentRecord],
    window: Window,
    bucket: &str,
    skipped: usize,
) -> Result<String, String> {
    let mut rows: Vec<Row> = report.services.iter().map(|(n, k)| Row::of(n, k)).collect();
    rows.push(Row::of("overall", &report.overall));
    let mut in_window: Vec<&DeploymentRecord> = records
        .iter()
        .filter(|r| is_deployment(r) && r.started_at().is_some_and(|t| t >= window.since && t <= window.until))
        .collect();
    in_window.sort_by(|a, b| b.started_at().unwrap_or(0.0).total_cmp(&a.started_at().unwrap_or(0.0)));
    let last: Vec<Listed> = in_window
        .iter()
        .take(LAST)
        .map(|r| Listed {
            started: started(r),
            service: r.name.clone(),
            image: if r.tag.is_empty() { r.image_uri.clone() } else { format!("{}@{}", r.tag, r.short_digest()) },
            trigger: trigger_name(&r.trigger),
            status: r.status.as_str(),
            reason: r.reason.clone(),
            timeline: r.timeline.clone(),
        })
        .collect();
    let per_day_svg = per_day_chart(&in_window, window).map_err(|e| format!("drawing the per-day chart: {e}"))?;
    // Pushes only, as the report's lead time counts them: a manual deploy's image was pushed whenever.
    let leads: Vec<f64> = in_window.iter().filter(|r| r.is_push()).filter_map(|r| r.lead_time_seconds()).collect();
    let lead_svg = lead_time_chart(&leads).map_err(|e| format!("drawing the lead-time chart: {e}"))?;
    let mut env = minijinja::Environment::new();
    env.add_template("report.html", TEMPLATE).map_err(|e| e.to_string())?;
    let page = env.get_template("report.html").map_err(|e| e.to_string())?;
    page.render(minijinja::context! {
        since => &report.since,
        until => &report.until,
        days => format!("{:.0}", window.days()),
        bucket => bucket,
        rows => rows,
        skipped => skipped,
        per_day_svg => per_day_svg,
        lead_svg => lead_svg,
        last => last,
    })
    .map_err(|e| format!("rendering the page: {e}"))
}

/// The outcome bands a day's bar is stacked from, bottom up, with their colours.
const OUTCOMES: [(&str, RGBColor); 3] = [
    ("verified", RGBColor(26, 127, 55)),
    ("failed or rolled back", RGBColor(207, 34, 46)),
    ("in flight", RGBColor(154, 103, 0)),
];

fn outcome_of(s: Status) -> usize {
    match s {
        Status::Verified | Status::Completed => 0,
        Status::Failed | Status::RolledBack | Status::RollbackFailed => 1,
        Status::Started => 2,
    }
}

/// Stacked bars: deployments started each day of the window, by outcome.
fn per_day_chart(records: &[&DeploymentRecord], window: Window) -> Result<String, Box<dyn std::error::Error>> {
    let days = window.days().ceil().max(1.0) as usize;
    let mut counts = vec![[0u32; 3]; days];
    for r in records {
        let Some(t) = r.timeline.iter().find(|e| e.event == "started").and_then(|e| epoch_seconds(&e.at)) else {
            continue;
        };
        let day = (((t - window.since) / 86_400.0).floor() as usize).min(days - 1);
        counts[day][outcome_of(r.status)] += 1;
    }
    let top = counts.iter().map(|c| c.iter().sum::<u32>()).max().unwrap_or(0).max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 320)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(40)
            .build_cartesian_2d(0u32..days as u32, 0u32..top + 1)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(format!("day of the window (from {})", pushdeploy::domain::record::rfc3339(window.since)))
            .y_desc("deployments")
            .x_labels(days.min(15))
            .draw()?;
        for (i, (label, colour)) in OUTCOMES.iter().enumerate() {
            let bars = counts.iter().enumerate().filter(|(_, c)| c[i] > 0).map(|(d, c)| {
                let below: u32 = c[..i].iter().sum();
                Rectangle::new([(d as u32, below), (d as u32 + 1, below + c[i])], colour.filled())
            });
            chart
                .draw_series(bars)?
                .label(*label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// A histogram of lead times, in minutes.
fn lead_time_chart(leads: &[f64]) -> Result<String, Box<dyn std::error::Error>> {
    let minutes: Vec<u32> = leads.iter().map(|s| (s / 60.0).floor().max(0.0) as u32).collect();
    let width = minutes.iter().copied().max().unwrap_or(0) + 2;
    let mut buckets = vec![0u32; width as usize];
    for m in &minutes {
        buckets[*m as usize] += 1;
    }
    let top = buckets.iter().copied().max().unwrap_or(0).max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 280)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(40)
            .build_cartesian_2d((0u32..width).into_segmented(), 0u32..top + 1)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(format!("minutes from push to verified ({} verified pushes)", leads.len()))
            .y_desc("deployments")
            .draw()?;
        chart.draw_series(
            Histogram::vertical(&chart)
                .style(RGBColor(9, 105, 218).filled())
                .margin(4)
                .data(minutes.iter().map(|m| (*m, 1))),
        )?;
        root.present()?;
    }
    Ok(svg)
}
