//! The MCP messages the load generator sends, prepared once, and the client end of one
//! connection: a 2026-07-28 stateless caller or a 2025-11-25 session.

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::client::{Connection, Response, Target, find};

/// The stateless revision.
pub const STATELESS: &str = "2026-07-28";
/// The stateful revision the sessions negotiate.
pub const STATEFUL: &str = "2025-11-25";
/// The message the load generator asks `echo` to return (and the reference returns).
pub const MESSAGE: &str = "hello from portico-bench";
/// The `Accept` header of every POST.
const ACCEPT: &str = "application/json, text/event-stream";

/// The client's generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// 2026-07-28: every request carries `_meta` and the mirrored headers; no session.
    Stateless,
    /// 2025-11-25: `initialize` + `notifications/initialized`, then `Mcp-Session-Id`.
    Stateful,
}

/// A `tools/call` request, split around its id so each request only formats a number.
#[derive(Debug, Clone)]
pub struct Call {
    mode: Mode,
    tool: String,
    message: String,
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl Call {
    /// A call of `tool` with `{"message": message}`, as a client of `mode` sends it.
    pub fn new(mode: Mode, tool: &str, message: &str) -> Self {
        let mut params = json!({"name": tool, "arguments": {"message": message}});
        if mode == Mode::Stateless {
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": STATELESS,
                "io.modelcontextprotocol/clientInfo": {"name": "portico-bench", "version": env!("CARGO_PKG_VERSION")},
                "io.modelcontextprotocol/clientCapabilities": {},
            });
        }
        let tail = format!(r#","method":"tools/call","params":{params}}}"#);
        Self {
            mode,
            tool: tool.to_owned(),
            message: message.to_owned(),
            head: br#"{"jsonrpc":"2.0","id":"#.to_vec(),
            tail: tail.into_bytes(),
        }
    }

    /// The body of the call with `id`, written into `out`.
    pub fn body(&self, id: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.head);
        out.extend_from_slice(id.to_string().as_bytes());
        out.extend_from_slice(&self.tail);
    }
}

/// The client end of one connection, ready to call.
pub struct Client {
    connection: Connection,
    call: Call,
    session: Option<String>,
    next_id: u64,
    body: Vec<u8>,
    checked: bool,
}

impl Client {
    /// Connects; a stateful client also opens its session.
    pub async fn connect(target: &Target, call: Call) -> anyhow::Result<Self> {
        let mut connection = Connection::open(target).await?;
        let session = match call.mode {
            Mode::Stateless => None,
            Mode::Stateful => open_session(&mut connection).await?,
        };
        Ok(Self {
            connection,
            call,
            session,
            next_id: 1,
            body: Vec::with_capacity(512),
            checked: false,
        })
    }

    /// One `tools/call`. Every answer must be `200` with a JSON-RPC result; the first one is
    /// decoded and its text compared with the message.
    pub async fn call(&mut self) -> anyhow::Result<()> {
        let id = self.next_id;
        self.next_id += 1;
        self.call.body(id, &mut self.body);
        let response = match self.call.mode {
            Mode::Stateless => {
                let headers = [
                    ("Content-Type", "application/json"),
                    ("Accept", ACCEPT),
                    ("MCP-Protocol-Version", STATELESS),
                    ("Mcp-Method", "tools/call"),
                    ("Mcp-Name", self.call.tool.as_str()),
                ];
                self.connection.send("POST", &headers, &self.body).await?
            }
            Mode::Stateful => {
                let mut headers = [
                    ("Content-Type", "application/json"),
                    ("Accept", ACCEPT),
                    ("MCP-Protocol-Version", STATEFUL),
                    ("Mcp-Session-Id", ""),
                ];
                let headers = match &self.session {
                    Some(session) => {
                        headers[3].1 = session;
                        &headers[..]
                    }
                    None => &headers[..3],
                };
                self.connection.send("POST", headers, &self.body).await?
            }
        };
        if response.status != 200 || find(response.body, br#""result""#).is_none() {
            bail!("tools/call: {}", describe(&response));
        }
        if !self.checked {
            check_echo(response.body, &self.call.message)?;
            self.checked = true;
        }
        Ok(())
    }

    /// Ends the session, if there is one (errors are ignored: the run is over).
    pub async fn close(mut self) {
        if let Some(session) = self.session.take() {
            let _ = delete_session(&mut self.connection, &session).await;
        }
    }
}

/// `initialize` then `notifications/initialized`: the session id (`None` from a server without
/// sessions, like the reference).
pub async fn open_session(connection: &mut Connection) -> anyhow::Result<Option<String>> {
    let initialize = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": STATEFUL,
            "capabilities": {},
            "clientInfo": {"name": "portico-bench", "version": env!("CARGO_PKG_VERSION")},
        },
    })
    .to_string();
    let headers = [("Content-Type", "application/json"), ("Accept", ACCEPT)];
    let response = connection.send("POST", &headers, initialize.as_bytes()).await?;
    if response.status != 200 || find(response.body, br#""result""#).is_none() {
        bail!("initialize: {}", describe(&response));
    }
    let session = response.session_id;
    let initialized = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Accept", ACCEPT),
        ("MCP-Protocol-Version", STATEFUL),
    ];
    if let Some(session) = &session {
        headers.push(("Mcp-Session-Id", session));
    }
    let response = connection.send("POST", &headers, initialized).await?;
    if response.status != 202 {
        bail!("notifications/initialized: {}", describe(&response));
    }
    Ok(session)
}

/// `DELETE` of a session.
pub async fn delete_session(connection: &mut Connection, session: &str) -> anyhow::Result<u16> {
    let headers = [("MCP-Protocol-Version", STATEFUL), ("Mcp-Session-Id", session)];
    Ok(connection.send("DELETE", &headers, b"").await?.status)
}

/// Decodes an answer to `echo` and checks its text is `message`.
fn check_echo(body: &[u8], message: &str) -> anyhow::Result<()> {
    let answer: Value = serde_json::from_slice(body).with_context(|| {
        format!(
            "the first answer is not one JSON object: {}",
            String::from_utf8_lossy(body)
        )
    })?;
    let text = &answer["result"]["content"][0]["text"];
    if text != message || answer["result"]["isError"] == true {
        bail!("expected the text {message:?} back, got {answer}");
    }
    Ok(())
}

/// A response for an error message: the status and the start of the body.
fn describe(response: &Response<'_>) -> String {
    let body = String::from_utf8_lossy(response.body);
    let body: String = body.chars().take(300).collect();
    format!("HTTP {}: {body}", response.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_json_rpc_with_the_meta_of_their_mode() {
        let mut out = Vec::new();
        Call::new(Mode::Stateless, "echo", "a\"b").body(42, &mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["id"], 42);
        assert_eq!(v["method"], "tools/call");
        assert_eq!(v["params"]["name"], "echo");
        assert_eq!(v["params"]["arguments"]["message"], "a\"b");
        assert_eq!(
            v["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"],
            STATELESS
        );
        Call::new(Mode::Stateful, "echo", "x").body(7, &mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["id"], 7);
        assert!(v["params"].get("_meta").is_none());
    }
}
