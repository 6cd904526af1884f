//! The one settle step: a record that reached a verdict is saved, its decision line logged, the
//! verdict counted (EMF) and told (SNS); [`apply`] carries out the write and the telling a
//! [`Verdict`] asks for, whichever flow decided it.

use tracing::info;

use crate::aws::records::RecordStore;
use crate::aws::sns::Notifier;
use crate::domain::error::Error;
use crate::domain::record::DeploymentRecord;
use crate::rules::notify::verdict_message;
use crate::rules::verdict::{Tell, Verdict, Write};

/// Saves `rec`, which reached a verdict on behalf of `event_id` (an event or a hook execution),
/// logs the decision, counts it and notifies.
pub async fn settle(
    records: &RecordStore,
    notifier: Option<&Notifier>,
    rec: &DeploymentRecord,
    event_id: &str,
) -> Result<(), Error> {
    records.put(rec).await?;
    log_decision(rec, event_id, rec.status.as_str());
    crate::flows::metrics::record(&rec.name, &crate::flows::metrics::verdict(rec));
    if let Some(n) = notifier {
        n.send(&verdict_message(rec)).await;
    }
    Ok(())
}

/// Writes and tells what `verdict` asks for: a settle, a save, a decision line, or nothing.
pub async fn apply(
    records: &RecordStore,
    notifier: Option<&Notifier>,
    verdict: &Verdict,
    event_id: &str,
) -> Result<(), Error> {
    let rec = &verdict.record;
    if verdict.tell == Tell::Everyone {
        return settle(records, notifier, rec, event_id).await;
    }
    if verdict.write == Write::Save {
        records.put(rec).await?;
    }
    if let Tell::Log(outcome) = verdict.tell {
        log_decision(rec, event_id, outcome);
    }
    Ok(())
}

/// The one decision line a verdict logs.
pub fn log_decision(rec: &DeploymentRecord, event_id: &str, outcome: &str) {
    info!(
        service = %rec.name,
        image = %rec.image_uri,
        event_id = %event_id,
        deployment_id = %rec.id,
        outcome,
        reason = rec.reason.as_deref().unwrap_or(""),
        "decision"
    );
}
