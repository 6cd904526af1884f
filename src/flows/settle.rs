//! The one settle step: save the record, log the decision, count it, notify.
