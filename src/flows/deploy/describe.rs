//! Describe a service before deciding: the revision it runs, its base (`base = "family"`), its
//! last artifact and its recent records, read at once.

use super::decision::{pushes_of, ServiceState};
use super::Deployer;
use crate::config::{Base, ServiceConfig, Strategy};
use crate::domain::ecs_view::DescribedTaskDefinition;
use crate::domain::error::Error;
use crate::domain::names::short_name;
use crate::domain::record::DeploymentRecord;
use crate::rules::base::{self, BaseChoice, Standing, Trust};
use crate::rules::plan;

impl Deployer {
    /// The service's last `imagedefinitions.json`, which a tag-based service plans from.
    pub(super) async fn previous_definitions(&self, svc: &ServiceConfig) -> Result<Option<Vec<u8>>, Error> {
        match svc.strategy {
            Strategy::ForceNewDeployment => Ok(self.records().image_definitions(&svc.cluster, &svc.service).await?),
            Strategy::PinDigest => Ok(None),
        }
    }

    /// Reads the service afresh: what it runs, its base, its last artifact, and (for a push,
    /// `push`) the pushes its records say it acted on.
    pub(super) async fn read_state(&self, svc: &ServiceConfig, push: bool) -> Result<ServiceState, Error> {
        let previous = self.previous_definitions(svc);
        let current = async {
            let arn = self.ecs.current_task_definition(&svc.cluster, &svc.service).await?;
            let (td, base) = self.describe_state(svc, &arn).await?;
            Ok::<_, Error>((arn, td, base))
        };
        let (previous, current, history) = tokio::join!(previous, current, self.history(svc));
        let history = history?;
        let (current_arn, current, choice) = current?;
        Ok(ServiceState {
            current,
            current_arn,
            previous_definitions: previous?,
            base: choice.base,
            passed_over: choice.passed_over,
            pushes: pushes_of(svc, &history, push),
            history,
        })
    }

    /// The service's most recently written records: which digests pushdeploy rolled back
    /// ([`crate::rules::rolled_back`]) and, for a push, which pushes it acted on
    /// ([`crate::rules::freshness`]). Bounded, read alongside the service.
    pub(super) async fn history(&self, svc: &ServiceConfig) -> Result<Vec<DeploymentRecord>, Error> {
        Ok(self.records().recent(&svc.cluster, &svc.service, crate::rules::rolled_back::HISTORY_SCANNED).await?)
    }

    /// Whose revisions `svc` may copy, and which are pushdeploy's own.
    fn trust<'a>(&'a self, svc: &'a ServiceConfig) -> Trust<'a> {
        Trust { registrants: &svc.trusted_registrants, own_roles: &self.own_roles }
    }

    /// The revision the service runs and, with `base = "family"`, the revision to copy (the
    /// family's newest from a trusted registrant) when the service does not run it (or a copy of
    /// it) yet, with the newer revisions passed over; both read at once.
    pub(super) async fn describe_state(
        &self,
        svc: &ServiceConfig,
        current_arn: &str,
    ) -> Result<(DescribedTaskDefinition, BaseChoice), Error> {
        let family = short_name(current_arn).rsplit_once(':').map_or(short_name(current_arn), |(f, _)| f);
        let trust = self.trust(svc);
        // Boxed: its SDK futures would otherwise widen every future that reads a service's state,
        // and each caller's frame with it (a debug build's test thread has 2 MiB of stack).
        let choice = Box::pin(async {
            match svc.base {
                Base::Family => {
                    let trusted = |d: &DescribedTaskDefinition| base::standing(d, trust) == Standing::Trusted;
                    let newest = self.ecs.newest_revisions(family, trusted).await?;
                    Ok::<_, Error>(base::choose_base(newest, trust))
                }
                Base::Service => Ok(BaseChoice::default()),
            }
        });
        let (current, choice) = tokio::join!(self.ecs.describe_task_definition(current_arn), choice);
        let current = current?;
        let choice = base::against_running(choice?, current_arn, plan::base_of(&current.tags));
        Ok((current, choice))
    }
}
