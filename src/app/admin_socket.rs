//! The admin socket (`DATA_DIR/admin.sock`, mode 0600): the CLI administers a running server
//! through it, because redb lets one process open the database at a time. One JSON request
//! line in, one JSON response line out; `securify import` sends its batches here.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::watch;

use crate::admin::{self, AdminRequest, AdminResponse};
use crate::ingest::batch::ImportBatch;
use crate::intake::Input;
use crate::state::AppState;

/// How long a local admin client may take to send its request line.
const ADMIN_READ_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if path.exists() {
        // A live server answers; a leftover file from a crash does not and is replaced.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!("another securify server is using {}", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale {}", path.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("cannot bind admin socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

pub(super) async fn serve(
    listener: UnixListener,
    state: AppState,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(admin_connection(stream, state.clone()));
                }
                Err(e) => tracing::warn!(error = %e, "admin socket accept failed"),
            }
        }
    }
}

async fn admin_connection(stream: tokio::net::UnixStream, state: AppState) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read).take(admin::MAX_REQUEST_BYTES as u64);
    let read = tokio::time::timeout(ADMIN_READ_TIMEOUT, reader.read_line(&mut line)).await;
    let read = read.unwrap_or_else(|_| Err(std::io::Error::other("timed out")));
    let response = match read {
        Ok(_) => match serde_json::from_str::<AdminRequest>(&line) {
            Ok(AdminRequest::Import(batch)) => import_batch(&state, batch).await,
            Ok(request) => admin::respond(state.admin(request).await),
            Err(e) => admin::respond(Err(admin::AdminError::Invalid(format!("bad request: {e}")))),
        },
        Err(e) => admin::respond(Err(admin::AdminError::Invalid(format!(
            "cannot read request: {e}"
        )))),
    };
    if let AdminResponse::TokenCreated { info, .. } | AdminResponse::TokenRevoked { info } =
        &response
    {
        tracing::info!(token_id = %info.id, "API token changed through the admin socket");
    }
    let mut text = serde_json::to_string(&response).unwrap_or_else(|_| "{}".into());
    text.push('\n');
    let _ = write.write_all(text.as_bytes()).await;
}

/// One batch of `securify import`, stored like live ingest.
async fn import_batch(state: &AppState, batch: ImportBatch) -> AdminResponse {
    match state.intake.take(Input::Batch(batch)).await {
        Ok(receipt) => AdminResponse::Imported {
            counts: receipt.counts(),
        },
        Err(e) if e.is_invalid_input() => {
            admin::respond(Err(admin::AdminError::Invalid(e.to_string())))
        }
        Err(e) => admin::respond(Err(admin::AdminError::Failed(e.to_string()))),
    }
}
