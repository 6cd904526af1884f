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
    /// It checks against the limits the stack's functions are deployed with: verify's Timeout,
    /// MemorySize and VpcConfig and the functions' environment (PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS,
    /// PUSHDEPLOY_VERIFY_MEMORY_MB, PUSHDEPLOY_CLUSTERS), read with Lambda GetFunctionConfiguration;
    /// a flag overrides its value. It prints where each value came from, and says so when it cannot
    /// read them (then the template's defaults stand in). --offline reads nothing.
    ///
    /// Exit status: 0 valid, 1 invalid (the file, the key and what is wrong are printed), 2 unreadable.
    ///
    /// Exit status 0 with a `warning:` line for what may fail on AWS though the file is valid (a
    /// test listener verify may not reach).
    ///
    /// Example: pushdeploy validate pushdeploy.toml --function my-stack-deploy --verify-function my-stack-verify
    Validate {
        /// The config file.
        file: String,
        /// A cluster the stack manages (the template's ClusterName); repeat for several. Unchecked when absent.
        #[arg(long = "cluster")]
        clusters: Vec<String>,
        /// verify's timeout in seconds, instead of the deployed one (the template's
        /// VerifyTimeoutSeconds, default 300): every smoke budget must fit, as both functions
        /// check it (PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS).
        #[arg(long)]
        verify_timeout: Option<u64>,
        /// verify's memory in MB, instead of the deployed one (the template's VerifyMemorySize,
        /// default 128): every smoke test's response bodies at their worst must fit.
        #[arg(long)]
        verify_memory: Option<u64>,
        /// verify runs in the VPC (the stack has VerifySubnetIds): a test listener on its own port
        /// is within its reach. Without it, such a test_url is warned about.
        #[arg(long)]
        verify_in_vpc: bool,
        /// Read nothing from AWS: check against the flags and the template's defaults.
        #[arg(long)]
        offline: bool,
        /// Then ask the deployed verify function to send one GET to each smoke URL of the LIVE
        /// config (url and test_url, with connect_to and the test_headers), and print each
        /// status, redirect, TLS error, the address connected to and the time. Needs
        /// lambda:InvokeFunction on verify.
        #[arg(long, conflicts_with = "offline")]
        live: bool,
        /// With --live: only this configured service.
        #[arg(long, requires = "live")]
        service: Option<String>,
        #[command(flatten)]
        function: Function,
        #[command(flatten)]
        verify_function: VerifyFunction,
    },
    /// Write a pushdeploy.toml from what runs in a cluster: its services, their images' ECR
    /// repositories and tags, and smoke URLs from their load balancers' listener rules.
    ///
    /// The file starts in observe mode and passes `validate`; lines marked `# check` are guesses.
    /// What to check before enforcing is printed to stderr. Reads only: ecs:ListServices,
    /// DescribeServices, DescribeTaskDefinition, elasticloadbalancing:Describe*, sts:GetCallerIdentity.
    ///
    /// Exit status: 0 written; 1 nothing deployable, or the file exists (--force); 2 AWS refused.
    ///
    /// Example: pushdeploy init --cluster todo-cluster --output pushdeploy.toml
    Init {
        /// The ECS cluster (name or ARN).
        #[arg(long)]
        cluster: String,
        /// Only this service; repeat for several (default: every service of the cluster).
        #[arg(long = "service")]
        services: Vec<String>,
        /// Write the config to FILE instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
        /// Overwrite FILE when it exists.
        #[arg(long)]
        force: bool,
    },
    /// One row per service of the live config: what ECS runs, the last deployment and its verdict,
    /// a rollout in flight.
    ///
    /// The live config is where the deploy function reads it (its PUSHDEPLOY_CONFIG, read with
    /// Lambda GetFunctionConfiguration; else s3://BUCKET/pushdeploy.toml). When --config names a
    /// local file that differs from it, a line says which services and keys differ. --config
    /// s3://… reads that object instead.
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
        #[command(flatten)]
        function: Function,
    },
    /// A service's deployments and rollbacks, newest first: when, the record id (for `show`),
    /// tag@digest, trigger, outcome, lead time and the whole reason, wrapped to the terminal.
    ///
    /// Example: pushdeploy history backend --limit 10 --wide
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
        /// Print each reason on one line, unwrapped, however wide the table becomes.
        #[arg(long)]
        wide: bool,
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
    /// Return the service to its last verified deployment before the current one, or with --to
    /// to a revision ECS's own history shows the service ran (day one: nothing verified yet).
    ///
    /// With no verified deployment to return to, nothing changes: the revisions the service ran
    /// (revision, image digests, when, newest first) are listed to pick one with --to.
    ///
    /// Exit status: 0 rolled back (or, with --dry-run, the target it would choose); 1 refused
    /// (the reason and the candidates are printed); 2 the invocation failed.
    ///
    /// Example: pushdeploy rollback backend --to todo-backend:41
    Rollback {
        /// The service's name in the config.
        service: String,
        /// A revision (family:N or its ARN) or an image digest (sha256:…) of the service's
        /// repository; a digest names the newest revision the service ran with it.
        #[arg(long, value_name = "REVISION|DIGEST")]
        to: Option<String>,
        /// With --to: return to it even when pushdeploy rolled that digest back.
        #[arg(long, requires = "to")]
        force: bool,
        /// Say which target it would choose and why; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Who asks, for the rollback's record (default: $USER). Recorded as given, not
        /// verified: CloudTrail's Lambda Invoke event names the principal.
        #[arg(long, value_name = "NAME", env = "PUSHDEPLOY_REQUESTED_BY")]
        requested_by: Option<String>,
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
    /// Pause a service (or --all): every push and manual action is answered `paused` and changes
    /// nothing, until `resume`. Kept in S3 beside the deployed config, so a stack update keeps it.
    ///
    /// Skipped pushes are not replayed: push again, or `deploy SERVICE TAG`, after resuming.
    /// Rollouts already started are still verified and rolled back. Who pauses is the caller STS
    /// names (sts:GetCallerIdentity); writing needs s3:PutObject on the pause's key.
    ///
    /// Exit status: 0 paused; 1 already paused (whose pause is printed; left as it is); 2 an error.
    ///
    /// Example: pushdeploy pause backend --reason "incident 42: database failover"
    Pause {
        /// The service's name in the config.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        service: Option<String>,
        /// Every service of the config.
        #[arg(long)]
        all: bool,
        /// Why: shown with every answer the pause gives, and by `status`.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        scope: Scope,
    },
    /// End a pause made by `pause`, printing whose it was.
    ///
    /// Exit status: 0 resumed (or not paused); 1 the service is still under the pause of every
    /// service (`resume --all` ends that); 2 an error.
    ///
    /// Example: pushdeploy resume backend
    Resume {
        /// The service's name in the config.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        service: Option<String>,
        /// The pause of every service.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        scope: Scope,
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
        #[command(flatten)]
        verify_function: VerifyFunction,
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

/// Which verify function to read or invoke.
#[derive(Args)]
pub(crate) struct VerifyFunction {
    /// The verify function's name or ARN (the stack's VerifyFunctionName output).
    #[arg(
        id = "verify_function",
        long = "verify-function",
        value_name = "NAME",
        env = "PUSHDEPLOY_VERIFY_FUNCTION",
        default_value = "pushdeploy-verify"
    )]
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
    /// The artifact bucket (the stack's ArtifactBucketName output).
    #[arg(long, env = "PUSHDEPLOY_BUCKET")]
    pub(crate) bucket: String,
}

#[cfg(test)]
mod tests {
    /// clap checks its own definition only when a command is parsed: two flattened arguments
    /// with one id (both `name`) passed `cargo test` and failed every run of the binary.
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
