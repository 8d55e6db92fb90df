//! Accepting connections with bounds, so that neither a flood of idle connections nor
//! one client address can lock others out:
//! - at most `--max-connections` open at once, and `--max-connections-per-ip` from one
//!   client address ([`admission`]); connections past either are closed as soon as they
//!   are accepted (the client sees the connection reset and can retry) rather than left
//!   queued in the kernel's backlog;
//! - a connection must complete its TLS handshake (when the server has TLS, [`tls`])
//!   and send the HTTP/2 preface (on a listener that takes HTTP/1.1 too, its first
//!   bytes) within `--handshake-timeout-secs`, or it is closed and its place given
//!   back; a client that speaks in clear to a TLS server, or TLS to a server in clear,
//!   is told apart by its first byte;
//! - such refusals are counted by reason and logged at most every 10 s
//!   ([`refusal_log`]).

pub mod admission;
pub mod refusal_log;
pub mod tls;

use admission::{Admission, Admitted, OverLimit};
use refusal_log::{REPORT_INTERVAL, Refusal, RefusalLog};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tls::Tls;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

/// What every HTTP/2 connection opens with (RFC 9113, 3.4): the server reads it before
/// handing the connection to tonic, which then reads it again from [`Limited`].
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The first byte of every TLS connection: a handshake record (RFC 8446, 5.1).
const TLS_HANDSHAKE: u8 = 0x16;

/// The bounds on connections; see the module's documentation.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub handshake_timeout: Duration,
}

/// An admitted connection that has sent the preface (or, where HTTP/1.1 is taken, its
/// first bytes). It holds its place until it closes, and gives tonic the bytes read
/// before the rest.
#[derive(Debug)]
pub struct Limited {
    stream: Transport,
    peer: Peer,
    /// What was read to admit it, for tonic to read again.
    first_bytes: Vec<u8>,
    /// How much of `first_bytes` tonic has read.
    replayed: usize,
    _admitted: Admitted,
}

/// The connections [`accept`] hands over.
pub type Incoming = ReceiverStream<io::Result<Limited>>;

/// What a listener's clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocols {
    /// gRPC: HTTP/2 alone.
    Http2,
    /// Also HTTP/1.1: gRPC-Web and the page of the admin listener.
    Http1AndHttp2,
}

/// A connection's bytes: in clear or through TLS.
#[derive(Debug)]
enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Who is at the other end of a connection: what every request on it carries in its
/// extensions (tonic puts a connection's `ConnectInfo` there).
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub remote_addr: Option<SocketAddr>,
    /// With mutual TLS, the common name of the certificate the client presented: what
    /// the token file gives roles to.
    pub client_common_name: Option<Arc<str>>,
}

/// A listener's connections open and refused: what its metrics read.
#[derive(Debug, Clone)]
pub struct Counts {
    pub open: Arc<Admission>,
    pub refusals: Arc<RefusalLog>,
}

impl Counts {
    /// For a listener held to `limits`.
    pub fn new(limits: &ConnectionLimits) -> Self {
        Counts {
            open: Admission::new(limits.max_connections, limits.max_connections_per_ip),
            refusals: Arc::new(RefusalLog::default()),
        }
    }
}

/// Accepts on `listener` until the returned stream is dropped, handing over the
/// connections that `limits` admit and that send the HTTP/2 preface in time, each with
/// TCP_NODELAY set (tonic's own setting only applies to listeners it binds, and without
/// it small responses wait out Nagle's algorithm against delayed ACKs, about 40 ms).
pub fn accept(
    listener: TcpListener,
    limits: ConnectionLimits,
    tls: Option<Arc<Tls>>,
    counts: Counts,
    protocols: Protocols,
) -> Incoming {
    let Counts {
        open: admission,
        refusals,
    } = counts;
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(async move {
        let reporter = {
            let refusals = refusals.clone();
            tokio::spawn(async move {
                refusals
                    .report(REPORT_INTERVAL, |new, since_start| {
                        refusal_log::log_refusals(new, since_start, refusals.take_tls_failure())
                    })
                    .await;
            })
        };
        loop {
            let accepted = tokio::select! {
                () = sender.closed() => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Running out of file descriptors is the usual cause: back off briefly.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let admitted = match admission.admit(peer.ip()) {
                Ok(admitted) => admitted,
                Err(OverLimit::Total) => {
                    refusals.count(Refusal::OverMaxConnections);
                    continue;
                }
                Err(OverLimit::PerAddress) => {
                    refusals.count(Refusal::OverMaxConnectionsPerIp);
                    continue;
                }
            };
            // Each waits for its preface on its own task, so that a slow one holds
            // only its own place; admission bounds how many wait at once.
            let (sender, refusals, tls) = (sender.clone(), refusals.clone(), tls.clone());
            tokio::spawn(async move {
                let opened = open(stream, tls, protocols);
                let refusal = match tokio::time::timeout(limits.handshake_timeout, opened).await {
                    Ok(Ok((stream, peer, first_bytes))) => {
                        let connection = Limited {
                            stream,
                            peer,
                            first_bytes,
                            replayed: 0,
                            _admitted: admitted,
                        };
                        let _ = sender.send(Ok(connection)).await;
                        return;
                    }
                    Ok(Err(refusal)) => refusal,
                    Err(_) => Refusal::HandshakeTimeout.into(),
                };
                match refusal {
                    Refused::Because(reason) => refusals.count(reason),
                    Refused::Tls(why) => refusals.count_tls_failure(why),
                }
            });
        }
        reporter.abort();
    });
    ReceiverStream::new(receiver)
}

/// Why a connection was closed before it was served.
enum Refused {
    Because(Refusal),
    /// Its TLS handshake failed, for this reason.
    Tls(String),
}

impl From<Refusal> for Refused {
    fn from(reason: Refusal) -> Self {
        Refused::Because(reason)
    }
}

/// Completes the TLS handshake when the server has TLS, then reads the preface (or,
/// where HTTP/1.1 is taken too, whatever comes first), and returns what it read; a
/// connection that closes before sending it is refused as not HTTP/2.
async fn open(
    stream: TcpStream,
    tls: Option<Arc<Tls>>,
    protocols: Protocols,
) -> Result<(Transport, Peer, Vec<u8>), Refused> {
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(1) => {}
        _ => return Err(Refusal::NotHttp2.into()),
    }
    let _ = stream.set_nodelay(true);
    let mut peer = Peer {
        remote_addr: stream.peer_addr().ok(),
        client_common_name: None,
    };
    let mut transport = match tls {
        Some(_) if first[0] == PREFACE[0] => {
            say_tls_required(stream).await;
            return Err(Refusal::PlaintextToTls.into());
        }
        None if first[0] == TLS_HANDSHAKE => return Err(Refusal::TlsToPlaintext.into()),
        None => Transport::Plain(stream),
        Some(tls) => {
            let stream = tls::acceptor(&tls)
                .accept(stream)
                .await
                .map_err(|e| Refused::Tls(e.to_string()))?;
            peer.client_common_name = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|certificate| tls::common_name(certificate));
            Transport::Tls(Box::new(stream))
        }
    };
    if protocols == Protocols::Http1AndHttp2 {
        let mut first = vec![0u8; PREFACE.len()];
        return match transport.read(&mut first).await {
            Ok(n) if n > 0 => {
                first.truncate(n);
                Ok((transport, peer, first))
            }
            _ => Err(Refusal::NotHttp2.into()),
        };
    }
    let mut preface = [0u8; PREFACE.len()];
    match transport.read_exact(&mut preface).await {
        Ok(_) if &preface == PREFACE => Ok((transport, peer, preface.to_vec())),
        _ => Err(Refusal::NotHttp2.into()),
    }
}

/// What a plaintext HTTP/2 client of a TLS server is told, once it has sent its first
/// request: an empty SETTINGS frame (the server's preface) and a GOAWAY with
/// INADEQUATE_SECURITY whose debug data says what to do, so that the call fails with
/// "connection error received: security properties do not meet minimum requirements
/// (b\"this server requires TLS: ...\")" rather than a broken pipe. Sent before the
/// request has arrived, the GOAWAY ends the connection while the request is still queued
/// in the client, which then sees only "connection closed".
async fn say_tls_required(mut stream: TcpStream) {
    const DEBUG: &[u8] = b"this server requires TLS: connect with https://";
    const INADEQUATE_SECURITY: u32 = 0xc;
    const HEADERS: u8 = 0x1;
    // HTTP/2's default largest frame: a client that sends more is not worth an answer.
    const MAX_FRAME: usize = 16 << 10;
    let mut preface = [0u8; PREFACE.len()];
    if stream.read_exact(&mut preface).await.is_err() || &preface != PREFACE {
        return;
    }
    let mut payload = vec![0u8; MAX_FRAME];
    loop {
        let mut header = [0u8; 9];
        if stream.read_exact(&mut header).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        if len > MAX_FRAME || stream.read_exact(&mut payload[..len]).await.is_err() {
            return;
        }
        if header[3] == HEADERS {
            break;
        }
    }
    let mut frames = vec![0, 0, 0, 0x4, 0, 0, 0, 0, 0];
    let len = (8 + DEBUG.len()) as u32;
    frames.extend_from_slice(&len.to_be_bytes()[1..]);
    frames.extend_from_slice(&[0x7, 0, 0, 0, 0, 0]);
    frames.extend_from_slice(&0u32.to_be_bytes());
    frames.extend_from_slice(&INADEQUATE_SECURITY.to_be_bytes());
    frames.extend_from_slice(DEBUG);
    if stream.write_all(&frames).await.is_err() {
        return;
    }
    // The client closes once it has read the GOAWAY; closing first could have it see
    // a reset (its frames unread) before the GOAWAY: read until it closes, for as long
    // as the handshake timeout around this allows.
    while matches!(stream.read(&mut payload).await, Ok(n) if n > 0) {}
}

impl Connected for Limited {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.peer.clone()
    }
}

/// Calls `$call` on the transport's stream, whichever it is.
macro_rules! on_stream {
    ($transport:expr, $stream:ident => $call:expr) => {
        match $transport {
            Transport::Plain($stream) => $call,
            Transport::Tls($stream) => $call,
        }
    };
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        on_stream!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        on_stream!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_stream!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_stream!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        on_stream!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        on_stream!(self, s => s.is_write_vectored())
    }
}

impl AsyncRead for Limited {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.replayed < self.first_bytes.len() {
            let rest = &self.first_bytes[self.replayed..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            self.replayed += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
