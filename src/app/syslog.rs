//! The syslog listener: UDP datagrams and TCP streams (newline-delimited or octet-counted, RFC
//! 6587) on one port, gathered into batches and stored like `POST /api/v1/logs` lines.
//!
//! Syslog has no acknowledgement: a TCP sender is held back (by TCP) while the batcher is
//! behind, and UDP datagrams that find the queue full are dropped and counted, as a syslog
//! relay would. Lines without a syslog header get the sender's address as their host.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::ingest::logs::LogOptions;
use crate::ingest::parse::LineClock;
use crate::intake::{Input, Intake};
use crate::state::ListenerStats;

/// Lines waiting for the batcher; beyond it TCP senders wait and UDP datagrams are dropped.
const QUEUE_LINES: usize = 65_536;
/// Most lines stored in one batch, and how long the first line of a batch may wait.
const BATCH_LINES: usize = 5_000;
const BATCH_WAIT: Duration = Duration::from_millis(20);
/// Longest message accepted (octet-counted or newline-delimited); longer frames end the
/// connection, longer datagrams are cut.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Most TCP senders at once.
const MAX_CONNECTIONS: usize = 512;
/// A TCP sender silent this long is disconnected.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// The bound sockets, before serving.
#[derive(Debug)]
pub struct SyslogListener {
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
    addr: SocketAddr,
}

impl SyslogListener {
    /// Binds TCP and UDP on `addr`; with port 0, UDP takes the port TCP was given.
    pub fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        let tcp = std::net::TcpListener::bind(addr)?;
        let addr = tcp.local_addr()?;
        let udp = std::net::UdpSocket::bind(addr)?;
        tcp.set_nonblocking(true)?;
        udp.set_nonblocking(true)?;
        Ok(Self { udp, tcp, addr })
    }

    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `stop` turns true, then stores what it has received and returns.
    pub async fn run(
        self,
        intake: Intake,
        counters: Arc<ListenerStats>,
        stop: watch::Receiver<bool>,
    ) {
        let (udp, tcp) = match (
            UdpSocket::from_std(self.udp),
            TcpListener::from_std(self.tcp),
        ) {
            (Ok(udp), Ok(tcp)) => (udp, tcp),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "syslog: cannot serve the bound sockets");
                return;
            }
        };
        let (tx, rx) = mpsc::channel::<(String, IpAddr)>(QUEUE_LINES);
        let udp = tokio::spawn(receive_udp(
            udp,
            tx.clone(),
            Arc::clone(&counters),
            stop.clone(),
        ));
        let tcp = tokio::spawn(accept_tcp(tcp, tx, Arc::clone(&counters), stop));
        // The batcher ends when every sender is gone: after the receivers have stopped.
        batch_and_store(rx, &intake).await;
        let _ = udp.await;
        let _ = tcp.await;
    }
}

async fn receive_udp(
    socket: UdpSocket,
    tx: mpsc::Sender<(String, IpAddr)>,
    stats: Arc<ListenerStats>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; MAX_MESSAGE_BYTES];
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            received = socket.recv_from(&mut buffer) => {
                let Ok((len, peer)) = received else { continue };
                let text = String::from_utf8_lossy(&buffer[..len]);
                for line in text.split('\n').filter(|l| !l.trim().is_empty()) {
                    stats.received.fetch_add(1, Ordering::Relaxed);
                    if tx.try_send((line.to_string(), peer.ip())).is_err() {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

async fn accept_tcp(
    listener: TcpListener,
    tx: mpsc::Sender<(String, IpAddr)>,
    stats: Arc<ListenerStats>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::warn!(%peer, "syslog: too many TCP senders; connection refused");
                    continue;
                };
                let tx = tx.clone();
                let stats = Arc::clone(&stats);
                let stop = stop.clone();
                connections.spawn(async move {
                    if let Err(e) = read_stream(stream, peer.ip(), &tx, &stats, stop).await {
                        tracing::info!(%peer, error = %e, "syslog: TCP sender disconnected");
                    }
                    drop(slot);
                });
            }
        }
    }
    // Senders still connected get to finish the message they are sending.
    while connections.join_next().await.is_some() {}
}

/// Reads one TCP sender: each message is either `LEN SP MSG` (octet counting) or a line.
async fn read_stream(
    stream: TcpStream,
    peer: IpAddr,
    tx: &mpsc::Sender<(String, IpAddr)>,
    stats: &ListenerStats,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let message = tokio::select! {
            _ = stop.changed() => return Ok(()),
            message = tokio::time::timeout(IDLE_TIMEOUT, read_message(&mut reader)) => {
                message.map_err(|_| std::io::Error::other("idle for too long"))??
            }
        };
        let Some(message) = message else {
            return Ok(());
        };
        for line in message.split('\n').filter(|l| !l.trim().is_empty()) {
            stats.received.fetch_add(1, Ordering::Relaxed);
            if tx.send((line.to_string(), peer)).await.is_err() {
                return Ok(());
            }
        }
    }
}

/// The next message of a stream, `None` at its end.
async fn read_message(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<String>> {
    let buffered = reader.fill_buf().await?;
    let Some(&first) = buffered.first() else {
        return Ok(None);
    };
    if first.is_ascii_digit() {
        // Octet counting: the length, one space, then exactly that many bytes.
        let mut length = Vec::new();
        reader.read_until(b' ', &mut length).await?;
        let digits = std::str::from_utf8(&length[..length.len().saturating_sub(1)])
            .ok()
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
        let len: usize = digits
            .and_then(|d| d.parse().ok())
            .filter(|&n| n <= MAX_MESSAGE_BYTES)
            .ok_or_else(|| std::io::Error::other("bad or oversized octet count"))?;
        let mut message = vec![0u8; len];
        reader.read_exact(&mut message).await?;
        return Ok(Some(String::from_utf8_lossy(&message).into_owned()));
    }
    let mut line = Vec::new();
    let mut limited = (&mut *reader).take(MAX_MESSAGE_BYTES as u64 + 1);
    limited.read_until(b'\n', &mut line).await?;
    if line.len() > MAX_MESSAGE_BYTES {
        return Err(std::io::Error::other("line longer than the limit"));
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

/// Gathers lines into batches (by count or age) and stores each through the pipeline.
async fn batch_and_store(mut rx: mpsc::Receiver<(String, IpAddr)>, intake: &Intake) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + BATCH_WAIT;
        while batch.len() < BATCH_LINES {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(line)) => batch.push(line),
                Ok(None) | Err(_) => break,
            }
        }
        store(batch, intake).await;
    }
}

/// Stores a batch, the lines of each sender read with the sender's address as their host.
async fn store(batch: Vec<(String, IpAddr)>, intake: &Intake) {
    let mut by_sender: HashMap<IpAddr, String> = HashMap::new();
    for (line, peer) in batch {
        let text = by_sender.entry(peer).or_default();
        text.push_str(&line);
        text.push('\n');
    }
    let parts = by_sender
        .into_iter()
        .map(|(peer, text)| {
            let options = LogOptions {
                host: Some(peer.to_string()),
                source: Some("syslog".into()),
                clock: LineClock::for_year(None, time::UtcOffset::UTC),
            };
            (text.into(), options)
        })
        .collect();
    if let Err(e) = intake.take(Input::Lines(parts)).await {
        tracing::error!(error = %e, "syslog: could not store a batch");
    }
}
