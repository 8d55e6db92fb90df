//! Oversize requests get `RESOURCE_EXHAUSTED` naming the limit, as DESIGN.md says and as
//! grpc-go and grpc-java answer. tonic itself rejects a request message over
//! `max_decoding_message_size` with `OUT_OF_RANGE` before any handler runs; this layer
//! rewrites that one answer. The service never returns `OUT_OF_RANGE` itself, so no
//! other answer is touched.

use http::{HeaderValue, Response};

const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";
const TONIC_PREFIX: &str = "Error, decoded message length too large: ";

/// Rewrites a trailers-only `OUT_OF_RANGE` answer to `RESOURCE_EXHAUSTED`.
pub fn rewrite<B>(mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    if headers.get("grpc-status").map(HeaderValue::as_bytes) != Some(OUT_OF_RANGE.as_bytes()) {
        return response;
    }
    let detail = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(|m| m.trim_start_matches(TONIC_PREFIX).to_string())
        .unwrap_or_default();
    // The detail is tonic's already percent-encoded text, so the new value stays valid.
    let message = format!("request message exceeds max_request_size: {detail}");
    if let Ok(value) = HeaderValue::from_str(&message) {
        headers.insert("grpc-message", value);
    }
    headers.insert("grpc-status", HeaderValue::from_static(RESOURCE_EXHAUSTED));
    response
}
