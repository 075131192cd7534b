//! Running a router on a TCP listener: `TCP_NODELAY` on every connection (answers are small
//! and latency-bound), the peer's address in every request's extensions
//! (`axum::extract::ConnectInfo<SocketAddr>`, which a gateway's rate limits key callers by when
//! they carry no token), and a graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use axum::routing::future::RouteFuture;
use axum::serve::{IncomingStream, Listener, ListenerExt, TapIo};
use futures_util::future::{Either, Ready, ready};
use tokio::net::{TcpListener, TcpStream};
use tower_service::Service;

use super::StreamableHttp;

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
    axum::serve(
        with_nodelay(listener),
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// [`serve`], with every POST to `endpoint`'s path answered by `endpoint` straight
/// ([`StreamableHttp::post`]); `router` serves everything else (it holds `endpoint`'s router
/// too, for its GET streams and `DELETE`, and whatever else the application serves).
///
/// A POST is what every MCP message is, and `router` would only route it to the same place:
/// here it is not matched against the router's paths, its future is not wrapped by the
/// router's layers, and the response is not looked at again (callgrind of
/// `portico serve everything`: about 2k instructions a call, of 44k). Requests carry the
/// peer's address (`ConnectInfo<SocketAddr>`) either way.
///
/// Those POSTs pass none of `router`'s layers: an application with middleware in front of its
/// MCP endpoint (authentication, say) serves it with [`serve`].
pub async fn serve_endpoint(
    listener: TcpListener,
    endpoint: StreamableHttp,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(with_nodelay(listener), FrontDoor { endpoint, router })
        .with_graceful_shutdown(shutdown)
        .await
}

/// `listener`, setting `TCP_NODELAY` on every connection it accepts.
fn with_nodelay(listener: TcpListener) -> TapIo<TcpListener, fn(&mut TcpStream)> {
    listener.tap_io(nodelay)
}

fn nodelay(stream: &mut TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("could not set TCP_NODELAY on a connection: {e}");
    }
}

/// What [`serve_endpoint`] serves a connection with: made per connection, with its peer's
/// address.
#[derive(Clone)]
struct FrontDoor {
    endpoint: StreamableHttp,
    router: Router,
}

impl<L: Listener<Addr = SocketAddr>> Service<IncomingStream<'_, L>> for FrontDoor {
    type Response = Connection;
    type Error = Infallible;
    type Future = Ready<Result<Connection, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: IncomingStream<'_, L>) -> Self::Future {
        ready(Ok(Connection {
            endpoint: self.endpoint.clone(),
            router: self.router.clone(),
            peer: ConnectInfo(*stream.remote_addr()),
        }))
    }
}

/// One connection's service: its POSTs to the endpoint's path to the endpoint, the rest to the
/// router.
#[derive(Clone)]
struct Connection {
    endpoint: StreamableHttp,
    router: Router,
    peer: ConnectInfo<SocketAddr>,
}

/// A POST's answer, on its way.
type Answering = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl Service<Request> for Connection {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Answering, RouteFuture<Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        request.extensions_mut().insert(self.peer);
        if self.endpoint.takes(&request) {
            let endpoint = self.endpoint.clone();
            return Either::Left(Box::pin(async move { Ok(endpoint.post(request).await) }));
        }
        Either::Right(self.router.call(request))
    }
}
