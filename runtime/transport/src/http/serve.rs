//! Running a router on a TCP listener: `TCP_NODELAY` on every connection (answers are small
//! and latency-bound), the peer's address in every request's extensions
//! (`axum::extract::ConnectInfo<SocketAddr>`, which a gateway's rate limits key callers by when
//! they carry no token), and a graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and waits for
/// the connections in progress to finish.
///
/// Open SSE streams end only when the endpoint shuts down too: cancel the
/// [`super::HttpConfig::shutdown`] token with the same signal, e.g. pass
/// `config.shutdown.clone().cancelled_owned()` here and cancel the token to stop.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("could not set TCP_NODELAY on a connection: {e}");
        }
    });
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
