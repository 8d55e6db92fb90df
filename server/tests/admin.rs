//! The web admin's listener against the real binary: the page and its files as the
//! binary embeds them, the API over gRPC-Web as a browser sends it (HTTP/1.1), tokens
//! as on the gRPC port, and `--admin off`.

use evenire_client::{Client, EventData, ExpectedVersion, StreamId};
use evenire_proto::v1::{ListStreamsRequest, ListStreamsResponse};
use evenire_testkit::process::ServerProcess;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;

/// A response: status line, headers (lower-cased names), body (de-chunked).
struct Response {
    status: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request over HTTP/1.1 on a connection of its own.
async fn request(addr: &str, head: &str, body: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("connect to the admin");
    let mut message = format!(
        "{head}\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    message.extend_from_slice(body);
    stream.write_all(&message).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head and a body");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v == "chunked")
    {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut chunked: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = chunked
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size");
        let size = usize::from_str_radix(String::from_utf8_lossy(&chunked[..line_end]).trim(), 16)
            .expect("a hex chunk size");
        if size == 0 {
            return body;
        }
        let start = line_end + 2;
        body.extend_from_slice(&chunked[start..start + size]);
        chunked = &chunked[start + size + 2..];
    }
}

/// A gRPC-Web call as a browser's Connect transport sends it: its messages and its
/// trailers (`grpc-status` and the rest).
async fn grpc_web(
    addr: &str,
    method: &str,
    message: &[u8],
    token: Option<&str>,
) -> (Vec<Vec<u8>>, String) {
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(message);
    let auth = token.map_or(String::new(), |t| format!("\r\nAuthorization: Bearer {t}"));
    let head = format!(
        "POST /evenire.v1.EventStoreService/{method} HTTP/1.1\r\n\
         Content-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1{auth}"
    );
    let response = request(addr, &head, &frame).await;
    assert!(response.status.contains("200"), "{}", response.status);
    let (mut messages, mut trailers) = (Vec::new(), String::new());
    let mut body = &response.body[..];
    while body.len() >= 5 {
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let payload = &body[5..5 + len];
        match body[0] & 0x80 {
            0 => messages.push(payload.to_vec()),
            _ => trailers.push_str(&String::from_utf8_lossy(payload)),
        }
        body = &body[5 + len..];
    }
    // Without messages, a status may come in the headers alone.
    if let Some(status) = response.header("grpc-status") {
        trailers.push_str(&format!("grpc-status:{status}\r\n"));
    }
    (messages, trailers)
}

#[tokio::test]
async fn the_page_and_the_api_over_grpc_web() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server =
        ServerProcess::start(&common::binary(), dir.path(), &[]).unwrap_or_else(|e| panic!("{e}"));
    let admin = common::logged_field(&server, "admin_listen").await;

    let page = request(&admin, "GET / HTTP/1.1", b"").await;
    assert!(page.status.contains("200"), "{}", page.status);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        page.header("content-security-policy")
            .is_some_and(|csp| csp.contains("default-src 'self'")),
        "{:?}",
        page.headers
    );
    let html = String::from_utf8_lossy(&page.body);
    assert!(
        html.contains(r#"<script type="module" src="app.js">"#),
        "{html}"
    );
    let script = request(&admin, "GET /app.js HTTP/1.1", b"").await;
    assert!(script.status.contains("200"), "{}", script.status);
    let built = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../admin/dist/app.js"))
        .expect("the built bundle");
    assert_eq!(script.body, built, "serves the bundle it was built with");
    let missing = request(&admin, "GET /secrets HTTP/1.1", b"").await;
    assert!(missing.status.contains("404"), "{}", missing.status);
    let put = request(&admin, "PUT / HTTP/1.1", b"x").await;
    assert!(put.status.contains("405"), "{}", put.status);

    // An append through the gRPC port, listed through gRPC-Web.
    let client = Client::connect(server.uri()).await.expect("connect");
    let stream = StreamId::new(uuid::Uuid::new_v4(), "order");
    client
        .append(
            &stream,
            ExpectedVersion::NoStream,
            [EventData::new("Placed", "{}")],
        )
        .await
        .expect("append");
    let list = ListStreamsRequest {
        stream_type: "order".into(),
        ..Default::default()
    };
    let (messages, trailers) = grpc_web(&admin, "ListStreams", &list.encode_to_vec(), None).await;
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
    let listed = ListStreamsResponse::decode(&messages[0][..]).expect("a ListStreamsResponse");
    let keys: Vec<_> = listed
        .streams
        .iter()
        .filter_map(|s| s.stream.as_ref().map(|id| id.key.clone()))
        .collect();
    assert_eq!(keys, [stream.key.to_string()]);
}

#[tokio::test]
async fn tokens_hold_on_the_admin_listener_as_on_the_grpc_port() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        // The token "foo": printf %s foo | sha256sum
        "[[token]]\nname = \"reader\"\nrole = \"read\"\n\
         sha256 = \"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\"\n",
    )
    .expect("write tokens");
    let data = dir.path().join("data");
    let server = ServerProcess::start(
        &common::binary(),
        &data,
        &["--auth-tokens", tokens.to_str().expect("path")],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let admin = common::logged_field(&server, "admin_listen").await;
    let list = ListStreamsRequest::default().encode_to_vec();
    let (_, anonymous) = grpc_web(&admin, "ListStreams", &list, None).await;
    assert!(
        anonymous.contains("grpc-status:16"),
        "UNAUTHENTICATED: {anonymous}"
    );
    let (_, known) = grpc_web(&admin, "ListStreams", &list, Some("foo")).await;
    assert!(known.contains("grpc-status:0"), "{known}");
}

#[tokio::test]
async fn admin_off_serves_no_page() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(&common::binary(), dir.path(), &["--admin", "off"])
        .unwrap_or_else(|e| panic!("{e}"));
    common::append_one(&server.uri())
        .await
        .expect("the gRPC port serves");
    assert!(
        server.log_lines_with("admin_listen=").is_empty(),
        "{:?}",
        server.log_lines_with("")
    );
}
