//! Pure: the digests a revision ran, read from the service's tasks when ECS's history of the
//! service does not hold the revision.
//!
//! ECS keeps what a deployment resolved in its service revision, but it cannot describe a
//! revision created before October 25, 2024, and a service deployed once and left alone for long
//! has nothing newer: at the cutover to pushdeploy the revision the service runs is often such a
//! one. Its tasks still say what ran: each container's `imageDigest` is the digest ECS pulled
//! when the task started. A task counts only while it runs, or once the scheduler stopped it
//! because a later deployment replaced it (ECS lists stopped tasks for at least an hour, long
//! enough for verify's rollback after the rollout that replaced them); a task that crashed or
//! failed its health checks says nothing about a revision that ran.

use std::collections::BTreeMap;

use crate::domain::ecs_view::RanRevision;

/// How ECS words the reason of a task the scheduler stopped because a deployment replaced it.
pub const REPLACED_BY_A_DEPLOYMENT: &str = "Scaling activity initiated by (deployment";

/// One task as DescribeTasks reports it, reduced to what the digests need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSeen {
    /// Its task definition ARN.
    pub task_definition: String,
    /// `RUNNING`, `STOPPED`, …
    pub last_status: String,
    /// Why it stopped, when it did.
    pub stopped_reason: Option<String>,
    /// Container name → the digest ECS pulled (absent before the image was pulled).
    pub containers: Vec<(String, Option<String>)>,
}

impl TaskSeen {
    /// True for a task that shows its revision ran: running, or replaced by a later deployment.
    fn ran(&self) -> bool {
        self.last_status == "RUNNING"
            || (self.last_status == "STOPPED"
                && self.stopped_reason.as_deref().is_some_and(|r| r.starts_with(REPLACED_BY_A_DEPLOYMENT)))
    }
}

/// What `tasks` show `task_definition` ran: each container's digest on which every counted task
/// of it agrees. A container whose tasks disagree (a tag resolved again between task launches,
/// before ECS pinned digests per deployment) or name none is left out, so a rollback refuses to
/// pin it rather than guess. `None` when no counted task ran the revision.
pub fn ran_by_tasks(tasks: &[TaskSeen], task_definition: &str) -> Option<RanRevision> {
    let counted: Vec<&TaskSeen> = tasks.iter().filter(|t| t.task_definition == task_definition && t.ran()).collect();
    if counted.is_empty() {
        return None;
    }
    let mut seen: BTreeMap<String, Option<String>> = BTreeMap::new();
    for task in &counted {
        for (name, digest) in &task.containers {
            let agreed = match (seen.get(name), digest) {
                (None, d) => d.clone(),
                (Some(Some(before)), Some(d)) if before == d => Some(d.clone()),
                _ => None,
            };
            seen.insert(name.clone(), agreed);
        }
    }
    let digests = seen.into_iter().filter_map(|(name, d)| Some((name, d?))).collect();
    Some(RanRevision { task_definition: task_definition.to_string(), digests, at: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(td: &str, status: &str, reason: Option<&str>, containers: &[(&str, Option<&str>)]) -> TaskSeen {
        TaskSeen {
            task_definition: td.into(),
            last_status: status.into(),
            stopped_reason: reason.map(str::to_string),
            containers: containers.iter().map(|(n, d)| (n.to_string(), d.map(str::to_string))).collect(),
        }
    }

    #[test]
    fn running_tasks_name_the_digests_their_revision_ran() {
        let tasks = [
            task("td:1", "RUNNING", None, &[("app", Some("sha256:aa")), ("log", Some("sha256:11"))]),
            task("td:1", "RUNNING", None, &[("app", Some("sha256:aa")), ("log", Some("sha256:11"))]),
            task("td:2", "RUNNING", None, &[("app", Some("sha256:bb"))]),
        ];
        let ran = ran_by_tasks(&tasks, "td:1").unwrap();
        assert_eq!(ran.task_definition, "td:1");
        assert_eq!(
            ran.digests,
            BTreeMap::from([("app".to_string(), "sha256:aa".to_string()), ("log".into(), "sha256:11".into())])
        );
        assert!(ran_by_tasks(&tasks, "td:3").is_none());
    }

    #[test]
    fn a_task_replaced_by_a_deployment_counts_and_a_crashed_one_does_not() {
        let replaced = "Scaling activity initiated by (deployment ecs-svc/1234567890123456789)";
        let tasks = [task("td:1", "STOPPED", Some(replaced), &[("app", Some("sha256:aa"))])];
        assert_eq!(ran_by_tasks(&tasks, "td:1").unwrap().digests["app"], "sha256:aa");
        for why in ["Essential container in task exited", "Task failed ELB health checks in (target-group x)"] {
            let crashed = [task("td:1", "STOPPED", Some(why), &[("app", Some("sha256:aa"))])];
            assert!(ran_by_tasks(&crashed, "td:1").is_none(), "{why}");
        }
        let pending = [task("td:1", "PENDING", None, &[("app", None)])];
        assert!(ran_by_tasks(&pending, "td:1").is_none());
    }

    #[test]
    fn a_container_whose_tasks_disagree_or_name_no_digest_is_left_out() {
        let tasks = [
            task("td:1", "RUNNING", None, &[("app", Some("sha256:aa")), ("log", Some("sha256:11"))]),
            task("td:1", "RUNNING", None, &[("app", Some("sha256:ab")), ("log", Some("sha256:11"))]),
            task("td:1", "RUNNING", None, &[("app", Some("sha256:aa")), ("log", None)]),
        ];
        let ran = ran_by_tasks(&tasks, "td:1").unwrap();
        assert!(ran.digests.is_empty(), "{:?}", ran.digests);
    }
}
