//! Accounts' login histories, kept for the history rules (new country, impossible travel,
//! unusual hour): written with the alerts of the same detection round, read back when an
//! account shows up again.

use redb::{ReadableDatabase, WriteTransaction};

use super::tables::{self, USER_PROFILES};
use super::{StorageError, Store};
use crate::detect::profile::UserProfile;

/// Writes changed histories in `txn`.
pub(super) fn keep(
    txn: &WriteTransaction,
    profiles: &[(String, UserProfile)],
) -> Result<(), StorageError> {
    if profiles.is_empty() {
        return Ok(());
    }
    let mut kept = txn.open_table(USER_PROFILES)?;
    for (user, profile) in profiles {
        kept.insert(user.as_str(), tables::encode(profile).as_slice())?;
    }
    Ok(())
}

impl Store {
    /// The kept histories of these accounts (those that have one).
    pub fn user_profiles(
        &self,
        users: &[&str],
    ) -> Result<Vec<(String, UserProfile)>, StorageError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(USER_PROFILES)?;
        let mut found = Vec::new();
        for user in users {
            if let Some(value) = table.get(*user)? {
                found.push(((*user).to_string(), tables::decode(value.value())?));
            }
        }
        Ok(found)
    }
}
