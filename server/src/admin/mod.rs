//! The web admin: its page, embedded in the binary, and the API over gRPC-Web for it,
//! on a listener of its own (`--admin-listen`; docs/admin.md).
//!
//! A listener of its own rather than the gRPC port, because browsers without TLS speak
//! HTTP/1.1, and the gRPC listener admits HTTP/2 alone (its defences against idle
//! connections read the HTTP/2 preface); and because an operator can then keep the
//! page on loopback, or turn it off, without touching what clients use. It has the
//! same connection bounds, TLS, tokens and limits as the gRPC listener.

mod assets;

use axum::body::Body;
use axum::response::Response;
use http::{Method, StatusCode, Uri, header};

/// `routes`' gRPC services over gRPC-Web too, and the page: what is not a call to one
/// of them is a request for the page or one of its files. (The gRPC-Web layer wraps the
/// services alone: it answers any other HTTP/1.1 request with 400.)
pub fn with_page(routes: tonic::service::Routes) -> tonic::service::Routes {
    routes
        .into_axum_router()
        .route_layer(tonic_web::GrpcWebLayer::new())
        .fallback(page)
        .into()
}

async fn page(method: Method, uri: Uri) -> Response {
    let answer = |status: StatusCode, content_type: &str, body: Body| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type)
            // The files change with the binary: always ask.
            .header(header::CACHE_CONTROL, "no-cache")
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .header(header::REFERRER_POLICY, "no-referrer")
            .header(
                header::CONTENT_SECURITY_POLICY,
                assets::CONTENT_SECURITY_POLICY,
            )
            .body(body)
            .unwrap_or_default()
    };
    if method != Method::GET && method != Method::HEAD {
        let text = "the admin page takes GET and HEAD; the API takes gRPC-Web POSTs\n";
        return answer(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            Body::from(text),
        );
    }
    match assets::find(uri.path()) {
        Some(asset) => {
            let body = match method {
                Method::HEAD => Body::empty(),
                _ => Body::from(asset.bytes),
            };
            answer(StatusCode::OK, asset.content_type, body)
        }
        None => answer(
            StatusCode::NOT_FOUND,
            "text/plain",
            Body::from("no such page\n"),
        ),
    }
}
