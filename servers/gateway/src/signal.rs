//! Change signals between replicas over Redis pub/sub: a replica that recorded an admin change
//! publishes its version on the channel `portico:gateway:config`; every replica subscribed
//! there reloads the changes from the store ([`crate::store`]) at once.
//!
//! Two commands of RESP2 are all it takes (`PUBLISH`, `SUBSCRIBE`), spoken here directly
//! rather than through a Redis client library. A lost connection is made again with backoff;
//! what was published meanwhile is found by the store's version polling, so a signal is only
//! ever a shortcut.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The channel of configuration changes.
pub const CHANNEL: &str = "portico:gateway:config";

/// How long connecting and one command may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A Redis server's address and password, from `redis://[:password@]host[:port][/db]`.
#[derive(Debug, Clone)]
pub struct Redis {
    address: String,
    password: Option<String>,
}

impl Redis {
    /// Reads a `redis://` URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| format!("`{url}` is not a redis:// URL"))?;
        let rest = rest.split('/').next().unwrap_or_default();
        let (password, host) = match rest.rsplit_once('@') {
            Some((auth, host)) => {
                let password = auth.rsplit_once(':').map_or(auth, |(_, p)| p);
                (Some(password.to_string()).filter(|p| !p.is_empty()), host)
            }
            None => (None, rest),
        };
        if host.is_empty() {
            return Err(format!("`{url}` names no host"));
        }
        let address = if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:6379")
        };
        Ok(Self { address, password })
    }

    async fn connect(&self) -> Result<BufReader<TcpStream>, String> {
        let stream = tokio::time::timeout(TIMEOUT, TcpStream::connect(&self.address))
            .await
            .map_err(|_| format!("connecting to Redis at {} timed out", self.address))?
            .map_err(|e| format!("connecting to Redis at {}: {e}", self.address))?;
        let mut stream = BufReader::new(stream);
        if let Some(password) = &self.password {
            command(&mut stream, &["AUTH", password]).await?;
            let reply = read_line(&mut stream).await?;
            if !reply.starts_with('+') {
                return Err(format!("Redis refused the password: {reply}"));
            }
        }
        Ok(stream)
    }

    /// Publishes `message` on [`CHANNEL`].
    pub async fn publish(&self, message: &str) -> Result<(), String> {
        let mut stream = self.connect().await?;
        command(&mut stream, &["PUBLISH", CHANNEL, message]).await?;
        let reply = tokio::time::timeout(TIMEOUT, read_line(&mut stream))
            .await
            .map_err(|_| "Redis did not answer PUBLISH".to_string())??;
        if reply.starts_with(':') {
            Ok(())
        } else {
            Err(format!("Redis answered PUBLISH with {reply}"))
        }
    }

    /// Subscribes to [`CHANNEL`] until `stop`, sending each message to `messages`;
    /// reconnects with backoff (100 ms doubling to 5 s) when the connection is lost.
    pub async fn subscribe(self, messages: mpsc::Sender<String>, stop: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let run = async {
                let mut stream = self.connect().await?;
                command(&mut stream, &["SUBSCRIBE", CHANNEL]).await?;
                loop {
                    let item = read_array(&mut stream).await?;
                    let is_message = item.len() == 3 && item[0] == "message";
                    if is_message && messages.send(item[2].clone()).await.is_err() {
                        return Ok::<(), String>(());
                    }
                }
            };
            tokio::select! {
                outcome = run => match outcome {
                    Ok(()) => return,
                    Err(e) => tracing::warn!(redis = %self.address, error = %e, retry_in = ?backoff, "Redis subscription lost"),
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
}

/// Sends one command as a RESP array of bulk strings.
async fn command(stream: &mut BufReader<TcpStream>, parts: &[&str]) -> Result<(), String> {
    let mut text = format!("*{}\r\n", parts.len());
    for part in parts {
        text.push_str(&format!("${}\r\n{part}\r\n", part.len()));
    }
    stream
        .get_mut()
        .write_all(text.as_bytes())
        .await
        .map_err(|e| e.to_string())
}

/// The longest line or bulk string read.
const MAX_LINE: usize = 1 << 20;

async fn read_line(stream: &mut BufReader<TcpStream>) -> Result<String, String> {
    let mut line = String::new();
    let read = (&mut *stream)
        .take(MAX_LINE as u64)
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    if read == 0 {
        return Err("Redis closed the connection".into());
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Reads one RESP array of bulk strings and integers (what a subscription sends).
async fn read_array(stream: &mut BufReader<TcpStream>) -> Result<Vec<String>, String> {
    let header = read_line(stream).await?;
    let count: usize = header
        .strip_prefix('*')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("unexpected reply from Redis: {header}"))?;
    let mut items = Vec::with_capacity(count.min(16));
    for _ in 0..count {
        let item = read_line(stream).await?;
        if let Some(len) = item.strip_prefix('$') {
            let len: usize = len.parse().map_err(|_| format!("bad bulk length {len}"))?;
            if len > MAX_LINE {
                return Err(format!("a Redis message of {len} bytes"));
            }
            let mut bytes = vec![0u8; len + 2];
            tokio::io::AsyncReadExt::read_exact(stream, &mut bytes)
                .await
                .map_err(|e| e.to_string())?;
            bytes.truncate(len);
            items.push(String::from_utf8_lossy(&bytes).into_owned());
        } else if let Some(n) = item.strip_prefix(':') {
            items.push(n.to_string());
        } else {
            return Err(format!("unexpected reply from Redis: {item}"));
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_read_with_and_without_passwords() {
        let r = Redis::parse("redis://127.0.0.1:6380/2").unwrap();
        assert_eq!((r.address.as_str(), r.password), ("127.0.0.1:6380", None));
        let r = Redis::parse("redis://:s3cret@cache").unwrap();
        assert_eq!(
            (r.address.as_str(), r.password.as_deref()),
            ("cache:6379", Some("s3cret"))
        );
        assert!(Redis::parse("http://x").is_err());
        assert!(Redis::parse("redis://").is_err());
    }
}
