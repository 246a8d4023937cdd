//! The chat page at `/`: static HTML, JavaScript modules and CSS from `crates/ondo-server/webui/`,
//! embedded in the binary (no CDN, no build step). `Config::webui = false` (`ondo serve
//! --no-webui`) leaves `/` a 404.
//!
//! The page needs no API key to load (it asks for one when `/v1/models` answers 401). Every file
//! is sent with a Content-Security-Policy that allows nothing but this origin, so neither the
//! page nor a model's answer can make the browser fetch from elsewhere or run inline script.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file and the path it is served at.
pub struct Asset {
    pub path: &'static str,
    pub mime: &'static str,
    pub body: &'static [u8],
}

/// Everything the page loads.
pub const ASSETS: &[Asset] = &[
    asset("/", "text/html; charset=utf-8", include_bytes!("../webui/index.html")),
    asset("/ui/app.mjs", JS, include_bytes!("../webui/app.mjs")),
    asset("/ui/api.mjs", JS, include_bytes!("../webui/api.mjs")),
    asset("/ui/markdown.mjs", JS, include_bytes!("../webui/markdown.mjs")),
    asset("/ui/store.mjs", JS, include_bytes!("../webui/store.mjs")),
    asset(
        "/ui/style.css",
        "text/css; charset=utf-8",
        include_bytes!("../webui/style.css"),
    ),
    asset("/ui/icon.svg", "image/svg+xml", include_bytes!("../webui/icon.svg")),
];

const JS: &str = "text/javascript; charset=utf-8";

/// Same origin only; no inline script; images only from here or `data:`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

const fn asset(path: &'static str, mime: &'static str, body: &'static [u8]) -> Asset {
    Asset { path, mime, body }
}

/// `router` with the page's routes added (they pass no API-key check: add them after that layer).
pub fn add_routes<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    ASSETS.iter().fold(router, |r, a| {
        r.route(a.path, get(move |headers: HeaderMap| async move { serve(a, &headers) }))
    })
}

/// The file, or 304 when the browser's copy (`If-None-Match`) is current.
fn serve(asset: &'static Asset, request: &HeaderMap) -> Response {
    let etag = format!("\"{:016x}\"", fnv1a(asset.body));
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(asset.mime)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (
            header::ETAG,
            HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\"")),
        ),
    ];
    match fresh {
        true => (StatusCode::NOT_MODIFIED, headers).into_response(),
        false => (headers, asset.body).into_response(),
    }
}

/// A stable content hash for the ETag.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn text(path: &str) -> &'static str {
        let asset = ASSETS.iter().find(|a| a.path == path).expect(path);
        std::str::from_utf8(asset.body).expect("UTF-8")
    }

    /// Every `/ui/...` file named by the page and every `./x.mjs` a module imports is embedded.
    #[test]
    fn every_file_the_page_loads_is_embedded() {
        let mut wanted: Vec<String> = text("/")
            .split('"')
            .filter(|s| s.starts_with("/ui/"))
            .map(str::to_string)
            .collect();
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".mjs")) {
            let src = std::str::from_utf8(a.body).unwrap();
            wanted.extend(
                src.split('"')
                    .filter(|s| s.starts_with("./"))
                    .map(|s| format!("/ui/{}", &s[2..])),
            );
        }
        assert!(wanted.len() >= 6, "{wanted:?}");
        for path in &wanted {
            assert!(
                ASSETS.iter().any(|a| a.path == path.as_str()),
                "{path} is loaded but not embedded"
            );
        }
    }

    /// The budget: the page, each file gzipped, under 300 KB in all.
    #[test]
    fn the_compressed_page_is_under_300_kb() {
        let gzipped = |body: &[u8]| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(body).unwrap();
            gz.finish().unwrap().len()
        };
        let size: usize = ASSETS.iter().map(|a| gzipped(a.body)).sum();
        eprintln!(
            "web UI: {} bytes, {size} bytes gzipped",
            ASSETS.iter().map(|a| a.body.len()).sum::<usize>()
        );
        assert!(size < 300_000, "the page is {size} bytes gzipped");
    }
}
