//! `pushdeploy`: the operator's command. `validate` checks a `pushdeploy.toml` offline with the
//! same validation the functions apply before they act on it; `status`, `history`, `show` and
//! `report` say what pushdeploy did and does, from the records, the leases and ECS; the manual
//! actions invoke the deploy function; `redrive` replays what the functions parked.
//!
//! Exit status: 0 done; 1 the answer needs attention (an invalid config, a failed last
//! deployment, an unknown id); 2 the command could not run (unreadable input, AWS refused).

mod insight;
mod invoke;
mod page;
mod queue;
mod redrive;
mod render;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use pushdeploy::config::{Config, Limits};
use pushdeploy::live_config::Location;
use pushdeploy::text::{json_printable, printable};

use insight::{Aws, Failed};

#[derive(Parser)]
#[command(name = "pushdeploy", version, about = "Continuous deployment for AWS ECS: the operator's command")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a pushdeploy.toml as the functions will, before uploading it.
    ///
    /// Exit status: 0 valid, 1 invalid (the file, the key and what is wrong are printed), 2 unreadable.
    ///
    /// Exit status 0 with a `warning:` line for what may fail on AWS though the file is valid (a
    /// test listener verify may not reach).
    ///
    /// Example: pushdeploy validate pushdeploy.toml --cluster todo-cluster --verify-timeout 300
    Validate {
        /// The config file.
        file: String,
        /// A cluster the stack manages (the template's ClusterName); repeat for several. Unchecked when absent.
        #[arg(long = "cluster")]
        clusters: Vec<String>,
        /// verify's timeout in seconds (the template's VerifyTimeoutSeconds, default 300): every
        /// smoke budget must fit, as both functions check it (PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS).
        #[arg(long, default_value_t = 300)]
        verify_timeout: u64,
        /// verify's memory in MB (the template's VerifyMemorySize): every smoke test's response
        /// bodies at their worst must fit.
        #[arg(long, default_value_t = 128)]
        verify_memory: u64,
        /// verify runs in the VPC (the stack has VerifySubnetIds): a test listener on its own port
        /// is within its reach. Without it, such a test_url is warned about.
        #[arg(long)]
        verify_in_vpc: bool,
    },
    /// One row per configured service: what ECS runs, the last deployment and its verdict, a
    /// rollout in flight.
    ///
    /// Exit status: 0; 1 when a service's last deployment failed or was rolled back; 2 on an error.
    ///
    /// Example: pushdeploy status --config pushdeploy.toml --bucket my-pushdeploy-artifacts
    Status {
        #[command(flatten)]
        scope: Scope,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A service's deployments and rollbacks, newest first: when, tag@digest, trigger, outcome,
    /// lead time, reason.
    ///
    /// Example: pushdeploy history backend --limit 10
    History {
        /// The service's name in the config.
        service: String,
        /// How many to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        scope: Scope,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One deployment: its timeline, smoke results and task definitions.
    ///
    /// Exit status: 0; 1 when no record has that id; 2 on an error.
    ///
    /// Example: pushdeploy show ecs-svc-5180473431224946458
    Show {
        /// The record id (`ecs-svc-…`, as history and the notifications print it).
        id: String,
        #[command(flatten)]
        from: From,
        /// Print the record's JSON.
        #[arg(long)]
        json: bool,
    },
    /// The four DORA keys per service and overall, from the records alone: deployments (and per
    /// day, with DORA's band), lead time, change failure rate, time to recover.
    ///
    /// Example: pushdeploy report --since 30d --html report.html
    Report {
        /// Start of the window: 30d, 12h, 2w, 90m, or an RFC 3339 time. The window ends now.
        #[arg(long, default_value = "30d")]
        since: String,
        /// Only this service (its name in the config).
        #[arg(long)]
        service: Option<String>,
        /// Print exactly {"since", "until", "services": {NAME: KEYS}, "overall": KEYS}.
        #[arg(long)]
        json: bool,
        /// Also write the report as one self-contained HTML page (charts inline, no script) to FILE.
        #[arg(long, value_name = "FILE")]
        html: Option<std::path::PathBuf>,
        #[command(flatten)]
        from: From,
    },
    /// Deploy TAG of the service's repository now (the deploy function, through Lambda Invoke).
    ///
    /// Exit status: 0 started or already running; 1 refused (the reason is printed); 2 the
    /// invocation failed.
    ///
    /// A digest pushdeploy rolled back (and has not verified since) is refused, quoting the
    /// rollback's reason, unless --force.
    ///
    /// Example: pushdeploy deploy backend v1.4.2
    Deploy {
        /// The service's name in the config.
        service: String,
        /// The tag to deploy.
        tag: String,
        /// Deploy it even when pushdeploy rolled that digest back.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        function: Function,
    },
    /// Roll new tasks of the digest the service runs now (never what a tag names by then).
    ///
    /// A digest pushdeploy rolled back is refused unless --force.
    ///
    /// Example: pushdeploy redeploy frontend
    Redeploy {
        /// The service's name in the config.
        service: String,
        /// Roll it even when pushdeploy rolled that digest back.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        function: Function,
    },
    /// Return the service to its last verified deployment before the current one.
    ///
    /// Example: pushdeploy rollback backend
    Rollback {
        /// The service's name in the config.
        service: String,
        #[command(flatten)]
        function: Function,
    },
    /// What deploy would do (the revision, every field it changes), changing nothing.
    ///
    /// Example: pushdeploy plan backend v1.5.0
    Plan {
        /// The service's name in the config.
        service: String,
        /// The tag to plan for (default: the watched tag).
        tag: Option<String>,
        /// Plan the forced deploy (past a rollback of the tag's digest).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        function: Function,
    },
    /// Replay what the functions parked in the failed-invocations queue, and nothing else.
    ///
    /// Replays a message only when it was parked for the stack's deploy or verify function (a
    /// Lambda failure record's functionArn, an EventBridge dead letter's TARGET_ARN, and its
    /// RULE_ARN when --rule-arn names the rules) and its event is one that function's own rule
    /// delivers: an ECR push to deploy, an ECS deployment state change to verify. A manual
    /// action or a lifecycle hook invocation is never replayed. Every message is shown first,
    /// one line each; then one question for the whole list (y/N) unless --yes. Replays are
    /// asynchronous invocations, oldest event first; a message is deleted only once Lambda has
    /// accepted its event. Skipped messages stay in the queue (--delete-skipped deletes them).
    ///
    /// Exit status: 0 every message read was replayed (or deleted); 1 messages are left in the
    /// queue (skipped, declined, a dry run); 2 a replay or delete failed, or the queue could not be read.
    ///
    /// Example: pushdeploy redrive --queue-url https://sqs.ap-southeast-2.amazonaws.com/123456789012/pushdeploy-FailedInvocations-AbC --dry-run
    Redrive {
        /// The failed-invocations queue (the stack's FailedInvocationsQueueUrl output).
        #[arg(long, env = "PUSHDEPLOY_QUEUE_URL")]
        queue_url: String,
        #[command(flatten)]
        function: Function,
        /// The verify function's name or ARN (the stack's VerifyFunctionName output).
        #[arg(
            long = "verify-function",
            value_name = "NAME",
            env = "PUSHDEPLOY_VERIFY_FUNCTION",
            default_value = "pushdeploy-verify"
        )]
        verify_function: String,
        /// The ARN of one of the stack's two EventBridge rules (DeployFunctionEcrPush,
        /// VerifyFunctionEcsDeployment); repeat for both. A dead letter from any other rule is then skipped.
        #[arg(long = "rule-arn", value_name = "ARN")]
        rules: Vec<String>,
        /// Show the messages and what would happen to each; replay and delete nothing.
        #[arg(long, conflicts_with_all = ["yes", "delete_skipped"])]
        dry_run: bool,
        /// Replay without asking.
        #[arg(long)]
        yes: bool,
        /// Delete the skipped messages after showing them (they are never replayed).
        #[arg(long)]
        delete_skipped: bool,
        /// Read at most this many messages.
        #[arg(long, default_value_t = 100)]
        max: usize,
    },
}

/// Which deploy function to invoke.
#[derive(Args)]
struct Function {
    /// The deploy function's name or ARN (the stack's DeployFunctionName output).
    #[arg(long = "function", env = "PUSHDEPLOY_FUNCTION", default_value = "pushdeploy-deploy")]
    name: String,
}

/// The configured services and where their records are.
#[derive(Args)]
struct Scope {
    #[command(flatten)]
    from: From,
    /// The config: a file or an s3:// URL.
    #[arg(long, env = "PUSHDEPLOY_CONFIG", default_value = "pushdeploy.toml")]
    config: String,
}

/// Where the records are.
#[derive(Args)]
struct From {
    /// The artifact bucket (the stack's ArtifactBucket output).
    #[arg(long, env = "PUSHDEPLOY_BUCKET")]
    bucket: String,
}

fn main() -> ExitCode {
    let command = Cli::parse().command;
    if let Command::Validate { .. } = command {
        return run_validate(command);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    match runtime.block_on(run(command)) {
        Ok(code) => code,
        Err(Failed(why)) => {
            eprintln!("pushdeploy: {}", error_text(&why));
            ExitCode::from(2)
        }
    }
}

/// An error for the terminal: it may quote an S3 key, a record, a config or an AWS message, so no
/// character in it may act on the terminal; its own line breaks (a TOML parse error's snippet) stay.
fn error_text(why: &str) -> String {
    why.lines().map(printable).collect::<Vec<_>>().join("\n")
}

/// Prints `value` as pretty JSON, the characters that would act on a terminal (C1 controls, DEL,
/// bidi overrides, which serde_json leaves raw) escaped: the same JSON for `jq`, safe on a screen.
fn print_json(value: &impl serde::Serialize) {
    println!("{}", json_printable(&serde_json::to_string_pretty(value).expect("output always serializes")));
}

/// Reads the config from a file or an s3:// URL.
async fn load_config(aws: &Aws, source: &str) -> Result<Config, Failed> {
    let text = match Location::parse(source)? {
        Location::File(path) => {
            std::fs::read_to_string(&path).map_err(|e| Failed(format!("cannot read the config {path}: {e}")))?
        }
        Location::S3 { bucket, key } => {
            let store = aws.store.in_bucket(bucket);
            let bytes = store.get(&key).await?.ok_or_else(|| Failed(format!("no config at {source}")))?;
            String::from_utf8(bytes).map_err(|_| Failed(format!("{source} is not UTF-8")))?
        }
    };
    Ok(Config::parse(&text, source)?)
}

async fn run(command: Command) -> Result<ExitCode, Failed> {
    match command {
        Command::Validate { .. } => unreachable!("validate runs without a runtime"),
        Command::Status { scope, json } => {
            let aws = Aws::from_env(&scope.from.bucket).await?;
            let config = load_config(&aws, &scope.config).await?;
            let services = insight::status(&aws, &config).await?;
            if json {
                print_json(&services);
            } else {
                print!("{}", render::status(&services));
                println!();
            }
            Ok(if insight::needs_attention(&services) { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Command::History { service, limit, scope, json } => {
            let aws = Aws::from_env(&scope.from.bucket).await?;
            let config = load_config(&aws, &scope.config).await?;
            let Some(svc) = config.service(&service) else {
                let known: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
                return Err(Failed(format!("no service {service:?} in the config; it has {known:?}")));
            };
            let records = insight::history(&aws, svc, limit).await?;
            if json {
                print_json(&records);
            } else {
                println!("{}", render::history(&records));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { id, from, json } => {
            let aws = Aws::from_env(&from.bucket).await?;
            match insight::show(&aws, &id).await? {
                Some(r) if json => print_json(&r),
                Some(r) => print!("{}", render::show(&r)),
                None => {
                    eprintln!(
                        "pushdeploy: no deployment record {} in s3://{}/deployments/",
                        printable(&id),
                        printable(&from.bucket)
                    );
                    return Ok(ExitCode::from(1));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Deploy { service, tag, force, function } => {
            act(&function.name, invoke::Action::Deploy(&service, &tag, invoke::Force(force))).await
        }
        Command::Redeploy { service, force, function } => {
            act(&function.name, invoke::Action::Redeploy(&service, invoke::Force(force))).await
        }
        Command::Rollback { service, function } => act(&function.name, invoke::Action::Rollback(&service)).await,
        Command::Plan { service, tag, force, function } => {
            act(&function.name, invoke::Action::Plan(&service, tag.as_deref(), invoke::Force(force))).await
        }
        Command::Redrive { queue_url, function, verify_function, rules, dry_run, yes, delete_skipped, max } => {
            redrive::run(redrive::Options {
                queue_url,
                deploy: function.name,
                verify: verify_function,
                rules,
                dry_run,
                yes,
                delete_skipped,
                max,
            })
            .await
        }
        Command::Report { since, service, json, html, from } => {
            let now = insight::now();
            let since = insight::parse_since(&since, now).map_err(Failed)?;
            let aws = Aws::from_env(&from.bucket).await?;
            let window = pushdeploy::report::Window { since, until: now };
            let reported = insight::report(&aws, window, service.as_deref()).await?;
            if json {
                if reported.skipped > 0 {
                    eprintln!(
                        "pushdeploy: {} object(s) were not deployment records and were skipped",
                        reported.skipped
                    );
                }
                print_json(&reported.report);
            } else {
                print!("{}", render::report(&reported.report, reported.skipped));
            }
            if let Some(path) = html {
                let page = page::render(&reported.report, &reported.records, window, &from.bucket, reported.skipped)
                    .map_err(Failed)?;
                std::fs::write(&path, page).map_err(|e| Failed(format!("cannot write {}: {e}", path.display())))?;
                eprintln!("pushdeploy: wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Invokes the deploy function with a manual action and prints its answer.
async fn act(function: &str, action: invoke::Action<'_>) -> Result<ExitCode, Failed> {
    let answer = invoke::invoke(function, &action).await?;
    let (text, done) = invoke::describe(&answer);
    print!("{text}");
    Ok(match answer {
        invoke::Answer::Failed(..) => ExitCode::from(2),
        _ if done => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

fn run_validate(command: Command) -> ExitCode {
    match command {
        Command::Validate { file, clusters, verify_timeout, verify_memory, verify_in_vpc } => {
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("pushdeploy validate: cannot read {file}: {e}");
                    return ExitCode::from(2);
                }
            };
            let limits = Limits {
                clusters: (!clusters.is_empty()).then_some(clusters),
                smoke_budget_ms: Some(pushdeploy::timing::smoke_budget_ms(verify_timeout)),
                verify_memory_mb: Some(verify_memory),
            };
            match Config::parse(&text, &file).and_then(|c| c.check_limits(&limits).map(|()| c)) {
                Ok(config) => {
                    println!("{file}: valid, {} service(s)", config.services.len());
                    for s in &config.services {
                        let smoke = match (&s.smoke, &s.hook) {
                            (None, _) => "no smoke test".to_string(),
                            (Some(m), None) => format!("smoke test, worst case {} s", m.budget_ms().div_ceil(1000)),
                            (Some(m), Some(h)) => format!(
                                "lifecycle hook at {}: {} s at worst per invocation, within the hook's {} min; FAILED after {} s stuck",
                                h.stages.iter().map(|st| st.as_str()).collect::<Vec<_>>().join(", "),
                                m.invocation_ms().div_ceil(1000),
                                h.timeout_minutes,
                                h.stuck_ms / 1000
                            ),
                        };
                        println!(
                            "  {:<12} {}/{} ← {}:{} ({smoke})",
                            s.name,
                            s.cluster,
                            s.service,
                            s.repository,
                            s.tags.iter().map(|t| t.to_string()).collect::<Vec<_>>().join("|")
                        );
                        if let Some(why) = s.test_listener_warning(verify_in_vpc) {
                            println!("  {:<12} warning: {}", "", printable(&why));
                        }
                        if s.base == pushdeploy::config::Base::Family {
                            let trusted: Vec<&str> = s.trusted_registrants.iter().map(|p| p.as_str()).collect();
                            let hold = if s.hold_base_changes {
                                "; a push waits for an operator when the base changes more than the image"
                            } else {
                                ""
                            };
                            println!(
                                "  {:<12} base: the family's newest revision registered by {}{hold}",
                                "",
                                trusted.join(", ")
                            );
                        }
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{}", error_text(&e.to_string()));
                    ExitCode::from(1)
                }
            }
        }
        _ => unreachable!("only validate"),
    }
}
