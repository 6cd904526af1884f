//! The command line: every subcommand, its flags and its --help text (clap's derive), parsed in
//! `main` and carried out by `commands` and `validate`.

use clap::{Args, Parser, Subcommand};

// No doc comment on `Cli`: clap would take it as the long about and change `--help`.
#[derive(Parser)]
#[command(name = "pushdeploy", version, about = "Continuous deployment for AWS ECS: the operator's command")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
        /// Then ask the deployed verify function to send one GET to each smoke URL of the LIVE
        /// config (url and test_url, with connect_to and the test_headers), and print each
        /// status, redirect, TLS error, the address connected to and the time. Needs
        /// lambda:InvokeFunction on verify.
        #[arg(long)]
        live: bool,
        /// With --live: only this configured service.
        #[arg(long, requires = "live")]
        service: Option<String>,
        /// With --live: the verify function (the stack's VerifyFunctionName output).
        #[arg(long, value_name = "NAME", env = "PUSHDEPLOY_VERIFY_FUNCTION", default_value = "pushdeploy-verify")]
        verify_function: String,
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
pub(crate) struct Function {
    /// The deploy function's name or ARN (the stack's DeployFunctionName output).
    #[arg(long = "function", env = "PUSHDEPLOY_FUNCTION", default_value = "pushdeploy-deploy")]
    pub(crate) name: String,
}

/// The configured services and where their records are.
#[derive(Args)]
pub(crate) struct Scope {
    #[command(flatten)]
    pub(crate) from: From,
    /// The config: a file or an s3:// URL.
    #[arg(long, env = "PUSHDEPLOY_CONFIG", default_value = "pushdeploy.toml")]
    pub(crate) config: String,
}

/// Where the records are.
#[derive(Args)]
pub(crate) struct From {
    /// The artifact bucket (the stack's ArtifactBucket output).
    #[arg(long, env = "PUSHDEPLOY_BUCKET")]
    pub(crate) bucket: String,
}
