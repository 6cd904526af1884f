//! The proposal as `pushdeploy.toml` text: every value escaped as a TOML string, every guess
//! marked `# check: …` on the line above it, what cannot be deployed said in comments. Pure.

use std::fmt::Write;

use super::propose::{Entry, Proposal, ServicePlan};
use super::smoke::{short_name, SmokeFinding, SmokeProposal};

/// The header: what observe mode does and how to enforce.
const HEADER: &str = "\
#
# It starts in observe mode: every push still deploys as configured, and verify runs every check
# and records and publishes the verdict it would give (\"would roll back: ...\"), but never rolls a
# deployment back nor answers a lifecycle hook FAILED. Watch a few verdicts (pushdeploy history
# NAME, the verdict topic); to enforce, set mode = \"enforce\" in [defaults] (or remove the line),
# run pushdeploy validate on the file and upload it again.
#
# Lines marked \"# check\" are what init could not know from the estate: read each before enforcing.
";

/// The proposal as TOML with comments.
pub fn render(p: &Proposal) -> String {
    let mut out = format!(
        "# pushdeploy.toml for cluster {}, written by `pushdeploy init` from what runs there\n# (account {}, {}).\n",
        note(&p.cluster),
        note(&p.account),
        note(&p.region)
    );
    out += HEADER;
    out += &format!("[defaults]\ncluster = {}\nstrategy = \"pin-digest\"\nmode = \"observe\"\n", s(&p.cluster));
    for plan in &p.services {
        service(&mut out, plan);
    }
    if !p.skipped.is_empty() {
        out += "\n# Services pushdeploy cannot deploy, left out:\n";
        for (name, why) in &p.skipped {
            let _ = writeln!(out, "#   {}: {}", note(name), note(why));
        }
    }
    out
}

/// A TOML string literal, escaped.
pub fn s(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

/// Text for a comment: one line, no control character.
pub fn note(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn list(values: &[String]) -> String {
    format!("[{}]", values.iter().map(|v| s(v)).collect::<Vec<_>>().join(", "))
}

fn service(out: &mut String, plan: &ServicePlan) {
    let _ = write!(out, "\n# ECS service {}", note(&plan.service));
    if !plan.foreign.is_empty() {
        out.push_str(". Not deployed by pushdeploy (every copy keeps these images as they are):");
        for (c, image, why) in &plan.foreign {
            let _ = write!(out, "\n#   container {}: {} ({})", note(c), note(image), note(why));
        }
    }
    out.push('\n');
    for (i, e) in plan.entries.iter().enumerate() {
        entry(out, plan, e);
        if i == 0 {
            smoke(out, plan);
        }
    }
}

fn entry(out: &mut String, plan: &ServicePlan, e: &Entry) {
    let _ = writeln!(out, "[[service]]\nname = {}\nservice = {}", s(&e.name), s(&plan.service));
    let _ = writeln!(out, "# the image of container(s) {}", note(&e.containers.join(", ")));
    let _ = writeln!(out, "repository = {}", s(&e.repository));
    if let Some(why) = &e.tags.check {
        let _ = writeln!(out, "# check: {}", note(why));
    }
    let _ = writeln!(out, "tags = {}", list(&e.tags.tags));
    if let Some(pattern) = &e.tags.pattern {
        let _ = writeln!(out, "# tags = {}", list(std::slice::from_ref(pattern)));
    }
}

fn smoke(out: &mut String, plan: &ServicePlan) {
    match &plan.smoke {
        SmokeFinding::Proposed(p) => proposed(out, p),
        SmokeFinding::NoLoadBalancer => unchecked(out, "the service registers with no load balancer target group"),
        SmokeFinding::Unreached(tg) => {
            unchecked(out, &format!("no HTTP or HTTPS listener rule forwards to its target group {}", short_name(tg)))
        }
    }
    if let Some((strategy, stages)) = &plan.blue_green {
        hook_hint(out, strategy, stages);
    }
}

fn proposed(out: &mut String, p: &SmokeProposal) {
    let _ = writeln!(out, "\n[service.smoke]\n# from {}", note(&p.source));
    for why in &p.checks {
        let _ = writeln!(out, "# check: {}", note(why));
    }
    let _ = writeln!(out, "url = {}", s(&p.url));
    if let Some(c) = &p.connect_to {
        let _ = writeln!(
            out,
            "# every request goes to the load balancer; the URL's host stays in TLS and Host\nconnect_to = {}",
            s(c)
        );
    }
    let _ = writeln!(out, "target_group_arn = {}", s(&p.target_group));
    out.push_str("attempts = 10\ninterval_ms = 3000\ntimeout_ms = 5000\nconsecutive = 3\n");
    let _ = writeln!(
        out,
        "\n[[service.smoke.check]]\n# check: {}\npath = {}\nstatus = 200",
        note(&p.check_path_note),
        s(&p.check_path)
    );
}

fn unchecked(out: &mut String, why: &str) {
    let _ = writeln!(
        out,
        "# No smoke test: {}, so verify judges a deployment by ECS alone\n# (its tasks start and stay up). To smoke-test it, add:\n# [service.smoke]\n# url = \"https://HOST/PATH/\"\n# [[service.smoke.check]]\n# path = \"/\"\n# status = 200",
        note(why)
    );
}

fn hook_hint(out: &mut String, strategy: &str, stages: &[String]) {
    let judged: Vec<String> = stages
        .iter()
        .filter(|s| {
            ["POST_TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"]
                .contains(&s.as_str())
        })
        .cloned()
        .collect();
    let judged = if judged.is_empty() { vec!["POST_PRODUCTION_TRAFFIC_SHIFT".to_string()] } else { judged };
    let _ = writeln!(
        out,
        "\n# check: the service deploys {} with lifecycle hooks{}: to judge new tasks before\n# production traffic, make pushdeploy's verify function its lifecycle hook and uncomment this\n# (a POST_TEST_TRAFFIC_SHIFT stage also needs test_url in [service.smoke]):\n# [service.hook]\n# stages = {}\n# timeout_minutes = 60",
        note(strategy),
        if stages.is_empty() { String::new() } else { format!(" at {}", note(&stages.join(", "))) },
        list(&judged)
    );
}
