//! Carrying out: replaying what was planned (deleting each message once Lambda took its event),
//! deleting the skipped messages when asked, returning the rest to the queue, and the tally.

use std::collections::HashSet;

use pushdeploy::domain::text::printable;

use super::plan::Plan;
use super::stack::Target;
use super::Options;
use crate::insight::Failed;
use crate::queue::Queue;

/// How long a message read by `redrive` stays hidden from anyone else reading the queue (another
/// redrive): long enough to read the list and answer the question. Whatever is not replayed is
/// made visible again at the end.
pub const VISIBILITY_SECONDS: i32 = 600;
/// Replays start only while this much of the hidden time is left, so that no message can be read
/// and replayed by a second redrive while this one still replays it.
pub(super) const MARGIN_SECONDS: f64 = 60.0;

/// True while replays may still start: the messages read at `received_at` stay hidden from
/// another redrive for [`VISIBILITY_SECONDS`], less a margin for the replays themselves.
pub fn still_hidden(received_at: f64, now: f64) -> bool {
    now - received_at < f64::from(VISIBILITY_SECONDS) - MARGIN_SECONDS
}

/// What happened, for the summary and the exit status.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    /// Accepted by Lambda (202) and deleted.
    pub replayed: usize,
    /// Skipped (left in the queue, or deleted with `--delete-skipped`).
    pub skipped: usize,
    /// Skipped and deleted.
    pub skipped_deleted: usize,
    /// Lambda refused, or the message could not be deleted after Lambda took it.
    pub failed: usize,
    /// Replays the operator declined, or never started (dry run, time out).
    pub not_run: usize,
}

impl Tally {
    /// `replayed 2, skipped 1 (left in the queue), failed 0`.
    pub fn summary(&self) -> String {
        let skipped = match (self.skipped, self.skipped_deleted) {
            (0, _) => "skipped 0".to_string(),
            (s, 0) => format!("skipped {s} (left in the queue)"),
            (s, d) if s == d => format!("skipped {s} (deleted)"),
            (s, d) => format!("skipped {s} ({d} deleted, {} left in the queue)", s - d),
        };
        let not_run = if self.not_run > 0 {
            format!(", not replayed {} (left in the queue)", self.not_run)
        } else {
            String::new()
        };
        format!("replayed {}, {skipped}, failed {}{not_run}", self.replayed, self.failed)
    }

    /// 2 when a replay or a delete failed; 1 when a message is left in the queue that this run
    /// did not replay (skipped, declined, a dry run's); 0 when the queue holds nothing it read.
    pub fn exit_code(&self) -> u8 {
        if self.failed > 0 {
            2
        } else if self.skipped > self.skipped_deleted || self.not_run > 0 {
            1
        } else {
            0
        }
    }
}

/// What a run did so far.
#[derive(Default)]
pub(super) struct Carried {
    pub(super) tally: Tally,
    /// Replays started.
    pub(super) attempted: usize,
    /// Messages deleted, or whose event Lambda took: never returned to the queue by this run.
    pub(super) done: HashSet<usize>,
}

/// What was read and what to do with it: messages are indexes into `received` and `plans`.
pub(super) struct Work<'a> {
    pub(super) received: &'a [crate::queue::Received],
    pub(super) plans: &'a [Plan],
    /// The replays, in order.
    pub(super) order: &'a [usize],
    /// Skipped messages to delete.
    pub(super) to_delete: &'a [usize],
}

/// Replays `work.order` (deleting each message once Lambda took its event), then deletes
/// `work.to_delete`.
pub(super) async fn carry_out(
    queue: &Queue,
    lambda: &crate::invoke::Lambda,
    o: &Options,
    work: Work<'_>,
    mut run: Carried,
) -> Carried {
    let Work { received, plans, order, to_delete } = work;
    for &i in order {
        let Plan::Replay { function, payload } = &plans[i] else { continue };
        let name = if *function == Target::Deploy { &o.deploy } else { &o.verify };
        run.attempted += 1;
        if let Err(Failed(why)) = lambda.send_event(name, payload).await {
            run.tally.failed += 1;
            println!("{:>3}. FAILED: {}; left in the queue", i + 1, printable(&why));
            continue;
        }
        run.done.insert(i);
        match queue.delete(&received[i].handle).await {
            Ok(()) => {
                run.tally.replayed += 1;
                println!("{:>3}. replayed to {} (accepted by Lambda); deleted from the queue", i + 1, printable(name));
            }
            Err(Failed(why)) => {
                // Lambda has it: a second replay of it later changes nothing (the functions
                // answer a duplicate delivery as it stands), but say so.
                run.tally.failed += 1;
                println!(
                    "{:>3}. replayed to {}, but not deleted ({}): the next redrive replays it again",
                    i + 1,
                    printable(name),
                    printable(&why)
                );
            }
        }
    }
    for &i in to_delete {
        match queue.delete(&received[i].handle).await {
            Ok(()) => {
                run.tally.skipped_deleted += 1;
                run.done.insert(i);
                println!("{:>3}. skipped and deleted", i + 1);
            }
            Err(Failed(why)) => {
                run.tally.failed += 1;
                println!("{:>3}. skipped, and not deleted: {}", i + 1, printable(&why));
            }
        }
    }
    run
}

/// Returns whatever was read and not deleted (`done`) to the queue now rather than in 10 minutes,
/// and says so when that failed.
pub(super) async fn release_the_rest(queue: &Queue, received: &[crate::queue::Received], done: &HashSet<usize>) {
    let mut unreleased: Vec<String> = Vec::new();
    for (i, r) in received.iter().enumerate() {
        if !done.contains(&i) {
            if let Err(Failed(why)) = queue.release(&r.handle).await {
                unreleased.push(why);
            }
        }
    }
    if let Some(why) = unreleased.first() {
        eprintln!(
            "pushdeploy: {} message(s) left in the queue stay hidden from the next redrive for up to {} minutes: {}",
            unreleased.len(),
            VISIBILITY_SECONDS / 60,
            printable(why)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_start_only_while_the_messages_are_still_hidden_from_another_redrive() {
        assert!(still_hidden(1000.0, 1000.0));
        assert!(still_hidden(1000.0, 1000.0 + 539.0));
        assert!(!still_hidden(1000.0, 1000.0 + 540.0));
    }

    #[test]
    fn the_summary_and_exit_status_say_what_is_left_in_the_queue() {
        let all = Tally { replayed: 2, ..Tally::default() };
        assert_eq!((all.summary().as_str(), all.exit_code()), ("replayed 2, skipped 0, failed 0", 0));
        let left = Tally { replayed: 1, skipped: 1, ..Tally::default() };
        assert_eq!(
            (left.summary().as_str(), left.exit_code()),
            ("replayed 1, skipped 1 (left in the queue), failed 0", 1)
        );
        let deleted = Tally { replayed: 1, skipped: 2, skipped_deleted: 2, ..Tally::default() };
        assert_eq!((deleted.summary().as_str(), deleted.exit_code()), ("replayed 1, skipped 2 (deleted), failed 0", 0));
        let failed = Tally { replayed: 1, failed: 1, ..Tally::default() };
        assert_eq!(failed.exit_code(), 2);
        let declined = Tally { not_run: 3, ..Tally::default() };
        assert_eq!(
            (declined.summary().as_str(), declined.exit_code()),
            ("replayed 0, skipped 0, failed 0, not replayed 3 (left in the queue)", 1)
        );
    }
}
