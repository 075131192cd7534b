//! Running a router on a TCP listener: `TCP_NODELAY` on every connection (answers are small
//! and latency-bound), the peer's address in every request's extensions
//! (`axum::extract::ConnectInfo<SocketAddr>`, which a gateway's rate limits key callers by when
//! they carry no token), and a graceful shutdown (the connections themselves: [`super::front`]).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use axum::routing::future::RouteFuture;
use futures_util::FutureExt as _;
use futures_util::future::Either;
use tokio::net::TcpListener;
use tower_service::Service;

use super::StreamableHttp;
use super::front;

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and waits for
/// the connections in progress to finish.
///
/// Open SSE streams end only when the endpoint shuts down too: cancel the
/// [`super::HttpConfig::shutdown`] token with the same signal, e.g. pass
/// `config.shutdown.clone().cancelled_owned()` here and cancel the token to stop.
///
/// HTTP/1.1, served as the `front` module's docs say: plain requests (every MCP POST) by
/// Portico's own connection loop, anything else (WebSocket upgrades, chunked bodies, …) by
/// hyper.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_service(listener, router, shutdown).await
}

/// [`serve`] with any service in place of a router: one clone of `service` per connection.
/// For an application that answers some requests before (or instead of) routing them, as
/// [`serve_endpoint`] does for an MCP endpoint's POSTs.
pub async fn serve_service<S>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    front::run(listener, |_| service.clone(), front::Address::Inserted, shutdown).await
}

/// [`serve`], with every POST to `endpoint`'s path answered by `endpoint` straight
/// ([`StreamableHttp::post`]); `router` serves everything else (it holds `endpoint`'s router
/// too, for its GET streams and `DELETE`, and whatever else the application serves).
///
/// A POST is what every MCP message is, and `router` would only route it to the same place:
/// here it is not matched against the router's paths, its future is not wrapped by the
/// router's layers, and the response is not looked at again (callgrind of
/// `portico serve everything`: about 2k instructions a call, of 44k). Requests `router` serves
/// carry the peer's address (`ConnectInfo<SocketAddr>`); the endpoint's POSTs carry it when
/// its handlers are handed it ([`super::HttpConfig::carry`]), as nothing else reads them (an
/// extension inserted costs a map and a box: ~0.4k instructions of a 33k call).
///
/// Those POSTs pass none of `router`'s layers: an application with middleware in front of its
/// MCP endpoint (authentication, say) serves it with [`serve`].
pub async fn serve_endpoint(
    listener: TcpListener,
    endpoint: StreamableHttp,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let address = endpoint.carries_peer_address();
    let make = |peer| FrontDoor {
        endpoint: endpoint.clone(),
        router: router.clone(),
        peer,
        address,
    };
    front::run(listener, make, front::Address::Service, shutdown).await
}

/// One connection's service under [`serve_endpoint`]: its POSTs to the endpoint's path to the
/// endpoint, the rest to the router.
#[derive(Clone)]
struct FrontDoor {
    endpoint: StreamableHttp,
    router: Router,
    /// The peer's address, put in the requests that may be asked for it.
    peer: SocketAddr,
    /// Whether the endpoint's POSTs may be: its handlers are handed it.
    address: bool,
}

/// A POST's answer, on its way.
type Answering = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl Service<Request> for FrontDoor {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Answering, RouteFuture<Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let takes = self.endpoint.takes(&request);
        if !takes || self.address {
            request.extensions_mut().insert(ConnectInfo(self.peer));
        }
        if takes {
            // Made in its box: see `portico_core::boxed`.
            return Either::Left(portico_core::boxed(|| self.endpoint.post(request).map(Ok)));
        }
        Either::Right(self.router.call(request))
    }
}
