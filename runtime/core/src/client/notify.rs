//! The server's notifications, as the client hands them on: [`Notification`] (progress, log
//! messages, list changes, resource updates), the [`Notifications`] stream, and
//! [`Subscription`], one `subscriptions/listen` stream (2026-07-28) or a set of
//! `resources/subscribe`d URIs (2025-x).
//!
//! # Back-pressure and drops
//!
//! Notifications arrive on the transport's reading path, beside the responses the client waits
//! for. Waiting there for a slow consumer would stall those responses (and a caller that waits
//! for a response before reading notifications would wait forever), so notifications never
//! wait: each goes into a bounded ring ([`super::ClientConfig::notification_capacity`], default
//! 256) shared by every [`Notifications`] receiver. A receiver that falls more than that far
//! behind loses the oldest ones; [`Notifications::missed`] counts them. Notifications are hints
//! (re-list on `list_changed`, re-read on `resources/updated`) or progress reports superseded by
//! the next one, so the newest are the ones to keep. Nothing is kept while nobody listens:
//! subscribe with [`super::Client::notifications`] before the calls whose notifications you want.
//! Memory stays bounded under a flood: the ring is all there is.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use portico_protocol::v2026_07_28 as wire;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::{broadcast, oneshot};

use crate::message::RequestId;
use crate::peer::PeerHandle;

/// The `_meta` key naming the `subscriptions/listen` request a notification belongs to.
pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// A notification from the server.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Notification {
    /// `notifications/progress` of a request that asked for it (its `progressToken`).
    Progress(wire::ProgressNotificationParams),
    /// `notifications/message`: a log message at or above the level asked for.
    Log(wire::LoggingMessageNotificationParams),
    /// `notifications/tools/list_changed`.
    ToolsListChanged {
        /// The `subscriptions/listen` request it came on (2026-07-28).
        subscription: Option<RequestId>,
    },
    /// `notifications/prompts/list_changed`.
    PromptsListChanged {
        /// The `subscriptions/listen` request it came on (2026-07-28).
        subscription: Option<RequestId>,
    },
    /// `notifications/resources/list_changed`.
    ResourcesListChanged {
        /// The `subscriptions/listen` request it came on (2026-07-28).
        subscription: Option<RequestId>,
    },
    /// `notifications/resources/updated`: a subscribed resource changed.
    ResourceUpdated {
        /// The resource.
        uri: String,
        /// The `subscriptions/listen` request it came on (2026-07-28).
        subscription: Option<RequestId>,
    },
    /// Any other notification (or one of the above whose params do not decode), as sent.
    Other {
        /// The method.
        method: String,
        /// The params, if any.
        params: Option<Value>,
    },
}

/// The acknowledged filter of a `subscriptions/listen` request, waited for by
/// [`super::Client::listen`].
type Ack = oneshot::Sender<wire::SubscriptionFilter>;

/// Where the client's service puts what the server notifies.
pub(crate) struct Router {
    sender: broadcast::Sender<Notification>,
    acks: Mutex<HashMap<RequestId, Ack>>,
}

#[derive(Deserialize)]
struct WithMeta {
    #[serde(rename = "_meta")]
    meta: Option<MetaPeek>,
}

#[derive(Deserialize)]
struct MetaPeek {
    #[serde(rename = "io.modelcontextprotocol/subscriptionId")]
    subscription: Option<RequestId>,
}

impl Router {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity.max(1)).0,
            acks: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Notification> {
        self.sender.subscribe()
    }

    /// Waits for the acknowledgement of the `subscriptions/listen` request `id`.
    pub(crate) fn expect_ack(&self, id: &RequestId) -> oneshot::Receiver<wire::SubscriptionFilter> {
        let (tx, rx) = oneshot::channel();
        self.acks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), tx);
        rx
    }

    /// Forgets the acknowledgement of `id` (its request ended).
    pub(crate) fn forget_ack(&self, id: &RequestId) {
        self.acks.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }

    /// Hands one notification on (never waits: see the module docs).
    pub(crate) fn route(&self, method: &str, params: Option<&RawValue>) {
        let text = params.map_or("{}", RawValue::get);
        let subscription = || {
            serde_json::from_str::<WithMeta>(text)
                .ok()
                .and_then(|p| p.meta)
                .and_then(|m| m.subscription)
        };
        let other = || Notification::Other {
            method: method.to_string(),
            params: params.and_then(|p| serde_json::from_str(p.get()).ok()),
        };
        let notification = match method {
            "notifications/subscriptions/acknowledged" => {
                #[derive(Deserialize)]
                struct Acknowledged {
                    notifications: wire::SubscriptionFilter,
                }
                let ack = subscription().and_then(|id| {
                    let waiter = self.acks.lock().unwrap_or_else(PoisonError::into_inner).remove(&id)?;
                    Some((waiter, serde_json::from_str::<Acknowledged>(text).ok()?))
                });
                if let Some((waiter, ack)) = ack {
                    let _ = waiter.send(ack.notifications);
                }
                return;
            }
            "notifications/progress" => serde_json::from_str(text).map_or_else(|_| other(), Notification::Progress),
            "notifications/message" => serde_json::from_str(text).map_or_else(|_| other(), Notification::Log),
            "notifications/tools/list_changed" => Notification::ToolsListChanged {
                subscription: subscription(),
            },
            "notifications/prompts/list_changed" => Notification::PromptsListChanged {
                subscription: subscription(),
            },
            "notifications/resources/list_changed" => Notification::ResourcesListChanged {
                subscription: subscription(),
            },
            "notifications/resources/updated" => {
                match serde_json::from_str::<wire::ResourceUpdatedNotificationParams>(text) {
                    Ok(p) => Notification::ResourceUpdated {
                        uri: p.uri,
                        subscription: subscription(),
                    },
                    Err(_) => other(),
                }
            }
            _ => other(),
        };
        // No receiver: nobody listens, and nothing is kept.
        let _ = self.sender.send(notification);
    }
}

/// A receiver of the server's notifications.
///
/// Notifications arrive on the transport's reading path, beside the responses callers wait
/// for, so they never wait for a reader: they go into a bounded ring
/// ([`super::ClientConfig::notification_capacity`]) shared by every receiver, and a receiver
/// that falls further behind loses the oldest ([`Notifications::missed`] counts them).
/// Notifications are hints (re-list, re-read) or progress superseded by the next report, so the
/// newest are the ones to keep. Nothing is kept for receivers that do not exist yet.
pub struct Notifications {
    pub(crate) receiver: broadcast::Receiver<Notification>,
    pub(crate) peer: PeerHandle,
    pub(crate) missed: u64,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifications")
            .field("missed", &self.missed)
            .finish_non_exhaustive()
    }
}

impl Notifications {
    /// The next notification; `None` once the connection is closed and every notification
    /// received before is taken.
    pub async fn recv(&mut self) -> Option<Notification> {
        loop {
            let next = tokio::select! {
                biased;
                next = self.receiver.recv() => next,
                () = self.peer.closed() => match self.receiver.try_recv() {
                    Err(broadcast::error::TryRecvError::Empty) => return None,
                    Ok(n) => Ok(n),
                    Err(broadcast::error::TryRecvError::Lagged(n)) => Err(broadcast::error::RecvError::Lagged(n)),
                    Err(broadcast::error::TryRecvError::Closed) => Err(broadcast::error::RecvError::Closed),
                },
            };
            match next {
                Ok(notification) => return Some(notification),
                Err(broadcast::error::RecvError::Lagged(n)) => self.missed += n,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// A notification already received, without waiting; `None` when there is none now.
    pub fn try_recv(&mut self) -> Option<Notification> {
        loop {
            match self.receiver.try_recv() {
                Ok(notification) => return Some(notification),
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.missed += n,
                Err(_) => return None,
            }
        }
    }

    /// How many notifications this receiver lost by falling behind.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}
