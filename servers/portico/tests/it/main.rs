//! Integration tests of the `portico` binary: it is run as a user would run it.

mod gateway;

use std::process::{Command, Output};

/// Runs the built `portico` with `args`.
fn portico(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(args)
        .output()
        .expect("running the portico binary")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

#[test]
fn version_prints_the_cargo_version() {
    let out = portico(&["--version"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), format!("portico {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn help_describes_portico_and_lists_subcommands() {
    let out = portico(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("Model Context Protocol"), "{text}");
    assert!(text.contains("Usage: portico"), "{text}");
    assert!(text.contains("revisions"), "{text}");
    assert!(text.contains("--version"), "{text}");
}

#[test]
fn revisions_lists_every_supported_revision_newest_first() {
    let out = portico(&["revisions"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout(&out),
        "2026-07-28 (newest)\n2025-11-25\n2025-06-18\n2025-03-26\n2024-11-05\n"
    );
}

#[test]
fn revisions_match_the_pinned_spec_inputs() {
    // The manifest dir is read at run time (cargo sets it for tests too): a test binary reused
    // from another checkout sharing CARGO_TARGET_DIR must read this checkout's file.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    let pinned =
        std::fs::read_to_string(format!("{manifest_dir}/../../spec/PINNED.toml")).expect("reading spec/PINNED.toml");
    let mut pinned: Vec<&str> = pinned
        .lines()
        .filter_map(|l| l.trim().strip_prefix("name = \"")?.strip_suffix('"'))
        .collect();
    pinned.sort_unstable();
    pinned.reverse();
    let out = portico(&["revisions"]);
    let listed: Vec<String> = stdout(&out)
        .lines()
        .map(|l| l.trim_end_matches(" (newest)").to_owned())
        .collect();
    assert_eq!(listed, pinned);
}

#[test]
fn no_subcommand_prints_usage_and_fails() {
    let out = portico(&[]);
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Usage: portico"), "{err}");
}

#[test]
fn unknown_subcommand_is_an_error_naming_it() {
    let out = portico(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("frobnicate"), "{err}");
}

/// Runs `portico` with `args`, feeding `input` on standard input.
fn portico_with_input(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running the portico binary");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("writing stdin");
    child.wait_with_output().expect("portico exits")
}

#[test]
fn check_decodes_a_valid_message() {
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let out = portico_with_input(&["check", "--type", "ClientRequest"], call);
    assert!(out.status.success(), "{out:?}");
    let printed: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("prints JSON");
    assert_eq!(printed, serde_json::from_str::<serde_json::Value>(call).expect("JSON"));
}

#[test]
fn check_reports_what_is_wrong() {
    let out = portico_with_input(&["check", "--type", "ContentBlock"], r#"{"type":"image","text":"hi"}"#);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid ContentBlock (2026-07-28)") && err.contains("ImageContent.data"),
        "{err}"
    );
    let out = portico_with_input(&["check", "--revision", "1999-01-01"], "{}");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown revision"),
        "{out:?}"
    );
    let out = portico_with_input(&["check", "--type", "NoSuchType"], "{}");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("NoSuchType"), "{out:?}");
    // An older revision's types are used when asked for.
    let init = r#"{"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#;
    let out = portico_with_input(&["check", "-r", "2024-11-05", "-t", "InitializeRequest", "-"], init);
    assert!(out.status.success(), "{out:?}");
}

/// Kills the child when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends one HTTP POST to `addr`'s `/mcp` and returns the whole response text.
fn post(addr: &str, headers: &[(&str, &str)], body: &str) -> String {
    post_to(addr, "/mcp", headers, body)
}

/// Sends one HTTP request to `addr`'s `path` and returns the whole response text.
fn post_to(addr: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("the server listens");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    response
}

#[test]
fn serve_everything_over_http_answers_both_generations() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["serve", "everything", "--http", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("portico starts");
    let stdout = child.stdout.take().expect("stdout");
    let _running = Running(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the address line");
    let addr = line
        .trim()
        .strip_prefix("serving MCP on http://")
        .and_then(|a| a.strip_suffix("/mcp"))
        .expect(&line)
        .to_string();

    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let response = post(
        &addr,
        &[("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", "tools/list")],
        body,
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("test_simple_text"), "{response}");

    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let response = post(&addr, &[], init);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("mcp-session-id:"),
        "a session starts: {response}"
    );
}

#[test]
fn serve_everything_over_stdio_answers_a_request() {
    use std::io::{BufRead, Write};
    let mut child = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["serve", "everything", "--stdio"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("portico starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let call = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"test_simple_text","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    writeln!(stdin, "{call}").expect("sent");
    drop(stdin);
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line).expect("an answer");
    let answer: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["result"]["content"][0]["type"], "text", "{answer}");
    drop(running);
}
