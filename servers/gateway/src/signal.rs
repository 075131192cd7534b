//! Change signals between replicas over Redis pub/sub: a replica that recorded an admin change
//! publishes its version on the channel `portico:gateway:config`; every replica subscribed
//! there reloads the changes from the store ([`crate::store`]) at once.
//!
//! Two commands (`PUBLISH`, `SUBSCRIBE`) on connections of [`crate::redis`]. A lost
//! subscription is made again with backoff; what was published meanwhile is found by the
//! store's version polling, so a signal is only ever a shortcut.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::redis::{Address, Reply};

/// The channel of configuration changes.
pub const CHANNEL: &str = "portico:gateway:config";

/// How long connecting and one command may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes `message` on [`CHANNEL`].
pub async fn publish(redis: &Address, message: &str) -> Result<(), String> {
    let mut connection = redis.connect(TIMEOUT).await.map_err(|e| e.to_string())?;
    let reply = tokio::time::timeout(
        TIMEOUT,
        connection.command(&[b"PUBLISH", CHANNEL.as_bytes(), message.as_bytes()]),
    )
    .await
    .map_err(|_| "Redis did not answer PUBLISH".to_string())?
    .map_err(|e| e.to_string())?;
    match reply {
        Reply::Integer(_) => Ok(()),
        other => Err(format!("Redis answered PUBLISH with {other:?}")),
    }
}

/// Subscribes to [`CHANNEL`] until `stop`, sending each message to `messages`; reconnects
/// with backoff (100 ms doubling to 5 s) when the connection is lost.
pub async fn subscribe(redis: Address, messages: mpsc::Sender<String>, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let run = async {
            let mut connection = redis.connect(TIMEOUT).await.map_err(|e| e.to_string())?;
            connection
                .send(&[b"SUBSCRIBE", CHANNEL.as_bytes()])
                .await
                .map_err(|e| e.to_string())?;
            loop {
                let Reply::Array(Some(item)) = connection.read().await.map_err(|e| e.to_string())? else {
                    return Err("Redis sent a subscription reply that is not an array".to_string());
                };
                if let [Reply::Bulk(Some(kind)), _, Reply::Bulk(Some(message))] = item.as_slice()
                    && kind == b"message"
                    && messages
                        .send(String::from_utf8_lossy(message).into_owned())
                        .await
                        .is_err()
                {
                    return Ok::<(), String>(());
                }
            }
        };
        tokio::select! {
            outcome = run => match outcome {
                Ok(()) => return,
                Err(e) => tracing::warn!(redis = %redis.address(), error = %e, retry_in = ?backoff, "Redis subscription lost"),
            },
            () = stop.cancelled() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stop.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
