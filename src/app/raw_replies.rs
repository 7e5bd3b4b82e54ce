//! The replies HTTP/1.1 writes by itself, given the security headers of every other reply.
//!
//! When a request head cannot be read (a malformed line, a URI or headers too long), hyper
//! answers `400`, `414` or `431` without calling a handler, so no middleware adds the headers.
//! [`WithHeaders`] sits between hyper and the TLS stream of an HTTP/1.1 connection and
//! recognises those replies by their exact shape (one of the three status lines, an empty body,
//! alone in a write and without our headers), adding the headers before they go out.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::http::SECURITY_HEADERS;

/// The status lines hyper writes for requests it cannot read.
const OWN_REPLIES: [&[u8]; 3] = [
    b"HTTP/1.1 400 Bad Request\r\n",
    b"HTTP/1.1 414 URI Too Long\r\n",
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
];

/// An HTTP/1.1 stream whose own error replies get the security headers.
pub struct WithHeaders<S> {
    inner: S,
    /// An amended reply being written, and how much of it is out.
    pending: Vec<u8>,
    written: usize,
    /// The length of the write it replaces, reported once it is all out.
    replaces: usize,
}

impl<S> WithHeaders<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            written: 0,
            replaces: 0,
        }
    }
}

/// `write` with the security headers added, when it is one of hyper's own error replies.
fn amend(write: &[u8]) -> Option<Vec<u8>> {
    if !OWN_REPLIES.iter().any(|line| write.starts_with(line)) || !write.ends_with(b"\r\n\r\n") {
        return None;
    }
    let head = std::str::from_utf8(write).ok()?.to_ascii_lowercase();
    let body_follows = head.matches("\r\n\r\n").count() != 1;
    if body_follows
        || !head.contains("\r\ncontent-length: 0\r\n")
        || head.contains("content-security-policy")
    {
        return None;
    }
    let mut amended = write[..write.len() - 2].to_vec();
    for (name, value) in SECURITY_HEADERS {
        amended.extend_from_slice(name.as_bytes());
        amended.extend_from_slice(b": ");
        amended.extend_from_slice(value.as_bytes());
        amended.extend_from_slice(b"\r\n");
    }
    amended.extend_from_slice(b"cache-control: no-store\r\n\r\n");
    Some(amended)
}

impl<S: AsyncRead + Unpin> AsyncRead for WithHeaders<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WithHeaders<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.pending.is_empty() {
            match amend(buf) {
                Some(amended) => {
                    this.pending = amended;
                    this.written = 0;
                    this.replaces = buf.len();
                }
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        // hyper offers the same bytes again after `Pending`, so the amended reply stands for
        // them until it is all written.
        while this.written < this.pending.len() {
            match Pin::new(&mut this.inner).poll_write(cx, &this.pending[this.written..]) {
                Poll::Ready(Ok(0)) => {
                    this.pending.clear();
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => this.written += n,
                Poll::Ready(Err(e)) => {
                    this.pending.clear();
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        this.pending.clear();
        Poll::Ready(Ok(this.replaces))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_own_replies_are_amended() {
        let own = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Thu, 03 Dec 2026 10:00:00 GMT\r\n\r\n";
        let amended = String::from_utf8(amend(own).unwrap()).unwrap();
        assert!(amended.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(amended.contains("\r\nx-frame-options: DENY\r\n"));
        assert!(amended.contains("\r\ncontent-security-policy: default-src 'self'"));
        assert!(amended.ends_with("cache-control: no-store\r\n\r\n"));
        assert_eq!(amended.matches("\r\n\r\n").count(), 1);

        // A reply of ours (already headed), one with a body, or anything else is left alone.
        let ours =
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ncontent-security-policy: x\r\n\r\n";
        assert!(amend(ours).is_none());
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}";
        assert!(amend(with_body).is_none());
        let two = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nHTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        assert!(amend(two).is_none());
        assert!(amend(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(amend(b"some body bytes\r\n\r\n").is_none());
    }
}
