//! Input from the client while a request runs — elicitation, sampling, roots — written once
//! for both protocol generations (Multi Round-Trip Requests).
//!
//! A handler calls [`Context::elicit`](super::Context::elicit) (or `sample`, `list_roots`):
//! - in a session (2025-x), the framework sends the client a real `elicitation/create` request
//!   and returns its answer;
//! - in 2026-07-28, the server cannot send requests. The first time through, the call records
//!   the question and returns [`InputError::Required`]; when the handler finishes, the
//!   framework answers `resultType: "input_required"` with every recorded question
//!   (`inputRequests`) and a sealed `requestState`. The client asks the user, then retries the
//!   same request with `inputResponses`; the handler runs again, and this time each call finds
//!   its answer (questions are keyed by kind and order: `elicit-0`, `sample-0`, …), so handlers
//!   must ask in a deterministic order.
//!
//! `requestState` binds the answers to the request they belong to: it holds a digest of the
//! method, the target and the arguments, and an HMAC-SHA256 under a per-server secret. A state
//! that was altered, or replayed on another request, is rejected (`-32602`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{ErrorObject, INVALID_PARAMS, PeerError};

/// Why input could not be had.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The answer is not there yet: the request ends with `input_required` and is retried.
    /// Return from the handler (with any error); the framework answers for you.
    #[error("input required from the client; the request will be retried with it")]
    Required,
    /// The client does not have the capability (it did not declare elicitation, sampling or
    /// roots).
    #[error("the client does not support {0}")]
    Unsupported(&'static str),
    /// The request to the client failed.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// The client's answer does not have the expected shape.
    #[error("the client's answer to {key} is invalid: {message}")]
    Invalid {
        /// The question's key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The 2026-07-28 round state of one request: the answers so far, and the questions asked
/// this round.
#[derive(Debug, Default)]
pub(crate) struct Rounds {
    /// The answers of earlier rounds (carried in `requestState`) and of this retry
    /// (`inputResponses`).
    answers: BTreeMap<String, Value>,
    /// A client capability a question needed and the client did not declare.
    missing: Mutex<Option<&'static str>>,
    /// Questions asked this round, by key.
    asked: Mutex<BTreeMap<String, Value>>,
    /// How many questions of each kind were asked so far (for the keys).
    counters: Mutex<BTreeMap<&'static str, usize>>,
}

impl Rounds {
    pub(crate) fn new(answers: BTreeMap<String, Value>) -> Self {
        Self {
            answers,
            ..Self::default()
        }
    }

    /// The key of the next question of `kind`.
    pub(crate) fn next_key(&self, kind: &'static str) -> String {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let n = counters.entry(kind).or_insert(0);
        let key = format!("{kind}-{n}");
        *n += 1;
        key
    }

    /// The answer to `key`, or records the question (`method`, `params`) and says it is required.
    pub(crate) fn answer_or_ask(&self, key: &str, method: &str, params: Value) -> Result<Value, InputError> {
        match self.answers.get(key) {
            Some(answer) => Ok(answer.clone()),
            None => {
                self.asked
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(key.to_string(), json!({"method": method, "params": params}));
                Err(InputError::Required)
            }
        }
    }

    /// Records that a question needed `capability`, which the client lacks.
    pub(crate) fn missing(&self, capability: &'static str) {
        self.missing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(capability);
    }

    /// The capability a question needed and the client lacked, if any.
    pub(crate) fn missing_capability(&self) -> Option<&'static str> {
        *self.missing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every answer known so far (sealed into the next round's state).
    pub(crate) fn answers(&self) -> &BTreeMap<String, Value> {
        &self.answers
    }

    /// Whether questions were asked this round (without taking them).
    pub(crate) fn has_asked(&self) -> bool {
        !self.asked.lock().unwrap_or_else(PoisonError::into_inner).is_empty()
    }

    /// The questions asked this round, if any.
    pub(crate) fn asked(&self) -> Option<BTreeMap<String, Value>> {
        let asked = std::mem::take(&mut *self.asked.lock().unwrap_or_else(PoisonError::into_inner));
        (!asked.is_empty()).then_some(asked)
    }
}

/// Seals and opens `requestState`.
#[derive(Clone)]
pub(crate) struct Sealer {
    key: Arc<[u8; 32]>,
}

impl Sealer {
    /// A sealer with a fresh random key (the process's servers forget states on restart).
    pub(crate) fn random() -> Self {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // No OS randomness: derive from the clock and the address space layout, which is
            // still unguessable enough to detect tampering by a client that cannot read memory.
            let seed = format!("{:?}{:p}", std::time::SystemTime::now(), &key);
            key.copy_from_slice(&Sha256::digest(seed.as_bytes()));
        }
        Self { key: Arc::new(key) }
    }

    fn mac(&self, data: &[u8]) -> [u8; 32] {
        // HMAC-SHA256 (RFC 2104).
        let mut inner = Sha256::new();
        let mut outer = Sha256::new();
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for (i, b) in self.key.iter().enumerate() {
            ipad[i] ^= b;
            opad[i] ^= b;
        }
        inner.update(ipad);
        inner.update(data);
        outer.update(opad);
        outer.update(inner.finalize());
        outer.finalize().into()
    }

    /// The sealed state of a request whose binding digest is `binding`, carrying the answers
    /// given so far (a later round sends only its own answers).
    pub(crate) fn seal(&self, binding: &str, answers: &BTreeMap<String, Value>) -> String {
        let payload = hex(json!({"v": 1, "b": binding, "a": answers}).to_string().as_bytes());
        let mac = hex(&self.mac(payload.as_bytes()));
        format!("{payload}.{mac}")
    }

    /// Checks that `state` was sealed here for `binding`; returns the answers it carries.
    pub(crate) fn open(&self, state: &str, binding: &str) -> Result<BTreeMap<String, Value>, ErrorObject> {
        let tampered = || {
            ErrorObject::new(
                INVALID_PARAMS,
                "invalid params: requestState was altered or belongs to another request",
            )
        };
        let (payload, mac) = state.split_once('.').ok_or_else(tampered)?;
        let expected = hex(&self.mac(payload.as_bytes()));
        // Compare without an early exit, so timing does not leak the MAC.
        if mac.len() != expected.len() || mac.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0
        {
            return Err(tampered());
        }
        let bytes = unhex(payload).ok_or_else(tampered)?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| tampered())?;
        if value["b"] != binding {
            return Err(tampered());
        }
        serde_json::from_value(value["a"].clone()).map_err(|_| tampered())
    }
}

/// What a round state is bound to: the method, and the request's params without the round
/// members and `_meta`.
pub(crate) fn binding(method: &str, params: &Value) -> String {
    let mut params = params.clone();
    if let Some(object) = params.as_object_mut() {
        for member in ["_meta", "inputResponses", "requestState"] {
            object.remove(member);
        }
    }
    hex(&Sha256::digest(format!("{method}\n{params}").as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_states_open_only_for_their_request() {
        let sealer = Sealer::random();
        let b = binding("tools/call", &json!({"name": "x", "arguments": {"a": 1}, "_meta": {}}));
        let answers = BTreeMap::from([("elicit-0".to_string(), json!({"action": "accept"}))]);
        let state = sealer.seal(&b, &answers);
        assert_eq!(sealer.open(&state, &b).expect("opens"), answers);
        let other = binding("tools/call", &json!({"name": "x", "arguments": {"a": 2}}));
        assert!(sealer.open(&state, &other).is_err(), "bound to the arguments");
        let mut tampered = state.clone().into_bytes();
        tampered[3] ^= 1;
        assert!(sealer.open(&String::from_utf8_lossy(&tampered), &b).is_err());
        assert!(Sealer::random().open(&state, &b).is_err(), "another server's key");
        assert!(sealer.open("garbage", &b).is_err());
    }
}
