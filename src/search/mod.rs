//! Full-text search: a tantivy index derived from the event store, and the thread that keeps
//! it following the store.
//!
//! The index is never the source of truth. Every event commit of the store logs the keys of the
//! events it stored ([`Store::committed_since`]); the indexer reads that log from a checkpoint,
//! adds the events, and commits the index with the next commit number to read as the commit's
//! payload. A crash loses only documents not yet committed to the index, and the checkpoint in
//! the same index commit makes the indexer read exactly those commits again: nothing is lost or
//! indexed twice. An index that is missing, unreadable or of another layout is rebuilt from the
//! store ([`SearchIndex::rebuild`], `securify reindex`).
//!
//! Documents hold the searchable fields and the event's key (time, sequence) as fast fields;
//! hits are read back from the store, so the index stores no text.
//!
//! Only this module names tantivy: [`schema`] (fields and documents), [`indexer`] (the thread),
//! [`query`] (the query language, its syntax check, highlighting), [`histogram`] (matches over
//! time).

mod histogram;
mod indexer;
mod query;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use tantivy::indexer::LogMergePolicy;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy};

use crate::storage::{EventCursor, StorageError, Store};
pub use histogram::Histogram;
pub use indexer::Indexer;
pub use query::{Exact, Find, Highlighter, check_syntax};
use schema::{Fields, register_tokenizers, schema};

/// Layout of the index this binary writes; an index of another layout is rebuilt.
const LAYOUT: u32 = 3;
/// Segments of more than this many documents are not merged any further, so no merge makes a
/// segment much larger than a level of them (eight by default, about a million documents):
/// merging larger ones held memory and mapped files in proportion to their size (a merge of
/// millions of documents took the server from 200 to 400–600 MiB), while a search visits a
/// few more segments.
const MERGED_DOCS: usize = 150_000;
/// Smallest writer budget tantivy accepts.
pub const MIN_MEMORY_BYTES: usize = 15 << 20;
/// Most hits one search returns.
pub const MAX_LIMIT: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search index directory {0}: {1}")]
    Directory(PathBuf, String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{message}")]
    Query { message: String, position: usize },
}

/// What the index commit records: the next store commit to read.
#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    layout: u32,
    next_commit: u64,
}

/// One hit: the event's key in the store.
pub type Hit = EventCursor;

/// The search index of a data directory.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    dir: PathBuf,
    /// True while the index is being rebuilt from the store. (How far it is searchable is the
    /// store's [`Store::indexed_below`].)
    rebuilding: AtomicBool,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The index directory of a data directory.
#[must_use]
pub fn index_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("index")
}

impl SearchIndex {
    /// Opens the index in `dir`, creating an empty one (which the indexer then fills from the
    /// store) when there is none or it cannot be used as it is.
    pub fn open(dir: &Path) -> Result<(Self, Option<u64>), SearchError> {
        let (schema, fields) = schema();
        std::fs::create_dir_all(dir)
            .map_err(|e| SearchError::Directory(dir.to_path_buf(), e.to_string()))?;
        let directory = || {
            tantivy::directory::MmapDirectory::open(dir)
                .map_err(|e| SearchError::Directory(dir.to_path_buf(), e.to_string()))
        };
        let existing = Index::open(directory()?)
            .ok()
            .filter(|index| index.schema() == schema);
        let (index, checkpoint) = if let Some(index) = existing {
            let checkpoint = index
                .load_metas()?
                .payload
                .and_then(|p| serde_json::from_str::<Checkpoint>(&p).ok())
                .filter(|c| c.layout == LAYOUT)
                .map(|c| c.next_commit);
            (index, checkpoint)
        } else {
            clear_dir(dir)?;
            let index = Index::create(directory()?, schema, tantivy::IndexSettings::default())?;
            (index, None)
        };
        register_tokenizers(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let search = Self {
            index,
            reader,
            fields,
            dir: dir.to_path_buf(),
            rebuilding: AtomicBool::new(false),
        };
        Ok((search, checkpoint))
    }

    fn writer(&self, memory_bytes: usize) -> Result<IndexWriter, SearchError> {
        let writer = self
            .index
            .writer_with_num_threads(1, memory_bytes.max(MIN_MEMORY_BYTES))?;
        let mut merges = LogMergePolicy::default();
        merges.set_max_docs_before_merge(MERGED_DOCS);
        writer.set_merge_policy(Box::new(merges));
        Ok(writer)
    }

    /// Whether the index is being rebuilt from the store.
    #[must_use]
    pub fn is_rebuilding(&self) -> bool {
        self.rebuilding.load(Ordering::Relaxed)
    }

    /// Commits the index with its checkpoint, and tells the store how far it is indexed.
    fn commit(
        &self,
        writer: &mut IndexWriter,
        store: &Store,
        next_commit: u64,
    ) -> Result<(), SearchError> {
        let payload = serde_json::to_string(&Checkpoint {
            layout: LAYOUT,
            next_commit,
        })
        .unwrap_or_default();
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        self.reader.reload()?;
        store.set_indexed_below(next_commit);
        Ok(())
    }

    /// Empties the index and adds every stored event, calling `progress(done, total)` now and
    /// then; returns the next store commit to follow from.
    pub fn rebuild(
        &self,
        store: &Store,
        memory_bytes: usize,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<u64, SearchError> {
        self.rebuilding.store(true, Ordering::Relaxed);
        let mut writer = self.writer(memory_bytes)?;
        writer.delete_all_documents()?;
        let total = std::cell::Cell::new(0);
        let mut done = 0u64;
        let next = store.walk_events::<SearchError>(
            |count| total.set(count),
            |key, event| {
                writer.add_document(self.document(key, &event))?;
                done += 1;
                if done.is_multiple_of(10_000) {
                    progress(done, total.get());
                }
                Ok(())
            },
        )?;
        progress(done, total.get());
        self.commit(&mut writer, store, next)?;
        writer.wait_merging_threads()?;
        self.rebuilding.store(false, Ordering::Relaxed);
        Ok(next)
    }

    /// Documents in the index.
    #[must_use]
    pub fn document_count(&self) -> u64 {
        self.reader.searcher().num_docs()
    }
}

fn clear_dir(dir: &Path) -> Result<(), SearchError> {
    let failed = |e: std::io::Error| SearchError::Directory(dir.to_path_buf(), e.to_string());
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(failed)?;
    }
    std::fs::create_dir_all(dir).map_err(failed)
}
