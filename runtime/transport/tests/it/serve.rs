//! The server end, [`serve`], over in-memory pipes (`tokio::io::duplex`): framing, limits,
//! errors the transport answers itself, and how the connection ends.

use std::collections::BTreeMap;
use std::io;

use portico_transport::StdioConfig;
use portico_transport::stdio::serve;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::task::JoinHandle;

use crate::{TestService, within};

/// A server running [`serve`] over two in-memory pipes, seen from the client's side.
struct Wire {
    /// The server's input (dropped: the server sees the end of its input).
    to_server: Option<DuplexStream>,
    /// The server's output (dropped: the server's writes fail with a broken pipe).
    from_server: Option<BufReader<DuplexStream>>,
    serve: JoinHandle<io::Result<()>>,
}

impl Wire {
    fn start(config: StdioConfig) -> Self {
        let (to_server, server_in) = tokio::io::duplex(64 * 1024);
        let (server_out, from_server) = tokio::io::duplex(64 * 1024);
        Self {
            to_server: Some(to_server),
            from_server: Some(BufReader::new(from_server)),
            serve: tokio::spawn(serve(server_in, server_out, TestService, config)),
        }
    }

    async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        let to_server = self.to_server.as_mut().expect("the input is open");
        within("writing to the server", to_server.write_all(bytes.as_ref()))
            .await
            .expect("the server reads");
    }

    /// The next line the server wrote, as JSON.
    async fn recv(&mut self) -> Value {
        let line = self.recv_line().await.expect("the server closed its output");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}"))
    }

    /// The next line the server wrote (checked to end with exactly one `\n`), or `None` at the
    /// end of its output.
    async fn recv_line(&mut self) -> Option<String> {
        let from_server = self.from_server.as_mut().expect("the output is open");
        let mut line = String::new();
        let n = within("reading from the server", from_server.read_line(&mut line))
            .await
            .expect("the server's output is UTF-8");
        if n == 0 {
            return None;
        }
        let body = line
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("{line:?} has no newline"));
        assert!(!body.contains(['\n', '\r']), "{line:?} holds a line break");
        Some(body.to_string())
    }

    /// Ends the server's input, checks that its output ends too, and returns what [`serve`]
    /// returned.
    async fn finish(mut self) -> io::Result<()> {
        self.to_server = None;
        if self.from_server.is_some() {
            assert_eq!(self.recv_line().await, None, "nothing more is written after the end");
        }
        within("serve to return", self.serve)
            .await
            .expect("serve did not panic")
    }
}

fn request(id: i64, method: &str, params: Value) -> String {
    format!(
        "{}\n",
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
    )
}

#[tokio::test]
async fn a_request_is_answered_on_one_line() {
    let mut wire = Wire::start(StdioConfig::default());
    wire.send(request(1, "echo", json!({"hello": "world"}))).await;
    assert_eq!(
        wire.recv().await,
        json!({"jsonrpc": "2.0", "id": 1, "result": {"hello": "world"}})
    );
    wire.send(request(2, "nope", json!({}))).await;
    let answer = wire.recv().await;
    assert_eq!(answer["id"], 2);
    assert_eq!(answer["error"]["code"], -32601);
    wire.finish().await.expect("a clean end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_requests_in_flight_are_all_answered() {
    let mut wire = Wire::start(StdioConfig::default());
    // Sent in one write, more than the peer handles at once (64): the reader waits for free
    // handler slots instead of queueing without bound.
    let batch: String = (0..300).map(|i| request(i, "echo", json!({"n": i}))).collect();
    wire.send(batch).await;
    let mut answers = BTreeMap::new();
    for _ in 0..300 {
        let answer = wire.recv().await;
        let id = answer["id"].as_i64().expect("an integer id");
        assert_eq!(answer["result"], json!({"n": id}), "{answer}");
        assert!(answers.insert(id, answer).is_none(), "id {id} answered twice");
    }
    assert_eq!(
        answers.keys().copied().collect::<Vec<_>>(),
        (0..300).collect::<Vec<_>>()
    );
    wire.finish().await.expect("a clean end");
}

/// A request line of exactly `len` bytes (without its newline).
fn request_of_len(id: i64, len: usize) -> String {
    let bare = request(id, "echo", json!("")).trim_end().len();
    let line = request(id, "echo", json!("x".repeat(len - bare)));
    assert_eq!(line.len(), len + 1);
    line
}

#[tokio::test]
async fn an_overlong_line_is_refused_and_the_next_line_is_read() {
    let config = StdioConfig {
        max_message_bytes: 1024,
        ..StdioConfig::default()
    };
    let mut wire = Wire::start(config);
    // At the limit, with `\n` or `\r\n`: served.
    wire.send(request_of_len(1, 1024)).await;
    assert_eq!(wire.recv().await["id"], 1);
    wire.send(request_of_len(2, 1024).replace('\n', "\r\n")).await;
    assert_eq!(wire.recv().await["id"], 2);
    // One byte over, and far over: refused, with the id unread (`null`).
    for len in [1025, 200_000] {
        wire.send(request_of_len(3, len)).await;
        let answer = wire.recv().await;
        assert_eq!(answer["id"], Value::Null, "{answer}");
        assert_eq!(answer["error"]["code"], -32600, "{answer}");
        let message = answer["error"]["message"].as_str().expect("a message");
        assert!(message.contains("limit of 1024 bytes"), "{message}");
    }
    // The line after is read from its start.
    wire.send(request(4, "echo", json!("after"))).await;
    assert_eq!(wire.recv().await, json!({"jsonrpc": "2.0", "id": 4, "result": "after"}));
    wire.finish().await.expect("a clean end");
}

#[tokio::test]
async fn a_line_that_is_not_utf8_is_a_parse_error() {
    let mut wire = Wire::start(StdioConfig::default());
    wire.send(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":\"\xff\xfe\"}\n")
        .await;
    let answer = wire.recv().await;
    assert_eq!(answer["id"], Value::Null, "{answer}");
    assert_eq!(answer["error"]["code"], -32700, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .expect("a message")
            .contains("UTF-8"),
        "{answer}"
    );
    wire.send(request(2, "echo", json!("after"))).await;
    assert_eq!(wire.recv().await["result"], "after");
    wire.finish().await.expect("a clean end");
}

#[tokio::test]
async fn blank_lines_are_skipped_and_crlf_is_accepted() {
    let mut wire = Wire::start(StdioConfig::default());
    wire.send("\n\r\n   \n\t\r\n").await;
    wire.send(request(1, "echo", json!("crlf")).replace('\n', "\r\n")).await;
    // The first thing written is the answer: the blank lines got none.
    assert_eq!(wire.recv().await, json!({"jsonrpc": "2.0", "id": 1, "result": "crlf"}));
    wire.finish().await.expect("a clean end");
}

#[tokio::test]
async fn a_line_that_is_not_json_is_answered_by_the_peer() {
    let mut wire = Wire::start(StdioConfig::default());
    wire.send("running 1 test\n").await;
    let answer = wire.recv().await;
    assert_eq!(answer["error"]["code"], -32700, "{answer}");
    wire.finish().await.expect("a clean end");
}

#[tokio::test]
async fn a_result_spanning_lines_is_written_on_one() {
    let mut wire = Wire::start(StdioConfig::default());
    wire.send(request(1, "pretty", json!(null))).await;
    assert_eq!(
        wire.recv().await,
        json!({"jsonrpc": "2.0", "id": 1, "result": {"a": 1, "b": ["x\ny"]}})
    );
    wire.finish().await.expect("a clean end");
}

#[tokio::test]
async fn the_end_of_input_writes_what_is_queued_then_ends() {
    let mut wire = Wire::start(StdioConfig::default());
    // The answer is queued by the reader itself before it reads the end of the input.
    wire.send(b"\xff\n").await;
    wire.to_server = None;
    assert_eq!(wire.recv().await["error"]["code"], -32700);
    wire.finish().await.expect("a clean end");
}

#[tokio::test]
async fn a_request_just_before_the_end_of_input_is_still_answered() {
    // `echo '{…}' | server`: the input ends while the handler runs; it gets the grace period.
    let mut wire = Wire::start(StdioConfig::default());
    wire.send(request(1, "nap", json!(null))).await;
    wire.to_server = None;
    assert_eq!(
        wire.recv().await,
        json!({"jsonrpc": "2.0", "id": 1, "result": "rested"})
    );
    wire.finish().await.expect("a clean end");
}

#[tokio::test]
async fn the_end_of_input_stops_handlers_in_flight() {
    let mut wire = Wire::start(StdioConfig::default());
    wire.send(request(1, "hang", json!(null))).await;
    // Answered after `hang` was dispatched: `hang` is in flight.
    wire.send(request(2, "echo", json!(2))).await;
    assert_eq!(wire.recv().await["id"], 2);
    // `finish` checks that `hang` is not answered and that serve returns anyway.
    wire.finish().await.expect("a clean end");
}

#[tokio::test]
async fn a_closed_output_ends_serve() {
    let mut wire = Wire::start(StdioConfig::default());
    wire.send(request(1, "echo", json!(1))).await;
    assert_eq!(wire.recv().await["id"], 1);
    wire.from_server = None;
    // The answer cannot be written: the broken pipe ends serve cleanly, input still open.
    wire.send(request(2, "echo", json!(2))).await;
    let ended = within("serve to return", &mut wire.serve).await;
    ended
        .expect("serve did not panic")
        .expect("a broken pipe is a clean end");
}
