//! Housekeeping after a verified deployment: deregistering pushdeploy's own old revisions
//! (`keep_revisions`), never one any configured service runs or could roll back to.

use tracing::{info, warn};

use super::Verifier;
use crate::domain::error::Error;
use crate::domain::record::DeploymentRecord;
use crate::rules::retention;
use crate::rules::taskdef::short_name;

impl Verifier {
    /// With `keep_revisions`, deregisters pushdeploy's own revisions of the service's family beyond
    /// the newest N, never one that any configured service runs or could roll back to
    /// ([`retention::protected`]): a family can be shared (staging and production). Housekeeping
    /// after the verdict: a failure is logged and left to the next verified deployment, and
    /// nothing is pruned unless every configured service could be read.
    pub(super) async fn prune(&self, rec: &DeploymentRecord) {
        let Some(keep) = self.config.by_ecs_service(&rec.cluster, &rec.service).and_then(|s| s.keep_revisions) else {
            return;
        };
        let keep = keep as usize;
        let family = short_name(&rec.task_definition).rsplit_once(':').map_or("", |(f, _)| f);
        let (uses, own) = tokio::join!(self.service_uses(), async {
            Ok::<_, Error>(self.ecs.own_revisions(family, retention::described_per_run(keep)).await?)
        });
        let (uses, own) = match (uses, own) {
            (Ok(uses), Ok(own)) => (uses, own),
            (Err(err), _) | (_, Err(err)) => {
                warn!(service = %rec.name, error = %err, "could not read what the configured services run and could roll back to; pruned nothing");
                return;
            }
        };
        let protected = retention::protected(&uses, keep);
        for arn in retention::prunable(&own, keep, &protected) {
            match self.ecs.deregister_task_definition(arn).await {
                Ok(()) => {
                    info!(service = %rec.name, task_definition = %short_name(arn), "deregistered an old revision (keep_revisions)")
                }
                Err(err) => {
                    warn!(service = %rec.name, task_definition = %short_name(arn), error = %err, "could not deregister an old revision")
                }
            }
        }
    }

    /// What every configured ECS service has in use (one DescribeServices per cluster and ten
    /// services) and could return to (ECS's history and its recent records), a few services at once.
    async fn service_uses(&self) -> Result<Vec<retention::ServiceUse>, Error> {
        let mut by_cluster: Vec<(&str, Vec<String>)> = Vec::new();
        for s in &self.config.services {
            match by_cluster.iter_mut().find(|(c, _)| *c == s.cluster) {
                Some((_, names)) if names.contains(&s.service) => {}
                Some((_, names)) => names.push(s.service.clone()),
                None => by_cluster.push((s.cluster.as_str(), vec![s.service.clone()])),
            }
        }
        let mut services = Vec::new();
        for (cluster, names) in &by_cluster {
            let in_use = self.ecs.in_use(cluster, names).await?;
            services.extend(names.iter().zip(in_use).map(|(name, running)| (*cluster, name.as_str(), running)));
        }
        let mut uses = Vec::with_capacity(services.len());
        for batch in services.chunks(SERVICES_READ_AT_ONCE) {
            let read = batch.iter().map(|(cluster, service, running)| self.service_use(cluster, service, running));
            for u in futures_util::future::join_all(read).await {
                uses.push(u?);
            }
        }
        Ok(uses)
    }

    /// What one configured service has in use (`running`) and could return to.
    async fn service_use(
        &self,
        cluster: &str,
        service: &str,
        running: &[String],
    ) -> Result<retention::ServiceUse, Error> {
        let name = format!("{cluster}/{service}");
        // A service that is not ACTIVE runs nothing and has nothing to return to.
        if running.is_empty() {
            return Ok(retention::ServiceUse { service: name, ..Default::default() });
        }
        let records = self.records();
        let (ran, records) =
            tokio::join!(self.ecs.ran_revisions(cluster, service), records.recent(cluster, service, RECORDS_PROTECTED));
        Ok(retention::ServiceUse { service: name, running: running.to_vec(), ran: ran?, records: records? })
    }
}

/// How many of each configured service's most recently written records pruning reads for its
/// rollback targets: as many as a manual rollback chooses from.
const RECORDS_PROTECTED: usize = 50;

/// How many configured services pruning reads (ECS's history, records) at once.
const SERVICES_READ_AT_ONCE: usize = 3;
