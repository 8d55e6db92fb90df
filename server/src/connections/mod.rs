//! Accepting connections with bounds, so that neither a flood of idle connections nor
//! one client address can lock others out:
//! - at most `--max-connections` open at once, and `--max-connections-per-ip` from one
//!   client address ([`admission`]); connections past either are closed as soon as they
//!   are accepted (the client sees the connection reset and can retry) rather than left
//!   queued in the kernel's backlog;
//! - a connection must send the HTTP/2 preface within `--handshake-timeout-secs`, or it
//!   is closed and its place given back;
//! - such refusals are counted by reason and logged at most every 10 s
//!   ([`refusal_log`]).

pub mod admission;
pub mod refusal_log;

use admission::{Admission, Admitted, OverLimit};
use refusal_log::{REPORT_INTERVAL, Refusal, RefusalLog};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// What every HTTP/2 connection opens with (RFC 9113, 3.4): the server reads it before
/// handing the connection to tonic, which then reads it again from [`Limited`].
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The bounds on connections; see the module's documentation.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub handshake_timeout: Duration,
}

/// An admitted connection that has sent the preface. It holds its place until it
/// closes, and gives tonic the preface back before the rest of its bytes.
#[derive(Debug)]
pub struct Limited {
    stream: TcpStream,
    /// How much of [`PREFACE`] tonic has read back.
    preface_read: usize,
    _admitted: Admitted,
}

/// Accepts on `listener` until the returned stream is dropped, handing over the
/// connections that `limits` admit and that send the HTTP/2 preface in time, each with
/// TCP_NODELAY set (tonic's own setting only applies to listeners it binds, and without
/// it small responses wait out Nagle's algorithm against delayed ACKs, about 40 ms).
pub fn accept(
    listener: TcpListener,
    limits: ConnectionLimits,
    refusals: Arc<RefusalLog>,
) -> ReceiverStream<io::Result<Limited>> {
    let admission = Admission::new(limits.max_connections, limits.max_connections_per_ip);
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(async move {
        let reporter = {
            let refusals = refusals.clone();
            tokio::spawn(async move {
                refusals
                    .report(REPORT_INTERVAL, refusal_log::log_refusals)
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
            let (sender, refusals) = (sender.clone(), refusals.clone());
            tokio::spawn(async move {
                match handshake(stream, admitted, limits.handshake_timeout).await {
                    Ok(connection) => {
                        let _ = sender.send(Ok(connection)).await;
                    }
                    Err(refusal) => refusals.count(refusal),
                }
            });
        }
        reporter.abort();
    });
    ReceiverStream::new(receiver)
}

/// Waits for the preface; a connection that closes before sending it is refused as
/// not HTTP/2.
async fn handshake(
    mut stream: TcpStream,
    admitted: Admitted,
    timeout: Duration,
) -> Result<Limited, Refusal> {
    let mut preface = [0u8; PREFACE.len()];
    match tokio::time::timeout(timeout, stream.read_exact(&mut preface)).await {
        Err(_) => return Err(Refusal::HandshakeTimeout),
        Ok(Err(_)) => return Err(Refusal::NotHttp2),
        Ok(Ok(_)) if &preface != PREFACE => return Err(Refusal::NotHttp2),
        Ok(Ok(_)) => {}
    }
    let _ = stream.set_nodelay(true);
    Ok(Limited {
        stream,
        preface_read: 0,
        _admitted: admitted,
    })
}

impl Connected for Limited {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Limited {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.preface_read < PREFACE.len() {
            let rest = &PREFACE[self.preface_read..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            self.preface_read += n;
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
