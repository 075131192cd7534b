//! A small Redis client speaking RESP2 over TCP: what the gateway needs of Redis (a few
//! commands and a Lua script for the rate limiter, `PUBLISH`/`SUBSCRIBE` for [`crate::signal`]),
//! spoken directly rather than through a Redis client library.
//!
//! - [`Address`]: a server's address, password and database, from a `redis://` URL.
//! - [`Connection`]: one connection; a command is written as an array of bulk strings, a reply
//!   read whole (bounded in size and nesting).
//! - [`Client`]: connections shared by concurrent callers — a pool of idle connections and at
//!   most [`MAX_CONNECTIONS`] in use; every command has a deadline; a connection that failed is
//!   dropped, and after a failure to reach the server the client waits (100 ms, doubling to
//!   2 s) before it tries again, failing commands at once meanwhile, so that a server away
//!   costs callers nothing but the error. The first command that succeeds again ends the wait.
//!
//! Not supported: TLS (`rediss://`), RESP3, Redis Cluster redirections, Sentinel.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The server could not be reached, the connection failed, or the command took longer than
    /// its deadline: the command may or may not have run.
    #[error("Redis at {address} is unavailable: {reason}")]
    Unavailable {
        /// `host:port`.
        address: String,
        /// What happened.
        reason: String,
    },
    /// The server answered with an error reply (`-ERR …`, `-NOSCRIPT …`).
    #[error("Redis answered: {0}")]
    Reply(String),
    /// The server sent something that is not RESP2, or more than the client accepts.
    #[error("Redis sent an invalid reply: {0}")]
    Protocol(String),
}

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`.
    Status(String),
    /// `-ERR …` (as a value: see [`Reply::into_result`]).
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$…`: a bulk string, `None` for the null bulk string.
    Bulk(Option<Vec<u8>>),
    /// `*…`: an array, `None` for the null array.
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply, or [`Error::Reply`] for an error reply.
    pub fn into_result(self) -> Result<Self, Error> {
        match self {
            Self::Error(message) => Err(Error::Reply(message)),
            other => Ok(other),
        }
    }

    /// A bulk or status reply as text.
    pub fn text(&self) -> Option<String> {
        match self {
            Self::Status(text) => Some(text.clone()),
            Self::Bulk(Some(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        }
    }
}

/// A Redis server's address, password and database, from
/// `redis://[[user]:password@]host[:port][/db]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    address: String,
    user: Option<String>,
    password: Option<String>,
    db: u32,
}

impl Address {
    /// Reads a `redis://` URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| format!("`{url}` is not a redis:// URL"))?;
        let (rest, db) = match rest.split_once('/') {
            Some((rest, "")) => (rest, 0),
            Some((rest, db)) => (
                rest,
                db.parse()
                    .map_err(|_| format!("`{url}`: the database `{db}` is not a number"))?,
            ),
            None => (rest, 0),
        };
        let (user, password, host) = match rest.rsplit_once('@') {
            Some((auth, host)) => {
                let (user, password) = auth.split_once(':').unwrap_or(("", auth));
                (
                    Some(user.to_string()).filter(|u| !u.is_empty()),
                    Some(password.to_string()).filter(|p| !p.is_empty()),
                    host,
                )
            }
            None => (None, None, rest),
        };
        if host.is_empty() {
            return Err(format!("`{url}` names no host"));
        }
        let address = if host
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
        {
            host.to_string()
        } else {
            format!("{host}:6379")
        };
        Ok(Self {
            address,
            user,
            password,
            db,
        })
    }

    /// `host:port`.
    pub fn address(&self) -> &str {
        &self.address
    }

    fn unavailable(&self, reason: impl Into<String>) -> Error {
        Error::Unavailable {
            address: self.address.clone(),
            reason: reason.into(),
        }
    }

    /// Connects (within `timeout`), authenticates and selects the database.
    pub async fn connect(&self, timeout: Duration) -> Result<Connection, Error> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(&self.address))
            .await
            .map_err(|_| self.unavailable(format!("connecting took longer than {timeout:?}")))?
            .map_err(|e| self.unavailable(format!("connecting: {e}")))?;
        let _ = stream.set_nodelay(true);
        let mut connection = Connection {
            stream: BufReader::new(stream),
            address: self.address.clone(),
            out: Vec::new(),
        };
        let setup = async {
            if let Some(password) = &self.password {
                let reply = match &self.user {
                    Some(user) => {
                        connection
                            .command(&[b"AUTH", user.as_bytes(), password.as_bytes()])
                            .await?
                    }
                    None => connection.command(&[b"AUTH", password.as_bytes()]).await?,
                };
                reply
                    .into_result()
                    .map_err(|e| Error::Reply(format!("AUTH refused: {e}")))?;
            }
            if self.db != 0 {
                let db = self.db.to_string();
                connection.command(&[b"SELECT", db.as_bytes()]).await?.into_result()?;
            }
            Ok::<(), Error>(())
        };
        tokio::time::timeout(timeout, setup)
            .await
            .map_err(|_| self.unavailable(format!("no answer to AUTH/SELECT within {timeout:?}")))??;
        Ok(connection)
    }
}

/// The largest bulk string read, and the most items of one array.
const MAX_BULK: usize = 16 << 20;
const MAX_ITEMS: usize = 1 << 20;
/// The deepest nesting of arrays read.
const MAX_DEPTH: usize = 8;

/// One connection to a server.
pub struct Connection {
    stream: BufReader<TcpStream>,
    address: String,
    /// The command being written, kept to reuse its allocation.
    out: Vec<u8>,
}

impl Connection {
    fn io(&self, e: impl std::fmt::Display) -> Error {
        Error::Unavailable {
            address: self.address.clone(),
            reason: e.to_string(),
        }
    }

    /// Writes one command: an array of bulk strings.
    pub async fn send(&mut self, args: &[&[u8]]) -> Result<(), Error> {
        self.out.clear();
        self.out.push(b'*');
        self.out.extend_from_slice(args.len().to_string().as_bytes());
        self.out.extend_from_slice(b"\r\n");
        for arg in args {
            self.out.push(b'$');
            self.out.extend_from_slice(arg.len().to_string().as_bytes());
            self.out.extend_from_slice(b"\r\n");
            self.out.extend_from_slice(arg);
            self.out.extend_from_slice(b"\r\n");
        }
        let written = self.stream.get_mut().write_all(&self.out).await;
        written.map_err(|e| self.io(e))
    }

    /// Reads one reply (error replies included, as [`Reply::Error`]).
    pub async fn read(&mut self) -> Result<Reply, Error> {
        self.read_at(0).await
    }

    /// Writes a command and reads its reply.
    pub async fn command(&mut self, args: &[&[u8]]) -> Result<Reply, Error> {
        self.send(args).await?;
        self.read().await
    }

    async fn line(&mut self) -> Result<String, Error> {
        let mut line = Vec::new();
        let read = (&mut self.stream)
            .take(64 * 1024)
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| self.io(e))?;
        if read == 0 {
            return Err(self.io("the server closed the connection"));
        }
        if !line.ends_with(b"\r\n") {
            return Err(Error::Protocol("a line longer than 64 KiB, or cut short".into()));
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line).map_err(|_| Error::Protocol("a line that is not UTF-8".into()))
    }

    fn read_at(&mut self, depth: usize) -> std::pin::Pin<Box<dyn Future<Output = Result<Reply, Error>> + Send + '_>> {
        Box::pin(async move {
            let line = self.line().await?;
            let (kind, rest) = line.split_at(line.len().min(1));
            let number = || -> Result<i64, Error> {
                rest.parse()
                    .map_err(|_| Error::Protocol(format!("`{rest}` is not a number")))
            };
            match kind {
                "+" => Ok(Reply::Status(rest.to_string())),
                "-" => Ok(Reply::Error(rest.to_string())),
                ":" => Ok(Reply::Integer(number()?)),
                "$" => {
                    let len = number()?;
                    if len < 0 {
                        return Ok(Reply::Bulk(None));
                    }
                    let len = len as usize;
                    if len > MAX_BULK {
                        return Err(Error::Protocol(format!("a bulk string of {len} bytes")));
                    }
                    let mut bytes = vec![0u8; len + 2];
                    let read = self.stream.read_exact(&mut bytes).await;
                    read.map_err(|e| self.io(e))?;
                    if !bytes.ends_with(b"\r\n") {
                        return Err(Error::Protocol("a bulk string without its CRLF".into()));
                    }
                    bytes.truncate(len);
                    Ok(Reply::Bulk(Some(bytes)))
                }
                "*" => {
                    let count = number()?;
                    if count < 0 {
                        return Ok(Reply::Array(None));
                    }
                    let count = count as usize;
                    if count > MAX_ITEMS || depth >= MAX_DEPTH {
                        return Err(Error::Protocol(format!("an array of {count} items at depth {depth}")));
                    }
                    let mut items = Vec::with_capacity(count.min(64));
                    for _ in 0..count {
                        items.push(self.read_at(depth + 1).await?);
                    }
                    Ok(Reply::Array(Some(items)))
                }
                _ => Err(Error::Protocol(format!("unexpected line `{line}`"))),
            }
        })
    }
}

/// At most this many connections of a [`Client`] are in use at once; more commands wait.
pub const MAX_CONNECTIONS: usize = 16;
/// Idle connections kept for reuse.
const MAX_IDLE: usize = 8;
/// The wait after a failure to reach the server: doubling from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));

/// The server's state as the client last saw it.
#[derive(Default)]
struct Health {
    /// While set and in the future, commands fail at once with `reason`.
    retry_at: Option<Instant>,
    backoff: Duration,
    reason: String,
}

/// Connections to one server shared by concurrent callers (see the module's docs).
pub struct Client {
    address: Address,
    timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    slots: tokio::sync::Semaphore,
    health: Mutex<Health>,
}

impl Client {
    /// A client of `address` whose commands (connecting included) each take at most
    /// `timeout`; connects when first used.
    pub fn new(address: Address, timeout: Duration) -> Self {
        Self {
            address,
            timeout,
            idle: Mutex::new(Vec::new()),
            slots: tokio::sync::Semaphore::new(MAX_CONNECTIONS),
            health: Mutex::default(),
        }
    }

    /// The server's address.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Runs one command and returns its reply (an error reply as [`Error::Reply`]). A command
    /// whose reused connection fails is tried once more on a new connection (the server may
    /// have closed the idle one), so it may run twice: callers send only commands for which
    /// that is safe.
    pub async fn command(&self, args: &[&[u8]]) -> Result<Reply, Error> {
        if let Some(error) = self.backing_off() {
            return Err(error);
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        let run = async {
            let _slot = self
                .slots
                .acquire()
                .await
                .map_err(|_| self.address.unavailable("the client is closed"))?;
            let reused = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            if let Some(mut connection) = reused {
                match connection.command(args).await {
                    Ok(reply) => return Ok((connection, reply)),
                    Err(Error::Unavailable { .. }) => {}
                    Err(other) => return Err(other),
                }
            }
            let mut connection = self.address.connect(self.timeout).await?;
            let reply = connection.command(args).await?;
            Ok((connection, reply))
        };
        let outcome = match tokio::time::timeout_at(deadline, run).await {
            Ok(outcome) => outcome,
            Err(_) => Err(self.address.unavailable(format!("no answer within {:?}", self.timeout))),
        };
        match outcome {
            Ok((connection, reply)) => {
                self.recovered();
                let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
                if idle.len() < MAX_IDLE {
                    idle.push(connection);
                }
                reply.into_result()
            }
            Err(error) => {
                if matches!(error, Error::Unavailable { .. } | Error::Protocol(_)) {
                    self.failed(&error);
                }
                Err(error)
            }
        }
    }

    /// The error to fail with at once while waiting to try the server again.
    fn backing_off(&self) -> Option<Error> {
        let health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        let retry_at = health.retry_at?;
        let now = Instant::now();
        (now < retry_at).then(|| {
            self.address.unavailable(format!(
                "{} (trying again in {} ms)",
                health.reason,
                (retry_at - now).as_millis().max(1)
            ))
        })
    }

    fn failed(&self, error: &Error) {
        // Connections made before the failure may be as broken as the one that failed.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).clear();
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if health.retry_at.is_some_and(|at| at > now) {
            // Another command failed meanwhile: the wait is already set.
            return;
        }
        health.backoff = if health.retry_at.is_some() {
            (health.backoff * 2).clamp(BACKOFF.0, BACKOFF.1)
        } else {
            BACKOFF.0
        };
        health.retry_at = Some(now + health.backoff);
        health.reason = match error {
            Error::Unavailable { reason, .. } => reason.clone(),
            other => other.to_string(),
        };
        tracing::warn!(redis = %self.address.address, error = %error, retry_in = ?health.backoff, "Redis unavailable");
    }

    fn recovered(&self) {
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        if health.retry_at.take().is_some() {
            tracing::info!(redis = %self.address.address, "Redis reachable again");
        }
    }

    /// How long until the client tries the server again, while it waits after a failure.
    pub fn retry_in(&self) -> Option<Duration> {
        let health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        health.retry_at.and_then(|at| at.checked_duration_since(Instant::now()))
    }
}

/// A Lua script: run with `EVALSHA` (loaded once with `SCRIPT LOAD`), and with `EVAL` when
/// Redis answers `NOSCRIPT` (it restarted, or its script cache was flushed).
pub struct Script {
    source: &'static str,
    /// Its SHA-1, once loaded.
    sha: Mutex<Option<String>>,
}

impl Script {
    /// The script `source`.
    pub const fn new(source: &'static str) -> Self {
        Self {
            source,
            sha: Mutex::new(None),
        }
    }

    /// Believes the script loaded as `sha` (a test of the `NOSCRIPT` fallback).
    #[cfg(test)]
    pub(crate) fn pretend_loaded(&self, sha: &str) {
        *self.sha.lock().unwrap_or_else(PoisonError::into_inner) = Some(sha.to_string());
    }

    /// Runs it on `client` with `keys` and `args`.
    pub async fn run(&self, client: &Client, keys: &[&[u8]], args: &[&[u8]]) -> Result<Reply, Error> {
        let known = self.sha.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let sha = match known {
            Some(sha) => sha,
            None => {
                let reply = client.command(&[b"SCRIPT", b"LOAD", self.source.as_bytes()]).await?;
                let sha = reply
                    .text()
                    .ok_or_else(|| Error::Protocol(format!("SCRIPT LOAD answered {reply:?}")))?;
                *self.sha.lock().unwrap_or_else(PoisonError::into_inner) = Some(sha.clone());
                sha
            }
        };
        let count = keys.len().to_string();
        let mut command: Vec<&[u8]> = vec![b"EVALSHA", sha.as_bytes(), count.as_bytes()];
        command.extend_from_slice(keys);
        command.extend_from_slice(args);
        match client.command(&command).await {
            Err(Error::Reply(message)) if message.starts_with("NOSCRIPT") => {
                command[0] = b"EVAL";
                command[1] = self.source.as_bytes();
                client.command(&command).await
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_read_with_and_without_passwords() {
        let r = Address::parse("redis://127.0.0.1:6380/2").unwrap();
        assert_eq!((r.address(), r.password.as_deref(), r.db), ("127.0.0.1:6380", None, 2));
        let r = Address::parse("redis://:s3cret@cache").unwrap();
        assert_eq!((r.address(), r.password.as_deref()), ("cache:6379", Some("s3cret")));
        let r = Address::parse("redis://app:s3cret@cache:7000/").unwrap();
        assert_eq!(
            (r.address(), r.user.as_deref(), r.password.as_deref(), r.db),
            ("cache:7000", Some("app"), Some("s3cret"), 0)
        );
        assert!(Address::parse("http://x").is_err());
        assert!(Address::parse("redis://").is_err());
        assert!(Address::parse("redis://x/db").is_err());
    }

    /// The machine's Redis, as the integration tests find it.
    fn test_redis() -> Address {
        let url = std::env::var("PORTICO_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        Address::parse(&url).expect("PORTICO_TEST_REDIS is a redis:// URL")
    }

    #[tokio::test]
    async fn commands_run_and_replies_read() {
        let client = Client::new(test_redis(), Duration::from_secs(2));
        let pong = client.command(&[b"PING"]).await.unwrap_or_else(|e| {
            panic!("Redis is not reachable ({e}): start it (`bash .ci/run` does), or set PORTICO_TEST_REDIS")
        });
        assert_eq!(pong, Reply::Status("PONG".into()));
        let key = format!("portico:test:redis:{}", std::process::id());
        let reply = client
            .command(&[b"SET", key.as_bytes(), b"a\r\nb", b"PX", b"10000"])
            .await
            .unwrap();
        assert_eq!(reply, Reply::Status("OK".into()));
        let reply = client.command(&[b"GET", key.as_bytes()]).await.unwrap();
        assert_eq!(reply, Reply::Bulk(Some(b"a\r\nb".to_vec())));
        let reply = client.command(&[b"DEL", key.as_bytes(), key.as_bytes()]).await.unwrap();
        assert_eq!(reply, Reply::Integer(1));
        assert_eq!(
            client.command(&[b"GET", key.as_bytes()]).await.unwrap(),
            Reply::Bulk(None)
        );
        let reply = client.command(&[b"TIME"]).await.unwrap();
        assert!(
            matches!(reply, Reply::Array(Some(ref items)) if items.len() == 2),
            "{reply:?}"
        );
        match client.command(&[b"NOSUCHCOMMAND"]).await {
            Err(Error::Reply(message)) => assert!(message.starts_with("ERR"), "{message}"),
            other => panic!("expected an error reply, got {other:?}"),
        }
        // An error reply is the server's answer, not a failure to reach it.
        assert!(client.retry_in().is_none());
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_fast_while_backing_off() {
        // A port nothing listens on: bound, then closed.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = Client::new(
            Address::parse(&format!("redis://127.0.0.1:{port}")).unwrap(),
            Duration::from_secs(1),
        );
        let first = client.command(&[b"PING"]).await.unwrap_err();
        assert!(matches!(first, Error::Unavailable { .. }), "{first:?}");
        assert!(client.retry_in().is_some());
        let second = client.command(&[b"PING"]).await.unwrap_err();
        assert!(second.to_string().contains("trying again in"), "{second}");
    }
}
