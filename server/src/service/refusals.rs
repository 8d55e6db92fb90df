//! tonic's own refusals of a request, before any handler runs, rewritten to the codes
//! DESIGN.md and docs/operations.md promise:
//!
//! - a request message over `max_decoding_message_size`: tonic answers `OUT_OF_RANGE`;
//!   Evenire answers `RESOURCE_EXHAUSTED` naming `max_request_size`, as grpc-go and
//!   grpc-java do;
//! - a request message that is not protobuf (a truncated field, a wire type that does
//!   not exist): tonic answers `INTERNAL` with prost's decode error, which reads as the
//!   server's fault; Evenire answers `INVALID_ARGUMENT` with the same detail.
//!
//! Only those two answers are touched, told by tonic's text: the service's own
//! `OUT_OF_RANGE` (a snapshot of a version the stream does not hold) and `INTERNAL`
//! answers never carry it.

use http::{HeaderValue, Response};

const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";
const INTERNAL: &str = "13";
const INVALID_ARGUMENT: &str = "3";
// tonic percent-encodes `grpc-message`, spaces included: the prefixes as they arrive.
const TOO_LARGE_PREFIX: &str = "Error,%20decoded%20message%20length%20too%20large:%20";
/// How prost's `DecodeError` starts, as tonic passes it on.
const DECODE_ERROR_PREFIX: &str = "failed%20to%20decode%20Protobuf%20message:%20";

/// Rewrites a trailers-only refusal of the request by tonic, if it is one of the two.
pub fn rewrite<B>(mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    let status = headers.get("grpc-status").map(HeaderValue::as_bytes);
    let detail = || {
        headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (code, message) = match status {
        Some(code) if code == OUT_OF_RANGE.as_bytes() => {
            let detail = detail();
            let Some(detail) = detail.strip_prefix(TOO_LARGE_PREFIX) else {
                return response;
            };
            (
                RESOURCE_EXHAUSTED,
                format!("request%20message%20exceeds%20max_request_size:%20{detail}"),
            )
        }
        Some(code) if code == INTERNAL.as_bytes() => {
            let detail = detail();
            let Some(detail) = detail.strip_prefix(DECODE_ERROR_PREFIX) else {
                return response;
            };
            (
                INVALID_ARGUMENT,
                format!("request%20message%20is%20not%20valid%20protobuf:%20{detail}"),
            )
        }
        _ => return response,
    };
    // Percent-encoded like the detail, tonic's text, so the new value stays valid.
    if let Ok(value) = HeaderValue::from_str(&message) {
        headers.insert("grpc-message", value);
    }
    headers.insert("grpc-status", HeaderValue::from_static(code));
    response
}
