//! Clients that come from a chosen loopback address (127.0.0.2, say): Linux routes all
//! of 127.0.0.0/8 to the loopback, so one test can be several client addresses, as the
//! server's per-address limits see them.

use hyper_util::rt::TokioIo;
use std::net::{IpAddr, SocketAddr};
use tokio::net::{TcpSocket, TcpStream};
use tonic::transport::{Channel, Endpoint, Uri};

/// A TCP connection to `server` from `source` (any port).
pub async fn connect_from(source: IpAddr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = match source {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(server).await
}

/// A gRPC channel to `server` (host:port) whose one connection comes from `source`.
pub async fn channel_from(source: IpAddr, server: &str) -> Result<Channel, String> {
    let addr: SocketAddr = server
        .parse()
        .map_err(|e| format!("`{server}` is not an address: {e}"))?;
    Endpoint::from_shared(format!("http://{server}"))
        .map_err(|e| e.to_string())?
        .connect_with_connector(tower::service_fn(move |_: Uri| async move {
            connect_from(source, addr).await.map(TokioIo::new)
        }))
        .await
        .map_err(|e| format!("connecting to {server} from {source}: {e}"))
}
