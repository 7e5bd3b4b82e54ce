//! Templates of the template miner: persisted in the same transaction as the events that
//! refer to them, so an event's `template_id` always names a stored template.

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::tables::{self, TEMPLATES};
use super::{StorageError, Store};

/// A template as stored: its stable id, its tokens (placeholders included) and how many lines
/// it has taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateRecord {
    pub id: u32,
    pub tokens: Vec<String>,
    pub count: u64,
}

impl Store {
    /// Every stored template, by id.
    pub fn templates(&self) -> Result<Vec<TemplateRecord>, StorageError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TEMPLATES)?;
        table
            .iter()?
            .map(|entry| tables::decode(entry?.1.value()))
            .collect()
    }
}

/// Writes `templates` (new or changed) into an open write transaction.
pub(super) fn upsert(
    txn: &redb::WriteTransaction,
    templates: &[TemplateRecord],
) -> Result<(), StorageError> {
    if templates.is_empty() {
        return Ok(());
    }
    let mut table = txn.open_table(TEMPLATES)?;
    for template in templates {
        // A template only grows: more lines, more general tokens. Requests may commit in
        // another order than they were mined in, so an older state never replaces a newer one.
        let stored_count = match table.get(template.id)? {
            Some(bytes) => Some(tables::decode::<TemplateRecord>(bytes.value())?.count),
            None => None,
        };
        if stored_count.is_none_or(|count| count <= template.count) {
            table.insert(template.id, tables::encode(template).as_slice())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::storage::EncodedEvent;

    fn template(id: u32, tokens: &[&str], count: u64) -> TemplateRecord {
        TemplateRecord {
            id,
            tokens: tokens.iter().map(|t| (*t).to_string()).collect(),
            count,
        }
    }

    #[test]
    fn templates_are_stored_with_their_events_and_never_go_back() {
        let (_dir, store) = Store::temporary();
        let event = EncodedEvent::new(&Event::sample("e1", 1));
        store
            .append(
                &[vec![event]],
                &[template(1, &["a", "<*>"], 2), template(2, &["b"], 1)],
            )
            .unwrap();
        // An older state of template 1 committed later does not replace the newer one.
        store
            .append(&[], &[template(1, &["a", "x"], 1), template(2, &["b"], 3)])
            .unwrap();
        assert_eq!(
            store.templates().unwrap(),
            vec![template(1, &["a", "<*>"], 2), template(2, &["b"], 3)]
        );
    }
}
