//! The accept loop: one HTTP/1.1 connection per client (hyper), with the connection limits
//! axum's `serve` does not expose. A client must send its whole request head within
//! `Config::header_read_timeout` (a slow-loris client trickling header bytes is dropped without
//! reaching a handler or the engine), and a head larger than `Config::max_header_bytes` is
//! answered 431 and closed. Shutdown stops accepting, then waits for open connections to finish.

use crate::state::Config;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Serve `app` on `listener` until `shutdown` resolves, then drain the open connections.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    config: &Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_bytes.max(8192));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                // a failed accept (out of file descriptors, a reset) ends only that connection
                Err(_) => continue,
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req)
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // a client that goes away or breaks the protocol ends its own connection only
            let _ = conn.await;
        });
    }
    graceful.shutdown().await;
    Ok(())
}
