//! What the client answers when the server needs it: [`ClientHandler`] (sampling, elicitation in
//! form and URL mode, roots), written once and called the same way for both protocol
//! generations — for a real server→client request in a 2025-x session, and for each input
//! request of a 2026-07-28 `input_required` result (see `super::mrtr`).
//!
//! [`ClientService`] is the [`Service`] a client's peer serves: it answers `ping`, hands
//! `sampling/createMessage`, `elicitation/create` and `roots/list` to the handler (their params
//! decoded as the newest revision's types, `-32602` when they do not fit), and passes the
//! server's notifications to the client's notification stream.
//!
//! An accepted form-mode elicitation gets, for every field of the requested schema the
//! handler's `content` leaves out, that field's `default` (SEP-1034: clients that support
//! defaults pre-populate the form with them), in both generations; a handler that wants a field
//! left empty turns this off with [`super::ClientConfig::elicitation_defaults`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use portico_protocol::v2026_07_28 as wire;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

use super::notify::Router;
use crate::error::ErrorObject;
use crate::message::JsonText;
use crate::peer::{PeerHandle, RequestContext, Service};

/// How the client answers the server's requests for input. Every method has a default that
/// refuses (`-32601`, naming the capability not declared); a handler overrides the ones it
/// serves and declares them in [`ClientHandler::capabilities`], which the client sends to the
/// server (in `initialize`, or in every 2026-07-28 request's `_meta`).
///
/// ```
/// use portico_core::client::{ClientHandler, InputContext};
/// use portico_core::ErrorObject;
/// use portico_protocol::v2026_07_28 as wire;
///
/// struct Roots;
///
/// impl ClientHandler for Roots {
///     fn capabilities(&self) -> wire::ClientCapabilities {
///         wire::ClientCapabilities::new().with_roots(Default::default())
///     }
///
///     async fn list_roots(&self, _cx: InputContext) -> Result<wire::ListRootsResult, ErrorObject> {
///         Ok(wire::ListRootsResult::new(vec![wire::Root::new("file:///work")]))
///     }
/// }
/// ```
pub trait ClientHandler: Send + Sync + 'static {
    /// The capabilities the client declares (default: none).
    fn capabilities(&self) -> wire::ClientCapabilities {
        wire::ClientCapabilities::new()
    }

    /// `sampling/createMessage`: asks the client's model (capability `sampling`).
    fn create_message(
        &self,
        params: wire::CreateMessageRequestParams,
        cx: InputContext,
    ) -> impl Future<Output = Result<wire::CreateMessageResult, ErrorObject>> + Send {
        let _ = (params, cx);
        async { Err(not_declared("sampling/createMessage", "sampling")) }
    }

    /// `elicitation/create`: asks the user, with a form or by sending them to a URL
    /// (capability `elicitation`, with `form` and/or `url`).
    fn elicit(
        &self,
        params: wire::ElicitRequestParams,
        cx: InputContext,
    ) -> impl Future<Output = Result<wire::ElicitResult, ErrorObject>> + Send {
        let _ = (params, cx);
        async { Err(not_declared("elicitation/create", "elicitation")) }
    }

    /// `roots/list`: the client's roots (capability `roots`).
    fn list_roots(&self, cx: InputContext) -> impl Future<Output = Result<wire::ListRootsResult, ErrorObject>> + Send {
        let _ = cx;
        async { Err(not_declared("roots/list", "roots")) }
    }
}

/// A client that answers no input request and declares no capability.
impl ClientHandler for () {}

/// The `-32601` of a request whose capability the handler does not serve.
fn not_declared(method: &str, capability: &str) -> ErrorObject {
    ErrorObject::method_not_found(method).with_data(serde_json::json!({
        "reason": format!("the client did not declare the `{capability}` capability")
    }))
}

/// What a [`ClientHandler`] knows about the question it answers.
#[derive(Debug, Clone)]
pub struct InputContext {
    key: Option<String>,
    cancel: CancellationToken,
}

impl InputContext {
    pub(crate) fn new(key: Option<String>, cancel: CancellationToken) -> Self {
        Self { key, cancel }
    }

    /// The question's key in a 2026-07-28 `inputRequests` map; `None` for a server→client
    /// request of a session.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Whether the question is void: the server cancelled its request, or the client call that
    /// led to it was dropped.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Completes when the question is void.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A [`ClientHandler`] with its type erased, so the client is not generic over it.
pub(crate) trait DynHandler: Send + Sync + 'static {
    fn capabilities(&self) -> wire::ClientCapabilities;
    fn create_message(
        &self,
        params: wire::CreateMessageRequestParams,
        cx: InputContext,
    ) -> BoxFuture<'_, Result<wire::CreateMessageResult, ErrorObject>>;
    fn elicit(
        &self,
        params: wire::ElicitRequestParams,
        cx: InputContext,
    ) -> BoxFuture<'_, Result<wire::ElicitResult, ErrorObject>>;
    fn list_roots(&self, cx: InputContext) -> BoxFuture<'_, Result<wire::ListRootsResult, ErrorObject>>;
}

impl<H: ClientHandler> DynHandler for H {
    fn capabilities(&self) -> wire::ClientCapabilities {
        ClientHandler::capabilities(self)
    }

    fn create_message(
        &self,
        params: wire::CreateMessageRequestParams,
        cx: InputContext,
    ) -> BoxFuture<'_, Result<wire::CreateMessageResult, ErrorObject>> {
        Box::pin(ClientHandler::create_message(self, params, cx))
    }

    fn elicit(
        &self,
        params: wire::ElicitRequestParams,
        cx: InputContext,
    ) -> BoxFuture<'_, Result<wire::ElicitResult, ErrorObject>> {
        Box::pin(ClientHandler::elicit(self, params, cx))
    }

    fn list_roots(&self, cx: InputContext) -> BoxFuture<'_, Result<wire::ListRootsResult, ErrorObject>> {
        Box::pin(ClientHandler::list_roots(self, cx))
    }
}

/// What the client and its service share.
pub(crate) struct Shared {
    handler: RwLock<Arc<dyn DynHandler>>,
    pub(crate) router: Router,
    /// The calls in flight with a [`super::CallObserver`].
    pub(crate) observed: Arc<super::observe::Observed>,
    /// Whether accepted forms get the requested schema's defaults
    /// ([`super::ClientConfig::elicitation_defaults`]).
    pub(crate) elicitation_defaults: bool,
}

impl Shared {
    pub(crate) fn new(notification_capacity: usize, elicitation_defaults: bool) -> Self {
        Self {
            handler: RwLock::new(Arc::new(())),
            router: Router::new(notification_capacity),
            observed: Arc::default(),
            elicitation_defaults,
        }
    }

    /// Asks the handler to answer an elicitation; an accepted form gets the defaults of the
    /// fields it leaves out (when the client is configured so).
    pub(crate) async fn elicit(
        &self,
        params: wire::ElicitRequestParams,
        cx: InputContext,
    ) -> Result<serde_json::Value, ErrorObject> {
        let defaults = if self.elicitation_defaults {
            form_defaults(&params)
        } else {
            serde_json::Map::new()
        };
        let answer = self.handler().elicit(params, cx).await?;
        let mut answer = serde_json::to_value(answer).map_err(ErrorObject::internal)?;
        apply_defaults(&mut answer, defaults);
        Ok(answer)
    }

    pub(crate) fn handler(&self) -> Arc<dyn DynHandler> {
        self.handler
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_handler(&self, handler: Arc<dyn DynHandler>) {
        *self.handler.write().unwrap_or_else(std::sync::PoisonError::into_inner) = handler;
    }
}

/// The `default` of every field of a form-mode elicitation's requested schema that has one
/// (SEP-1034; none for URL mode).
fn form_defaults(params: &wire::ElicitRequestParams) -> serde_json::Map<String, serde_json::Value> {
    let wire::ElicitRequestParams::ElicitRequestForm(form) = params else {
        return serde_json::Map::new();
    };
    form.requested_schema
        .properties
        .iter()
        .filter_map(|(name, field)| {
            let default = serde_json::to_value(field).ok()?.get_mut("default")?.take();
            Some((name.clone(), default))
        })
        .collect()
}

/// Puts `defaults` into an `accept` answer's `content` where the answer has no value of its own
/// (a `decline` or `cancel` answer stays as it is).
fn apply_defaults(answer: &mut serde_json::Value, defaults: serde_json::Map<String, serde_json::Value>) {
    if defaults.is_empty() || answer.get("action").and_then(serde_json::Value::as_str) != Some("accept") {
        return;
    }
    let Some(answer) = answer.as_object_mut() else { return };
    let content = answer
        .entry("content")
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    if let Some(content) = content.as_object_mut() {
        for (name, default) in defaults {
            content.entry(name).or_insert(default);
        }
    }
}

/// The [`Service`] of a client's peer: server→client requests go to the [`ClientHandler`],
/// notifications to the client's notification stream. Made by
/// [`super::ClientBuilder::service`]; give it to the transport's connect function.
#[derive(Clone)]
pub struct ClientService {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for ClientService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientService").finish_non_exhaustive()
    }
}

/// Decodes a server request's params as the newest revision's type (`-32602` naming the member
/// when they do not fit; older revisions' params are a subset).
fn decode<T: DeserializeOwned>(method: &str, params: Option<&RawValue>) -> Result<T, ErrorObject> {
    serde_json::from_str(params.map_or("{}", RawValue::get))
        .map_err(|e| ErrorObject::invalid_params(format!("{method}: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Result<JsonText, ErrorObject> {
    JsonText::encode(value).map_err(ErrorObject::internal)
}

impl Service for ClientService {
    async fn request(
        &self,
        cx: RequestContext,
        method: String,
        params: Option<Box<RawValue>>,
    ) -> Result<JsonText, ErrorObject> {
        let input = InputContext::new(None, cx.cancellation().clone());
        if INPUT_REQUESTS.contains(&method.as_str())
            && let Some(observer) = self.shared.observed.find(cx.origin())
            && observer.answers_requests()
        {
            return observer.request(method, params, input).await.map(JsonText::from);
        }
        let handler = self.shared.handler();
        let params = params.as_deref();
        match method.as_str() {
            "ping" => encode(&serde_json::json!({})),
            "sampling/createMessage" => encode(&handler.create_message(decode(&method, params)?, input).await?),
            "elicitation/create" => encode(&self.shared.elicit(decode(&method, params)?, input).await?),
            "roots/list" => encode(&handler.list_roots(input).await?),
            other => Err(ErrorObject::method_not_found(other)),
        }
    }

    async fn notification(&self, peer: PeerHandle, method: String, params: Option<Box<RawValue>>) {
        let observed = &self.shared.observed;
        let observer = match method.as_str() {
            crate::peer::PROGRESS => progress_token(params.as_deref()).and_then(|token| observed.by_token(token)),
            "notifications/message" => observed.find(peer.origin()),
            _ => None,
        };
        if let Some(observer) = observer {
            observer.notification(&method, params.as_deref());
        }
        self.shared.router.route(&method, params.as_deref());
    }
}

/// The server→client requests a [`super::CallObserver`] may be given.
const INPUT_REQUESTS: &[&str] = &["sampling/createMessage", "elicitation/create", "roots/list"];

/// The `progressToken` of a progress notification's params, as JSON text.
fn progress_token(params: Option<&RawValue>) -> Option<&str> {
    #[derive(serde::Deserialize)]
    struct Progress<'a> {
        #[serde(rename = "progressToken", borrow)]
        token: &'a RawValue,
    }
    let progress: Progress<'_> = serde_json::from_str(params?.get()).ok()?;
    Some(progress.token.get())
}
