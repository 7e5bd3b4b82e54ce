//! Building the server from [`Settings`] and running it until a shutdown signal.
//!
//! [`App::build`] does every first-start step (data directory, keys, certificate, database,
//! first admin) and binds the listeners, so [`App::addr`] is known before serving: tests bind
//! port 0 and read it back. [`App::run`] serves HTTPS and the admin socket until `shutdown`
//! resolves, then stops accepting, lets in-flight requests finish (their commits included),
//! drains the event writer and closes the database.
//!
//! Every network entry point lives here: HTTPS ([`http`]: the routes of `api` and `web`), the
//! admin socket ([`admin_socket`]) and the syslog listener ([`syslog`]).

mod admin_socket;
mod body;
mod http;
mod raw_replies;
pub mod serve;
pub mod syslog;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::UnixListener;
use tokio::sync::watch;

use crate::alerting::recorder::{self, Recorder};
use crate::auth::{Auth, Lifetimes, password};
use crate::config::Settings;
use crate::geo::Geo;
use crate::ingest::pipeline::Pipeline;
use crate::intake::Intake;
use crate::search::{Indexer, SearchIndex};
use crate::state::AppState;
use crate::storage::{Role, Store, UserRecord};
use crate::{keys, tls};
use syslog::SyslogListener;

/// How long in-flight requests may take to finish after a shutdown signal.
const GRACE_PERIOD: Duration = Duration::from_secs(15);
/// How often API-token last-use times are written to the store.
const TOKEN_USE_FLUSH: Duration = Duration::from_secs(30);
/// How often expired sessions and refresh tokens are deleted.
const SESSION_PURGE: Duration = Duration::from_secs(3600);

/// A built, bound, not yet serving appliance.
pub struct App {
    state: AppState,
    listener: std::net::TcpListener,
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    admin_listener: UnixListener,
    admin_path: PathBuf,
    /// The syslog listener, when `syslog_listen` is set.
    syslog: Option<SyslogListener>,
    writer: JoinHandle<()>,
    detection_thread: JoinHandle<()>,
    indexer: Indexer,
    indexer_thread: JoinHandle<()>,
}

impl App {
    /// Prepares everything and binds the listeners; first start creates what is missing.
    pub fn build(settings: Settings) -> anyhow::Result<Self> {
        keys::create_private_dir(&settings.data_dir).with_context(|| {
            format!(
                "cannot create data directory {}",
                settings.data_dir.display()
            )
        })?;
        let keys = keys::load_keys(
            &settings.master_key,
            &settings.jwt_secret,
            settings.allow_insecure_secret_files,
        )?;
        // After the keys: a secret readable by others is refused above, not quietly mended.
        keys::tighten_data_dir(&settings.data_dir).with_context(|| {
            format!(
                "cannot restrict the permissions of {}",
                settings.data_dir.display()
            )
        })?;
        let tls = tls::load(&settings.tls, &settings.data_dir, settings.listen)?;
        let store = Arc::new(Store::open(
            &settings.database_path(),
            settings.cache_bytes,
        )?);
        bootstrap_admin(&store, &settings)?;
        let auth = Arc::new(Auth::new(
            Arc::clone(&store),
            keys.jwt.expose(),
            Lifetimes {
                access: settings.access_token_ttl,
                refresh: settings.refresh_token_ttl,
                web_session: settings.session_ttl,
            },
        )?);
        let memory = crate::ingest::logs::LineMemory::load(&store)
            .context("cannot load the log templates")?;
        let geo = load_geo(&settings)?;
        let detector = recorder::restore(&store, settings.rules.clone(), geo.clone())?;
        let (pipeline, writer) = Pipeline::start(Arc::clone(&store))?;
        let (recorder, detection_thread) = Recorder::start(Arc::clone(&store), detector)?;
        let index_dir = crate::search::index_dir(&settings.data_dir);
        let (search, checkpoint) = SearchIndex::open(&index_dir)
            .with_context(|| format!("cannot open the search index in {}", index_dir.display()))?;
        let search = Arc::new(search);
        let (indexer, indexer_thread) = Indexer::start(
            Arc::clone(&search),
            Arc::clone(&store),
            checkpoint,
            settings.index_memory_bytes,
        )?;

        let listener = std::net::TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let admin_path = settings.admin_socket_path();
        let admin_listener = admin_socket::bind(&admin_path)?;
        let syslog = match settings.syslog_listen {
            Some(at) => {
                let listener = SyslogListener::bind(at)
                    .with_context(|| format!("cannot receive syslog on {at}"))?;
                tracing::info!(addr = %listener.addr(), "receiving syslog (UDP and TCP)");
                Some(listener)
            }
            None => None,
        };
        let syslog_addr = syslog.as_ref().map(SyslogListener::addr);

        for (name, source) in &settings.sources {
            tracing::debug!(option = name, source, "configuration");
        }
        tracing::info!(
            %addr,
            data_dir = %settings.data_dir.display(),
            certificate = %tls.cert_path.display(),
            sha256_fingerprint = %tls.fingerprint,
            "securify listening (HTTPS)"
        );
        Ok(Self {
            state: AppState {
                store,
                auth,
                intake: Intake::new(pipeline, recorder, memory),
                syslog_addr,
                syslog_stats: Arc::default(),
                search,
                geo,
                monitor: Arc::default(),
                settings: Arc::new(settings),
                started_at: Instant::now(),
            },
            listener,
            addr,
            tls: tls.config,
            admin_listener,
            admin_path,
            syslog,
            writer,
            detection_thread,
            indexer,
            indexer_thread,
        })
    }

    /// The bound HTTPS address (the real port when configured with port 0).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves, then shuts down gracefully.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Self {
            state,
            listener,
            addr,
            tls,
            admin_listener,
            admin_path,
            syslog,
            writer,
            detection_thread,
            indexer,
            indexer_thread,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let admin_task = tokio::spawn(admin_socket::serve(
            admin_listener,
            state.clone(),
            stop_rx.clone(),
        ));
        let syslog_task = syslog.map(|listener| {
            tokio::spawn(listener.run(
                state.intake.clone(),
                Arc::clone(&state.syslog_stats),
                stop_rx.clone(),
            ))
        });
        let monitor_task = tokio::spawn(crate::live::run(
            Arc::clone(&state.store),
            Arc::clone(state.intake.stats()),
            Arc::clone(&state.monitor),
            stop_rx.clone(),
        ));
        let upkeep_task = tokio::spawn(upkeep(state.clone(), stop_rx));

        // A client must finish its TLS handshake and request head in time, on a new connection
        // and on every later request: otherwise a few slow clients could hold every connection.
        let limits = serve::Limits {
            max_connections: state.settings.max_connections,
            max_per_address: state.settings.max_connections_per_address,
            header_timeout: state.settings.request_header_timeout,
        }
        .fitted_to_descriptors();
        let ledger = serve::Ledger::new(limits);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let (drain_tx, drain_rx) = watch::channel(false);
        let (close_tx, close_rx) = watch::channel(false);
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let server = tokio::spawn(serve::accept(
            listener,
            tokio_rustls::TlsAcceptor::from(tls),
            http::router(state.clone(), Arc::clone(&in_flight)),
            ledger,
            serve::Stop {
                drain: drain_rx.clone(),
                close: close_rx,
            },
        ));
        if let Some(path) = &state.settings.addr_file {
            write_addr_file(path, addr)?;
        }

        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        let _ = drain_tx.send(true);
        server.await.context("server task")?;
        // Idle keep-alive connections (an HTTP/2 client that never hangs up, a dashboard tab)
        // would hold the shutdown for the whole grace period; once no request is in flight
        // there is nothing left to finish, so the remaining connections are closed.
        let deadline = Instant::now() + GRACE_PERIOD;
        while in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = close_tx.send(true);
        let _ = stop_tx.send(true);
        let _ = admin_task.await;
        let _ = upkeep_task.await;
        let _ = monitor_task.await;
        // Lines already received are stored before the writer stops.
        if let Some(task) = syslog_task {
            let _ = task.await;
        }
        if let Err(e) = state.auth.flush_token_uses() {
            tracing::warn!(error = ?e, "could not record token last-use times");
        }
        if let Some(path) = &state.settings.addr_file {
            let _ = std::fs::remove_file(path);
        }
        let _ = std::fs::remove_file(&admin_path);
        // The writer and detection threads end once the last intake handle is gone and their
        // queues are empty.
        drop(state);
        tokio::task::spawn_blocking(move || writer.join())
            .await?
            .map_err(|_| anyhow::anyhow!("event writer thread panicked"))?;
        tokio::task::spawn_blocking(move || detection_thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("detection thread panicked"))?;
        // Everything stored is committed: the index takes it in and records its checkpoint.
        indexer.stop();
        tokio::task::spawn_blocking(move || indexer_thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("search indexer thread panicked"))?;
        tracing::info!("stopped cleanly");
        Ok(())
    }
}

/// Creates the first admin when there are no users at all.
fn bootstrap_admin(store: &Store, settings: &Settings) -> anyhow::Result<()> {
    if !store.list_users()?.is_empty() {
        return Ok(());
    }
    let (password, generated) = match &settings.admin_password {
        Some(secret) => (secret.expose_str().to_string(), false),
        None => (password::generate(), true),
    };
    password::check_policy(&password, "admin")
        .map_err(|e| anyhow::anyhow!("SECURIFY_ADMIN_PASSWORD: {e}"))?;
    let admin = UserRecord {
        username: "admin".into(),
        password_hash: password::hash(&password),
        role: Role::Admin,
        created_at: crate::now_micros(),
        disabled: false,
    };
    store.create_user(&admin)?;
    if generated {
        // Printed once, on standard output rather than in the (possibly shipped) log.
        println!("First start: created user `admin` with password: {password}");
        println!("It is not shown again; change it with `securify user passwd admin`.");
        tracing::info!(
            "created the first admin; its generated password was printed on standard output"
        );
    } else {
        tracing::info!("created the first admin with the configured password");
    }
    Ok(())
}

/// Writes the bound address atomically, so a reader never sees half of it.
fn write_addr_file(path: &Path, addr: SocketAddr) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{addr}\n"))
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Periodic housekeeping: token last-use times and expired sessions.
async fn upkeep(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut flush = tokio::time::interval(TOKEN_USE_FLUSH);
    let mut purge = tokio::time::interval(SESSION_PURGE);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = flush.tick() => {
                let auth = Arc::clone(&state.auth);
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || auth.flush_token_uses()).await {
                    tracing::warn!(error = ?e, "could not record token last-use times");
                }
            }
            _ = purge.tick() => {
                let store = Arc::clone(&state.store);
                match tokio::task::spawn_blocking(move || store.purge_expired_sessions(crate::now_micros() / 1_000_000)).await {
                    Ok(Ok(n)) if n > 0 => tracing::info!(removed = n, "purged expired sessions"),
                    Ok(Err(e)) => tracing::warn!(error = ?e, "could not purge expired sessions"),
                    _ => {}
                }
            }
        }
    }
}

/// The IP-to-country database: `geoip_db` if set, the built-in one otherwise.
pub fn load_geo(settings: &Settings) -> anyhow::Result<Option<Arc<Geo>>> {
    let geo = match &settings.geoip_db {
        Some(path) => Geo::open(path)?,
        None => Geo::built_in()?,
    };
    tracing::info!(source = %geo.source, "geolocation loaded");
    Ok(Some(Arc::new(geo)))
}
