//! Serving HTTPS: accepting connections within limits, TLS, HTTP/1.1 and HTTP/2, and closing
//! connections that hold resources without using them.
//!
//! Every connection holds a place in the [`Ledger`] from its accept to the moment its socket
//! closes (an upgraded WebSocket keeps its place). There are at most `max_connections` places in
//! all and `max_per_address` per client address; when a new connection finds its address's (or
//! the whole) allowance taken, the connection of that address (or any) that has been idle the
//! longest is closed to make room, and when none is idle the new one is refused. A flood of
//! connections from one address therefore cannot starve the others, and slow clients cannot keep
//! places for ever: the TLS handshake and the first request head must arrive within the header
//! timeout, a connection without a request in flight is closed after [`IDLE_TIMEOUT`], and
//! bodies are timed by [`super::body`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::raw_replies::WithHeaders;

/// How long a connection without a request in flight stays open.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest HTTP/1.1 request head (`431` above); HTTP/2's header lists stay at hyper's 16 KiB.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Streams one HTTP/2 connection may have open at once.
const MAX_STREAMS: u32 = 100;
/// Descriptors kept for the store, the index, syslog and the admin socket when the connection
/// allowance is sized to the process's descriptor limit.
const RESERVED_DESCRIPTORS: u64 = 256;

/// The connection allowances and timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_address: usize,
    /// Time for the TLS handshake and each request head.
    pub header_timeout: Duration,
}

impl Limits {
    /// Raises the process's descriptor limit as far as allowed and lowers `max_connections`
    /// to what it can hold, saying so.
    #[must_use]
    pub fn fitted_to_descriptors(mut self) -> Self {
        let wanted = self.max_connections as u64 + RESERVED_DESCRIPTORS;
        let limit = match rlimit::increase_nofile_limit(wanted) {
            Ok(limit) => limit,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the open-file limit");
                return self;
            }
        };
        let fits = limit.saturating_sub(RESERVED_DESCRIPTORS).max(16) as usize;
        if fits < self.max_connections {
            tracing::warn!(
                configured = self.max_connections,
                allowed = fits,
                open_file_limit = limit,
                "max_connections lowered to fit the open-file limit (raise LimitNOFILE / ulimit -n)"
            );
            self.max_connections = fits;
        }
        self.max_per_address = self.max_per_address.min(self.max_connections);
        self
    }
}

/// What one connection tells the ledger about itself.
#[derive(Debug)]
struct Activity {
    /// Requests being handled now.
    busy: AtomicUsize,
    /// Requests handled so far.
    served: AtomicU64,
    /// Milliseconds after the ledger's start when a request last ended (or the connection began).
    last: AtomicU64,
    /// Upgraded to another protocol: no longer HTTP, never idle.
    upgraded: AtomicBool,
    /// Asks the connection to close once its requests in flight are answered.
    close: Notify,
}

impl Activity {
    fn idle_for(&self, now_ms: u64) -> Option<Duration> {
        (self.busy.load(Ordering::Acquire) == 0 && !self.upgraded.load(Ordering::Acquire)).then(
            || Duration::from_millis(now_ms.saturating_sub(self.last.load(Ordering::Acquire))),
        )
    }
}

#[derive(Debug)]
struct Place {
    address: IpAddr,
    activity: Arc<Activity>,
}

#[derive(Debug, Default)]
struct Places {
    open: HashMap<u64, Place>,
    per_address: HashMap<IpAddr, usize>,
    next: u64,
}

impl Places {
    fn release(&mut self, id: u64) {
        if let Some(place) = self.open.remove(&id)
            && let Some(count) = self.per_address.get_mut(&place.address)
        {
            *count -= 1;
            if *count == 0 {
                self.per_address.remove(&place.address);
            }
        }
    }

    /// Closes the longest-idle connection among those `of` selects; false when none is idle.
    fn shed(&mut self, now_ms: u64, of: impl Fn(&Place) -> bool) -> bool {
        let oldest = self
            .open
            .iter()
            .filter(|(_, place)| of(place))
            .filter_map(|(id, place)| place.activity.idle_for(now_ms).map(|idle| (idle, *id)))
            .max();
        let Some((_, id)) = oldest else {
            return false;
        };
        if let Some(place) = self.open.get(&id) {
            place.activity.close.notify_one();
        }
        self.release(id);
        true
    }
}

/// The places of all open connections.
#[derive(Debug)]
pub struct Ledger {
    places: Mutex<Places>,
    limits: Limits,
    started: Instant,
}

impl Ledger {
    #[must_use]
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            places: Mutex::default(),
            limits,
            started: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Places> {
        self.places.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks every connection idle for longer than it may be to close: one that has not
    /// completed a request for the header timeout, any other for [`IDLE_TIMEOUT`].
    fn close_idle(&self) {
        let now_ms = self.now_ms();
        for place in self.lock().open.values() {
            let allowed = if place.activity.served.load(Ordering::Relaxed) == 0 {
                self.limits.header_timeout
            } else {
                IDLE_TIMEOUT
            };
            if place
                .activity
                .idle_for(now_ms)
                .is_some_and(|idle| idle >= allowed)
            {
                place.activity.close.notify_one();
            }
        }
    }

    /// Asks every connection to close once its requests in flight are answered.
    fn close_all(&self) {
        for place in self.lock().open.values() {
            place.activity.close.notify_one();
        }
    }

    /// A place for a new connection from `address`, making room by closing an idle one when
    /// needed; `None` when there is no room.
    fn admit(self: &Arc<Self>, address: IpAddr) -> Option<Ticket> {
        let now_ms = self.now_ms();
        let mut places = self.lock();
        let address_full =
            places.per_address.get(&address).copied().unwrap_or(0) >= self.limits.max_per_address;
        if address_full && !places.shed(now_ms, |place| place.address == address) {
            return None;
        }
        if places.open.len() >= self.limits.max_connections && !places.shed(now_ms, |_| true) {
            return None;
        }
        let id = places.next;
        places.next += 1;
        let activity = Arc::new(Activity {
            busy: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            last: AtomicU64::new(now_ms),
            upgraded: AtomicBool::new(false),
            close: Notify::new(),
        });
        places.open.insert(
            id,
            Place {
                address,
                activity: Arc::clone(&activity),
            },
        );
        *places.per_address.entry(address).or_insert(0) += 1;
        Some(Ticket {
            id,
            activity,
            ledger: Arc::clone(self),
        })
    }
}

/// A connection's place, given back when the socket closes.
#[derive(Debug)]
struct Ticket {
    id: u64,
    activity: Arc<Activity>,
    ledger: Arc<Ledger>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.ledger.lock().release(self.id);
    }
}

/// A request being handled on a connection; `started` is the ledger's clock.
struct Busy {
    activity: Arc<Activity>,
    started: Instant,
}

impl Busy {
    fn enter(activity: &Arc<Activity>, started: Instant) -> Self {
        activity.busy.fetch_add(1, Ordering::AcqRel);
        activity.served.fetch_add(1, Ordering::Relaxed);
        Self {
            activity: Arc::clone(activity),
            started,
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let now_ms = self.started.elapsed().as_millis() as u64;
        self.activity.last.store(now_ms, Ordering::Release);
        self.activity.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A socket that holds its connection's place until it is dropped.
struct Placed {
    stream: TcpStream,
    ticket: Ticket,
}

impl AsyncRead for Placed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Placed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// When to stop: `drain` stops accepting and asks connections to finish what they are doing,
/// `close` ends them.
#[derive(Clone)]
pub struct Stop {
    pub drain: watch::Receiver<bool>,
    pub close: watch::Receiver<bool>,
}

/// Accepts connections until `stop.drain`, serving `router` on each.
pub async fn accept(
    listener: TcpListener,
    tls: TlsAcceptor,
    router: Router,
    ledger: Arc<Ledger>,
    mut stop: Stop,
) {
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    loop {
        let accepted = tokio::select! {
            _ = stop.drain.changed() => {
                ledger.close_all();
                return;
            }
            _ = sweep.tick() => {
                ledger.close_idle();
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Some(ticket) = ledger.admit(peer.ip()) else {
                    tracing::debug!(%peer, "connection refused: no room");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let placed = Placed { stream, ticket };
                tokio::spawn(connection(
                    placed,
                    peer,
                    tls.clone(),
                    router.clone(),
                    Arc::clone(&ledger),
                    stop.clone(),
                ));
            }
            Err(e) => {
                // Out of descriptors or memory: waiting lets connections close.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves one connection: TLS, then HTTP until the client leaves, the connection is told to
/// close, it idles too long, or the server stops.
async fn connection(
    placed: Placed,
    peer: SocketAddr,
    tls: TlsAcceptor,
    router: Router,
    ledger: Arc<Ledger>,
    stop: Stop,
) {
    let activity = Arc::clone(&placed.ticket.activity);
    let limits = ledger.limits;
    let stream = match tokio::time::timeout(limits.header_timeout, tls.accept(placed)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let service = {
        let activity = Arc::clone(&activity);
        let started = ledger.started;
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let busy = Busy::enter(&activity, started);
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await;
                drop(busy);
                response
            }
        })
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let drive = Drive {
        peer,
        activity,
        header_timeout: limits.header_timeout,
        close: stop.close,
    };
    if h2 {
        drive.run(stream, service).await;
    } else {
        drive.run(WithHeaders::new(stream), service).await;
    }
}

/// What serving one connection's HTTP needs besides its stream.
struct Drive {
    peer: SocketAddr,
    activity: Arc<Activity>,
    header_timeout: Duration,
    /// Ends the connection at once (after the shutdown's grace period).
    close: watch::Receiver<bool>,
}

impl Drive {
    async fn run<I, S, B>(mut self, io: I, service: S)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>>
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .max_buf_size(MAX_HEAD_BYTES);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(MAX_STREAMS);
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(conn);
        let mut closing = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(peer = %self.peer, error = %e, "connection ended with an error");
                    }
                    // An upgraded connection (a WebSocket) lives on in its own task, holding
                    // its place until its socket closes.
                    self.activity.upgraded.store(true, Ordering::Release);
                    return;
                }
                // Shed, idle too long, or the server is stopping: finish what is in flight.
                () = self.activity.close.notified(), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = self.close.changed() => return,
            }
        }
    }
}
