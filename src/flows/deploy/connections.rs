//! The connections a push needs, opened during Lambda's init.
//!
//! Every AWS endpoint is a TLS connection, and at 128 MB a function has about 7 % of a vCPU: on
//! a cold start the handshakes cost more than the calls (BENCHMARKS.md, "A cold deploy with
//! TLS"). The runtime's init phase runs before the first event arrives, so connections opened
//! there are pooled, ready for the push's first round of calls (ECR, ECS and S3 at once).

use std::time::Duration;

use tracing::debug;

use super::Deployer;

/// The most init may spend opening connections: a slow endpoint is met again by the invocation,
/// with the invocation's own retries and deadline, and Lambda's init phase is limited to 10 s.
pub const OPEN_WITHIN: Duration = Duration::from_secs(2);

impl Deployer {
    /// Opens a connection to ECS and to ECR with one read each of the first configured service
    /// and its repository (their answers are discarded: a push reads afresh); S3's is already
    /// open from the config read. Failures only mean the invocation opens its own.
    pub async fn open_connections(&self) {
        let Some(svc) = self.config.services.first() else { return };
        let both = async {
            tokio::join!(self.ecs.service_now(&svc.cluster, &svc.service), self.ecr.open_connection(&svc.repository))
        };
        match tokio::time::timeout(OPEN_WITHIN, both).await {
            Ok((ecs, ecr)) => debug!(ecs = ecs.is_ok(), ecr = ecr.is_ok(), "connections opened during init"),
            Err(_) => debug!("opening connections during init took over {OPEN_WITHIN:?}; the invocation opens its own"),
        }
    }
}
