//! The admin page's files, built from `admin/` (TypeScript, bundled by esbuild) and
//! committed in `admin/dist/`, so that building the server needs no Node.

/// One file of the page.
pub struct Asset {
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

/// What the page may load: its own files, and calls to its own origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/// The file served at `path`, if there is one.
pub fn find(path: &str) -> Option<Asset> {
    let (content_type, bytes): (&str, &[u8]) = match path {
        "/" | "/index.html" => (
            "text/html; charset=utf-8",
            include_bytes!("../../../admin/dist/index.html"),
        ),
        "/app.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("../../../admin/dist/app.js"),
        ),
        "/app.css" => (
            "text/css; charset=utf-8",
            include_bytes!("../../../admin/dist/app.css"),
        ),
        _ => return None,
    };
    Some(Asset {
        content_type,
        bytes,
    })
}
