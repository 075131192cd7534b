//! Multi Round-Trip Requests, the client's side (2026-07-28): a `tools/call`, `prompts/get` or
//! `resources/read` answered with `resultType: "input_required"` is retried with the answers.
//!
//! Each round: every input request of `inputRequests` goes to the [`super::ClientHandler`] (the
//! same methods that answer a session's server→client requests), in key order and one at a
//! time; then the original request is sent again — a new JSON-RPC id — with the original params,
//! `inputResponses` (the answers of this round, keyed as asked) and `requestState` exactly as
//! the server sent it (none when it sent none). A handler that fails ends the call with
//! [`ClientError::Input`]; more than [`super::ClientConfig::max_input_rounds`] rounds end it
//! with a protocol violation. Dropping the call's future voids the questions in flight
//! ([`super::InputContext::cancelled`]).

use std::borrow::Cow;

use portico_protocol::v2026_07_28 as wire;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{Client, ClientError, InputContext, RequestOptions, result_type};
use crate::server::Era;

impl Client {
    /// Sends `method` and answers `input_required` rounds until the result is something else:
    /// that result, and its `resultType`.
    pub(super) async fn with_input(
        &self,
        method: &str,
        params: &Map<String, Value>,
        options: &RequestOptions,
    ) -> Result<(Box<RawValue>, Option<String>), ClientError> {
        // Made at the first `input_required`; a call answered at once (most) costs nothing.
        let mut cancel: Option<(CancellationToken, DropGuard)> = None;
        let mut round_params = Cow::Borrowed(params);
        let max = self.inner.config.max_input_rounds;
        for round in 0.. {
            let raw = self.send(method, round_params.as_ref().into(), options).await?;
            let kind = result_type(method, &raw)?;
            if kind.as_deref() != Some(wire::InputRequiredResult::RESULT_TYPE) {
                return Ok((raw, kind));
            }
            if self.inner.era != Era::Stateless {
                return Err(ClientError::protocol(
                    method,
                    "an input_required result in a session (servers ask with requests there)",
                ));
            }
            if round >= max {
                return Err(ClientError::protocol(
                    method,
                    format!("still input_required after {max} rounds"),
                ));
            }
            let required: wire::InputRequiredResult =
                serde_json::from_str(raw.get()).map_err(|e| ClientError::protocol(method, e.to_string()))?;
            // Cancelled when this call is dropped: the handler's questions are void then.
            let (cancel, _) = cancel.get_or_insert_with(|| {
                let token = CancellationToken::new();
                (token.clone(), token.drop_guard())
            });
            let mut responses = Map::new();
            for (key, request) in required.input_requests.into_iter().flatten() {
                let answer = self.answer(&key, request, cancel).await?;
                responses.insert(key, answer);
            }
            let mut next = params.clone();
            if !responses.is_empty() {
                next.insert("inputResponses".into(), Value::Object(responses));
            }
            if let Some(state) = required.request_state {
                next.insert("requestState".into(), state.into());
            }
            round_params = Cow::Owned(next);
        }
        unreachable!("the loop returns")
    }

    /// The handler's answer to one input request.
    async fn answer(
        &self,
        key: &str,
        request: wire::InputRequest,
        cancel: &CancellationToken,
    ) -> Result<Value, ClientError> {
        let handler = self.inner.shared.handler();
        let cx = InputContext::new(Some(key.to_string()), cancel.child_token());
        let (method, answer) = match request {
            wire::InputRequest::Elicit(request) => (
                "elicitation/create",
                self.inner.shared.elicit(request.params, cx).await.map(Ok),
            ),
            wire::InputRequest::CreateMessage(request) => (
                "sampling/createMessage",
                handler
                    .create_message(request.params, cx)
                    .await
                    .map(serde_json::to_value),
            ),
            wire::InputRequest::ListRoots(_) => ("roots/list", handler.list_roots(cx).await.map(serde_json::to_value)),
        };
        let input = |error| ClientError::Input {
            method: method.into(),
            key: key.into(),
            error,
        };
        answer
            .map_err(input)?
            .map_err(|e| input(crate::ErrorObject::internal(format!("encoding the answer: {e}"))))
    }
}
