//! redb, the source of truth: events, alerts, log templates, users, API tokens, sessions and
//! refresh tokens.
//!
//! Only this module names `redb`. Values are postcard-encoded records behind a one-byte format
//! version ([`tables::RECORD_V1`]); keys are laid out for range scans by time.

mod alerts;
mod blocklist;
mod counts;
#[cfg(test)]
mod crash_tests;
mod error;
mod events;
mod profiles;
pub mod tables;
mod templates;
mod users;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable};

pub use alerts::{
    AlertNote, AlertQuery, AlertRecord, AlertStatus, AlertUpdate, MAX_ALERT_EVIDENCE,
    merge_evidence,
};
pub use blocklist::{AllowEntry, BlockEntry};
pub use counts::{Dimension, MinuteCounts, SERIES, Tally, rank, ranked};
pub use error::StorageError;
pub use events::{AppendOutcome, Committed, EncodedEvent, EventCursor, EventPage, EventQuery};
pub use templates::TemplateRecord;
pub use users::{
    RefreshRecord, RefreshRotation, Role, Scope, SessionRecord, TokenRecord, UserRecord,
};

/// The appliance's database: one redb file, opened by one process at a time.
pub struct Store {
    db: Database,
    path: PathBuf,
    /// Commits below this number are in the search index: their [`tables::COMMIT_LOG`] rows
    /// are removed by the next event commit.
    indexed_below: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn builder(cache_bytes: usize) -> redb::Builder {
    let mut builder = Database::builder();
    builder
        .set_cache_size(cache_bytes)
        .set_repair_callback(report_repair);
    builder
}

/// Logs the progress of the repair redb runs on the first open after an unclean shutdown.
fn report_repair(session: &mut redb::RepairSession) {
    let percent = (session.progress() * 100.0).round();
    tracing::warn!(
        progress_percent = percent,
        "repairing the database after an unclean shutdown"
    );
}

impl Store {
    /// Opens (creating if needed) the database at `path`, with `cache_bytes` of page cache.
    ///
    /// Creates every table so that readers never meet a missing one, and refuses a file written
    /// by a newer schema than this binary knows.
    pub fn open(path: &Path, cache_bytes: usize) -> Result<Self, StorageError> {
        let db = builder(cache_bytes)
            .create(path)
            .map_err(|e| StorageError::open(path, e))?;
        // The file holds password hashes and token hashes: owner only, whatever the umask.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| StorageError::Permissions(path.display().to_string(), e))?;
        Self::init(db, path.to_path_buf())
    }

    /// Opens a database on another storage backend (fault injection in tests).
    #[cfg(test)]
    pub(crate) fn open_backend(
        backend: impl redb::StorageBackend,
        cache_bytes: usize,
    ) -> Result<Self, StorageError> {
        let path = Path::new("(backend)");
        let db = builder(cache_bytes)
            .create_with_backend(backend)
            .map_err(|e| StorageError::open(path, e))?;
        Self::init(db, path.to_path_buf())
    }

    fn init(db: Database, path: PathBuf) -> Result<Self, StorageError> {
        let store = Self {
            db,
            path,
            indexed_below: std::sync::atomic::AtomicU64::new(0),
        };
        store.init_schema()?;
        Ok(store)
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A store in a new temporary directory, removed when the returned guard is dropped.
    #[cfg(test)]
    pub(crate) fn temporary() -> (tempfile::TempDir, Self) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Self::open(&dir.path().join("db.redb"), 1 << 20).expect("a store");
        (dir, store)
    }

    fn init_schema(&self) -> Result<(), StorageError> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(tables::META)?;
            let found = meta.get(tables::SCHEMA_VERSION_KEY)?.map(|v| v.value());
            match found {
                Some(v) if v > tables::SCHEMA_VERSION => {
                    return Err(StorageError::SchemaTooNew {
                        found: v,
                        supported: tables::SCHEMA_VERSION,
                    });
                }
                Some(tables::SCHEMA_VERSION) => {}
                Some(v) => {
                    if v < 2 {
                        tracing::info!("summing the stored counts per hour and day (once)");
                        counts::roll_up(&txn)?;
                    }
                    meta.insert(tables::SCHEMA_VERSION_KEY, tables::SCHEMA_VERSION)?;
                }
                None => {
                    meta.insert(tables::SCHEMA_VERSION_KEY, tables::SCHEMA_VERSION)?;
                }
            }
            txn.open_table(tables::EVENTS)?;
            txn.open_table(tables::EVENT_IDS)?;
            txn.open_table(tables::COMMIT_LOG)?;
            txn.open_table(tables::MINUTE_COUNTS)?;
            txn.open_table(tables::HOURLY_TALLIES)?;
            txn.open_table(tables::HOURLY_COUNTS)?;
            txn.open_table(tables::DAILY_TALLIES)?;
            txn.open_table(tables::USERS)?;
            txn.open_table(tables::API_TOKENS)?;
            txn.open_table(tables::SESSIONS)?;
            txn.open_table(tables::REFRESH_TOKENS)?;
            txn.open_table(tables::TEMPLATES)?;
            txn.open_table(tables::ALERTS)?;
            txn.open_table(tables::OPEN_ALERTS)?;
            txn.open_table(tables::ALERT_MEMBERS)?;
            txn.open_table(tables::USER_PROFILES)?;
            txn.open_table(tables::ALLOWLIST)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Schema version recorded in the file.
    pub fn schema_version(&self) -> Result<u64, StorageError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(tables::META)?;
        Ok(meta
            .get(tables::SCHEMA_VERSION_KEY)?
            .map_or(0, |v| v.value()))
    }

    /// A cheap round trip through the database, for readiness checks.
    pub fn ping(&self) -> Result<(), StorageError> {
        self.schema_version().map(|_| ())
    }
}
