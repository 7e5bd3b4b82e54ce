//! Storage errors: redb's per-operation errors folded into one type, plus decoding and schema
//! problems, with messages an operator can act on.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(
        "database {path} is in use by another process (is `securify serve` running? use its admin socket)"
    )]
    InUse { path: String },
    #[error("cannot open database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: redb::DatabaseError,
    },
    #[error("cannot restrict permissions of {0}: {1}")]
    Permissions(String, #[source] std::io::Error),
    #[error(
        "database written by a newer release (schema {found}, this binary supports {supported})"
    )]
    SchemaTooNew { found: u64, supported: u64 },
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Redb(#[from] redb::Error),
}

impl StorageError {
    pub(super) fn open(path: &Path, source: redb::DatabaseError) -> Self {
        let path = path.display().to_string();
        match source {
            redb::DatabaseError::DatabaseAlreadyOpen => Self::InUse { path },
            source => Self::Open { path, source },
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {
        $(impl From<$t> for StorageError {
            fn from(e: $t) -> Self {
                Self::Redb(e.into())
            }
        })*
    };
}

from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);
