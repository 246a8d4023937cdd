//! The chat page's routes, without a model: served at `/` with its assets and a same-origin-only
//! policy, open without the API key (the API itself still asks for it), gone with `webui: false`.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use ondo_server::{router, AppState, Config};
use tower::ServiceExt;

async fn get(config: Config, path: &str, headers: &[(&str, &str)]) -> axum::response::Response {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let app = router(AppState::new(config));
    app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
}

async fn body_text(resp: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn header_of(resp: &axum::response::Response, name: header::HeaderName) -> &str {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn the_page_and_its_assets_are_served() {
    let resp = get(Config::default(), "/", &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(header_of(&resp, header::CONTENT_TYPE).starts_with("text/html"));
    let csp = header_of(&resp, header::CONTENT_SECURITY_POLICY).to_string();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let html = body_text(resp).await;
    assert!(html.contains("/ui/app.mjs"), "{html}");
    for (path, mime) in [("/ui/app.mjs", "text/javascript"), ("/ui/style.css", "text/css")] {
        let resp = get(Config::default(), path, &[]).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert!(header_of(&resp, header::CONTENT_TYPE).starts_with(mime), "{path}");
    }
}

#[tokio::test]
async fn a_current_copy_gets_304() {
    let first = get(Config::default(), "/ui/app.mjs", &[]).await;
    let etag = header_of(&first, header::ETAG).to_string();
    assert!(etag.starts_with('"'), "{etag:?}");
    let again = get(Config::default(), "/ui/app.mjs", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let other = get(Config::default(), "/ui/app.mjs", &[("if-none-match", "\"stale\"")]).await;
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_page_needs_no_key_but_the_api_does() {
    let config = || Config {
        api_key: Some("sekrit".into()),
        ..Default::default()
    };
    assert_eq!(get(config(), "/", &[]).await.status(), StatusCode::OK);
    assert_eq!(get(config(), "/ui/api.mjs", &[]).await.status(), StatusCode::OK);
    assert_eq!(
        get(config(), "/v1/models", &[]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // A path that is not the page's is still behind the key.
    assert_eq!(
        get(config(), "/ui/nope.js", &[]).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn no_webui_leaves_the_root_a_404() {
    let config = || Config {
        webui: false,
        ..Default::default()
    };
    let resp = get(config(), "/", &[]).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(body_text(resp).await.contains("\"error\""));
    assert_eq!(get(config(), "/ui/app.mjs", &[]).await.status(), StatusCode::NOT_FOUND);
}
