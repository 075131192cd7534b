//! Reading a `text/event-stream` as the client of the legacy transport needs it: named events
//! with their data, bounded in size, split as the WHATWG HTML standard's event-stream parsing
//! says (lines end in CRLF, LF or CR; `field: value` with one space dropped; `data` lines
//! joined with LF; comments and unknown fields ignored; an event dispatched at a blank line,
//! and only when it has data; a partial event at the end of the stream dropped).

use std::collections::VecDeque;
use std::time::Duration;

/// One event: its name (`message` when it names none) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) name: String,
    pub(crate) data: String,
}

/// Room for a line's field name and separator beyond the data limit.
const FIELD_ROOM: usize = 64;

/// Why reading events stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The connection failed.
    #[error("reading the event stream failed: {0}")]
    Http(#[from] reqwest::Error),
    /// An event is larger than the limit.
    #[error("an event is larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// Nothing came (not even a keep-alive comment) for the read timeout.
    #[error("nothing came on the event stream for {0:?}")]
    Idle(Duration),
}

/// The event-stream parser: bytes in, events out.
#[derive(Debug)]
pub(crate) struct Parser {
    /// Bytes not yet split into lines.
    pending: Vec<u8>,
    /// The previous chunk ended in CR: an LF starting this one belongs to it.
    after_cr: bool,
    /// How much of `pending` was looked at already (it holds no line end).
    scanned: usize,
    /// At the start of the stream (a byte-order mark is dropped there).
    at_start: bool,
    name: String,
    data: String,
    max: usize,
    ready: VecDeque<Event>,
}

impl Parser {
    /// A parser accepting events whose data holds at most `max` bytes.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            pending: Vec::new(),
            after_cr: false,
            scanned: 0,
            at_start: true,
            name: String::new(),
            data: String::new(),
            max,
            ready: VecDeque::new(),
        }
    }

    /// The next complete event, if one is ready.
    pub(crate) fn next_event(&mut self) -> Option<Event> {
        self.ready.pop_front()
    }

    /// Takes a chunk of the stream.
    pub(crate) fn push(&mut self, mut chunk: &[u8]) -> Result<(), ReadError> {
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        self.pending.extend_from_slice(chunk);
        if self.at_start {
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            if self.pending.len() < BOM.len() && BOM.starts_with(&self.pending) {
                return Ok(());
            }
            self.at_start = false;
            if self.pending.starts_with(BOM) {
                self.pending.drain(..BOM.len());
            }
        }
        let mut start = 0;
        // What was scanned before holds no line end: only the new bytes are looked at.
        let mut i = self.scanned;
        while i < self.pending.len() {
            match self.pending[i] {
                b'\n' => {
                    self.line(start, i);
                    start = i + 1;
                }
                b'\r' => {
                    self.line(start, i);
                    if i + 1 == self.pending.len() {
                        self.after_cr = true;
                    } else if self.pending[i + 1] == b'\n' {
                        i += 1;
                    }
                    start = i + 1;
                }
                _ => {}
            }
            // `data` ends each of its lines with LF; the last one is not part of the event.
            if self.data.len().saturating_sub(1) > self.max {
                return Err(ReadError::TooLarge(self.max));
            }
            i += 1;
        }
        self.pending.drain(..start);
        self.scanned = self.pending.len();
        if self.pending.len() > self.max + FIELD_ROOM {
            return Err(ReadError::TooLarge(self.max));
        }
        Ok(())
    }

    /// Handles the line `pending[start..end]`.
    fn line(&mut self, start: usize, end: usize) {
        let line = String::from_utf8_lossy(&self.pending[start..end]).into_owned();
        if line.is_empty() {
            self.dispatch();
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.name = value.to_string(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            // `id` and `retry` serve reconnection, which the legacy transport does not do.
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        let name = std::mem::take(&mut self.name);
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        let name = if name.is_empty() { "message".to_string() } else { name };
        self.ready.push_back(Event { name, data });
    }
}

/// Events read off a streaming HTTP response.
pub(crate) struct Events {
    response: reqwest::Response,
    parser: Parser,
    idle: Option<Duration>,
}

impl Events {
    pub(crate) fn new(response: reqwest::Response, max: usize, idle: Option<Duration>) -> Self {
        Self {
            response,
            parser: Parser::new(max),
            idle,
        }
    }

    /// The next event; `None` at the end of the stream.
    pub(crate) async fn next(&mut self) -> Result<Option<Event>, ReadError> {
        loop {
            if let Some(event) = self.parser.next_event() {
                return Ok(Some(event));
            }
            let chunk = match self.idle {
                Some(idle) => tokio::time::timeout(idle, self.response.chunk())
                    .await
                    .map_err(|_| ReadError::Idle(idle))??,
                None => self.response.chunk().await?,
            };
            match chunk {
                Some(chunk) => self.parser.push(&chunk)?,
                None => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&[u8]]) -> Vec<(String, String)> {
        let mut parser = Parser::new(1024);
        let mut out = Vec::new();
        for chunk in chunks {
            parser.push(chunk).expect("within the limit");
            while let Some(e) = parser.next_event() {
                out.push((e.name, e.data));
            }
        }
        out
    }

    fn pair(name: &str, data: &str) -> (String, String) {
        (name.into(), data.into())
    }

    #[test]
    fn events_are_named_and_their_data_lines_joined() {
        assert_eq!(
            events(&[b"event: endpoint\ndata: /messages?sessionId=ab\n\nevent: message\ndata: {\ndata:  \"a\": 1\ndata: }\n\n"]),
            [pair("endpoint", "/messages?sessionId=ab"), pair("message", "{\n \"a\": 1\n}")]
        );
        // No `event` field: a `message`; no space after the colon; a field without a colon.
        assert_eq!(
            events(&[b"data:{}\n\ndata\n\n"]),
            [pair("message", "{}"), pair("message", "")]
        );
    }

    #[test]
    fn comments_ids_and_events_without_data_dispatch_nothing() {
        assert_eq!(
            events(&[b":\n\n: keep-alive\n\nid: 7\nretry: 10\n\nevent: endpoint\n\ndata: x\n\n"]),
            [pair("message", "x")]
        );
    }

    #[test]
    fn line_ends_of_every_kind_even_split_across_chunks() {
        assert_eq!(
            events(&[
                b"event: a\r\ndata: 1\r\n\r",
                b"\nevent: b\rdata: 2\r\r",
                b"data: 3\n",
                b"\n"
            ]),
            [pair("a", "1"), pair("b", "2"), pair("message", "3")]
        );
        assert_eq!(events(&[b"da", b"ta: spl", b"it\n", b"\n"]), [pair("message", "split")]);
    }

    #[test]
    fn a_byte_order_mark_is_dropped_and_a_partial_event_is_not_dispatched() {
        assert_eq!(
            events(&[b"\xEF\xBB", b"\xBFdata: x\n\ndata: partial\n"]),
            [pair("message", "x")]
        );
    }

    #[test]
    fn events_larger_than_the_limit_are_refused() {
        let mut parser = Parser::new(8);
        assert!(parser.push(b"data: 12345678\n\n").is_ok());
        assert!(matches!(parser.push(b"data: 123456789\n"), Err(ReadError::TooLarge(8))));
        let mut parser = Parser::new(8);
        assert!(matches!(parser.push(&[b'x'; 200]), Err(ReadError::TooLarge(8))));
        let mut parser = Parser::new(8);
        assert!(matches!(
            parser.push(b"data: 12345\ndata: 12345\n"),
            Err(ReadError::TooLarge(8))
        ));
    }
}
