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

/// What each call of the load generator asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Method {
    /// `tools/call` of a tool with `{"message": …}`.
    #[value(name = "tools/call")]
    #[serde(rename = "tools/call")]
    ToolsCall,
    /// `tools/list`, following `nextCursor` to the last page: one call is the whole list.
    #[value(name = "tools/list")]
    #[serde(rename = "tools/list")]
    ToolsList,
}

impl Method {
    /// Its JSON-RPC method name.
    pub fn name(self) -> &'static str {
        match self {
            Method::ToolsCall => "tools/call",
            Method::ToolsList => "tools/list",
        }
    }
}

/// A request, split around its id so each request only formats a number: a `tools/call`, or
/// the first page of a `tools/list` (later pages are written with their cursor).
#[derive(Debug, Clone)]
pub struct Call {
    mode: Mode,
    method: Method,
    tool: String,
    message: String,
    head: Vec<u8>,
    tail: Vec<u8>,
    /// `,"_meta":{…}` of a stateless request, else empty: put after a page's cursor.
    meta_member: String,
    /// The `Authorization` every request carries (a gateway with `auth`), if any.
    authorization: Option<String>,
}

impl Call {
    /// A call of `tool` with `{"message": message}`, as a client of `mode` sends it.
    pub fn new(mode: Mode, tool: &str, message: &str) -> Self {
        Self::of(
            mode,
            Method::ToolsCall,
            json!({"name": tool, "arguments": {"message": message}}),
            tool,
            message,
        )
    }

    /// A `tools/list` (every page), as a client of `mode` sends it.
    pub fn list(mode: Mode) -> Self {
        Self::of(mode, Method::ToolsList, json!({}), "", "")
    }

    /// `method` with `params` (plus `_meta` when stateless).
    fn of(mode: Mode, method: Method, mut params: Value, tool: &str, message: &str) -> Self {
        let mut meta_member = String::new();
        if mode == Mode::Stateless {
            let meta = json!({
                "io.modelcontextprotocol/protocolVersion": STATELESS,
                "io.modelcontextprotocol/clientInfo": {"name": "portico-bench", "version": env!("CARGO_PKG_VERSION")},
                "io.modelcontextprotocol/clientCapabilities": {},
            });
            meta_member = format!(r#","_meta":{meta}"#);
            params["_meta"] = meta;
        }
        let tail = format!(r#","method":"{}","params":{params}}}"#, method.name());
        Self {
            mode,
            method,
            tool: tool.to_owned(),
            message: message.to_owned(),
            head: br#"{"jsonrpc":"2.0","id":"#.to_vec(),
            tail: tail.into_bytes(),
            meta_member,
            authorization: None,
        }
    }

    /// The same call, every request carrying `Authorization: authorization`.
    pub fn with_authorization(mut self, authorization: Option<String>) -> Self {
        self.authorization = authorization;
        self
    }

    /// The method it calls.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The body of the call with `id`, written into `out`.
    pub fn body(&self, id: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.head);
        out.extend_from_slice(id.to_string().as_bytes());
        out.extend_from_slice(&self.tail);
    }

    /// The body of the request with `id` for the page at `cursor` (a `tools/list`'s later
    /// pages), written into `out`.
    fn page_body(&self, id: u64, cursor: &str, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.head);
        out.extend_from_slice(id.to_string().as_bytes());
        let cursor = Value::from(cursor);
        let tail = format!(
            r#","method":"{}","params":{{"cursor":{cursor}{}}}}}"#,
            self.method.name(),
            self.meta_member
        );
        out.extend_from_slice(tail.as_bytes());
    }
}

/// What one call took: HTTP requests (a `tools/list` takes one per page) and response bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Answered {
    /// HTTP requests made.
    pub pages: u64,
    /// Response body bytes read.
    pub bytes: u64,
}

/// The client end of one connection, ready to call.
pub struct Client {
    connection: Connection,
    call: Call,
    session: Option<String>,
    next_id: u64,
    body: Vec<u8>,
    checked: bool,
    /// The tools of the first whole `tools/list`.
    listed: Option<usize>,
}

impl Client {
    /// Connects; a stateful client also opens its session.
    pub async fn connect(target: &Target, call: Call) -> anyhow::Result<Self> {
        let mut connection = Connection::open(target).await?;
        let session = match call.mode {
            Mode::Stateless => None,
            Mode::Stateful => open_session(&mut connection, call.authorization.as_deref()).await?,
        };
        Ok(Self {
            connection,
            call,
            session,
            next_id: 1,
            body: Vec::with_capacity(512),
            checked: false,
            listed: None,
        })
    }

    /// How many tools the first whole `tools/list` had (`None` before one, or for calls).
    pub fn listed(&self) -> Option<usize> {
        self.listed
    }

    /// One call. Every answer must be `200` with a JSON-RPC result (a JSON body, or an SSE
    /// stream whose last event is the answer). The first `tools/call` is decoded and its text
    /// compared with the message; every page of the first `tools/list` is decoded, and its
    /// `nextCursor` compared with the one the later listings find without decoding.
    pub async fn call(&mut self) -> anyhow::Result<Answered> {
        let mut answered = Answered::default();
        let mut cursor: Option<String> = None;
        let mut tools = 0;
        loop {
            let id = self.next_id;
            self.next_id += 1;
            match &cursor {
                None => self.call.body(id, &mut self.body),
                Some(cursor) => self.call.page_body(id, cursor, &mut self.body),
            }
            let method = self.call.method.name();
            // The headers of the generation, on the stack: no allocation per request.
            let (version, last) = match self.call.mode {
                Mode::Stateless if self.call.method == Method::ToolsCall => (
                    STATELESS,
                    [("Mcp-Method", method), ("Mcp-Name", self.call.tool.as_str())],
                ),
                Mode::Stateless => (STATELESS, [("Mcp-Method", method), ("", "")]),
                Mode::Stateful => match &self.session {
                    Some(session) => (STATEFUL, [("Mcp-Session-Id", session.as_str()), ("", "")]),
                    None => (STATEFUL, [("", ""), ("", "")]),
                },
            };
            let authorization = match &self.call.authorization {
                Some(value) => ("Authorization", value.as_str()),
                None => ("", ""),
            };
            let mut headers = [
                ("Content-Type", "application/json"),
                ("Accept", ACCEPT),
                ("MCP-Protocol-Version", version),
                last[0],
                last[1],
                authorization,
            ];
            // The headers in use first.
            headers[3..].sort_by_key(|(name, _)| name.is_empty());
            let used = 3 + headers[3..].iter().filter(|(name, _)| !name.is_empty()).count();
            let response = self.connection.send("POST", &headers[..used], &self.body).await?;
            if response.status != 200 || find(response.body, br#""result""#).is_none() {
                bail!("{method}: {}", describe(&response));
            }
            answered.pages += 1;
            answered.bytes += response.body.len() as u64;
            if self.call.method == Method::ToolsCall {
                if !self.checked {
                    check_echo(response.body, &self.call.message)?;
                    self.checked = true;
                }
                return Ok(answered);
            }
            let next = next_cursor(response.body);
            if self.listed.is_none() {
                let (page_tools, parsed) = check_page(response.body)?;
                if parsed != next {
                    bail!("tools/list: nextCursor {parsed:?}, but {next:?} found without decoding");
                }
                tools += page_tools;
            }
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        self.listed.get_or_insert(tools);
        Ok(answered)
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
pub async fn open_session(connection: &mut Connection, authorization: Option<&str>) -> anyhow::Result<Option<String>> {
    let initialize = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": STATEFUL,
            "capabilities": {},
            "clientInfo": {"name": "portico-bench", "version": env!("CARGO_PKG_VERSION")},
        },
    })
    .to_string();
    let mut headers = vec![("Content-Type", "application/json"), ("Accept", ACCEPT)];
    if let Some(authorization) = authorization {
        headers.push(("Authorization", authorization));
    }
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
    if let Some(authorization) = authorization {
        headers.push(("Authorization", authorization));
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

/// The JSON-RPC answer in a response body: the body itself, or the data of the last SSE event
/// that has some (a stream primed with an empty event, then the answer).
fn json_answer(body: &[u8]) -> &[u8] {
    if body.first() == Some(&b'{') {
        return body;
    }
    body.split(|&b| b == b'\n')
        .filter_map(|line| line.strip_prefix(b"data:"))
        .map(|data| data.trim_ascii())
        .rfind(|data| !data.is_empty())
        .unwrap_or(body)
}

/// Decodes an answer (a JSON body or an SSE stream).
fn decode_answer(body: &[u8]) -> anyhow::Result<Value> {
    serde_json::from_slice(json_answer(body)).with_context(|| {
        format!(
            "the first answer is not one JSON object: {}",
            String::from_utf8_lossy(body)
        )
    })
}

/// A page's `nextCursor`, found without decoding the page: in the members of `result` before
/// `tools` (Portico writes members in order, `nextCursor` first; the first listing checks this
/// against the decoded page).
fn next_cursor(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = br#""nextCursor":""#;
    let head = &body[..find(body, br#""tools":["#).unwrap_or(body.len())];
    let at = find(head, KEY)? + KEY.len();
    let end = at + head[at..].iter().position(|&b| b == b'"' || b == b'\\')?;
    (head[end] == b'"').then(|| String::from_utf8_lossy(&head[at..end]).into_owned())
}

/// Decodes a page of `tools/list`: its tools (each with a name) and its `nextCursor`.
fn check_page(body: &[u8]) -> anyhow::Result<(usize, Option<String>)> {
    let answer = decode_answer(body)?;
    let result = &answer["result"];
    let tools = result["tools"]
        .as_array()
        .with_context(|| format!("tools/list: no tools in {answer}"))?;
    if let Some(nameless) = tools.iter().find(|t| !t["name"].is_string()) {
        bail!("tools/list: a tool without a name: {nameless}");
    }
    let next = match &result["nextCursor"] {
        Value::Null => None,
        Value::String(cursor) => Some(cursor.clone()),
        other => bail!("tools/list: nextCursor {other}"),
    };
    Ok((tools.len(), next))
}

/// Decodes an answer to `echo` and checks its text is `message`.
fn check_echo(body: &[u8], message: &str) -> anyhow::Result<()> {
    let answer = decode_answer(body)?;
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

    #[test]
    fn list_pages_carry_their_cursor_and_the_meta_of_their_mode() {
        let mut out = Vec::new();
        for mode in [Mode::Stateless, Mode::Stateful] {
            let list = Call::list(mode);
            list.body(1, &mut out);
            let first: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(first["method"], "tools/list");
            assert!(first["params"].get("cursor").is_none());
            list.page_body(2, "a\"b", &mut out);
            let page: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(
                (page["id"].clone(), page["params"]["cursor"].clone()),
                (json!(2), json!("a\"b"))
            );
            assert_eq!(page["params"].get("_meta"), first["params"].get("_meta"), "{mode:?}");
        }
    }

    #[test]
    fn answers_are_found_in_json_and_in_sse_bodies() {
        let json = br#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
        assert_eq!(json_answer(json), json);
        let sse = b"id: 3-0\nretry: 3000\ndata: \n\nid: 3-1\ndata: {\"id\":1}\n\n";
        assert_eq!(json_answer(sse), br#"{"id":1}"#);
    }

    #[test]
    fn the_next_cursor_is_found_before_the_tools() {
        let page = br#"{"result":{"nextCursor":"MTAw","tools":[{"name":"x","nextCursor":"no"}]}}"#;
        assert_eq!(next_cursor(page).as_deref(), Some("MTAw"));
        let last = br#"{"result":{"tools":[{"name":"x","description":"\"nextCursor\":\"no"}]}}"#;
        assert_eq!(next_cursor(last), None);
        assert_eq!(check_page(page).unwrap(), (1, Some("MTAw".into())));
        assert_eq!(check_page(last).unwrap(), (1, None));
    }
}
