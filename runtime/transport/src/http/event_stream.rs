//! Reading a `text/event-stream` body as it arrives — the one event-stream reader of the crate's
//! clients (Streamable HTTP responses and session streams, the legacy HTTP+SSE stream). It
//! interprets the stream as the HTML standard's event-stream parsing does:
//!
//! - a byte-order mark at the very start is dropped;
//! - lines end with CRLF, LF or CR (a CRLF split between two chunks is one line end);
//! - `field: value` drops one space after the colon; a line without a colon is a field with an
//!   empty value; lines starting with `:` are comments (keep-alives); unknown fields are ignored;
//! - `data:` lines join with LF; `event:` names the event, `message` when it names none;
//! - `id:` (without NUL) becomes the last event id when the event is dispatched, whether or not
//!   it has data (a priming event is an id alone);
//! - `retry:` takes decimal digits only;
//! - a blank line dispatches the event, and only an event with data is handed out; a partial
//!   event at the end of the stream is never dispatched.
//!
//! # Limits
//!
//! An event's data (its lines joined, without the last line end) may hold up to `max` bytes; a
//! single line may be longer than that by [`FIELD_ROOM`] (the field's name and separator), so a
//! message of exactly `max` bytes in one `data:` line is read. Past either limit the stream
//! cannot be read on safely: [`TooLarge`].

/// Room for a line's field name and separator beyond the data limit.
const FIELD_ROOM: usize = 64;

/// One dispatched event with data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// The `event:` name; `message` when the event names none.
    pub(crate) name: String,
    /// The data lines, joined with `\n`.
    pub(crate) data: String,
}

/// An event or a line exceeded the limit (the limit on data, in bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLarge(pub(crate) usize);

/// An incremental event-stream reader.
#[derive(Debug)]
pub(crate) struct Decoder {
    /// The bytes of the line being read (no line end in them).
    line: Vec<u8>,
    /// The previous chunk ended with CR: a LF starting this one ends no second line.
    after_cr: bool,
    /// No byte was read yet (a byte-order mark is dropped there), or only part of a mark.
    at_start: bool,
    data: String,
    name: String,
    id_buffer: Option<String>,
    /// The id of the last dispatched event (what `Last-Event-ID` sends).
    pub(crate) last_event_id: Option<String>,
    /// The last `retry:` value, in milliseconds.
    pub(crate) retry: Option<u64>,
    max: usize,
}

impl Decoder {
    /// A reader of events of at most `max` bytes of data, resuming after `last_event_id`.
    pub(crate) fn new(max: usize, last_event_id: Option<String>) -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            data: String::new(),
            name: String::new(),
            id_buffer: last_event_id.clone(),
            last_event_id,
            retry: None,
            max: max.max(1),
        }
    }

    /// The same, remembering the last `retry:` value (of the stream it resumes).
    pub(crate) fn retrying(mut self, retry: Option<u64>) -> Self {
        self.retry = retry;
        self
    }

    /// Reads `chunk`, appending the events it completes to `events`.
    pub(crate) fn push(&mut self, mut chunk: &[u8], events: &mut Vec<Event>) -> Result<(), TooLarge> {
        if self.at_start {
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            // The mark may come split across chunks: hold its first bytes back in `line`.
            self.line.extend_from_slice(chunk);
            if self.line.len() < BOM.len() && BOM.starts_with(&self.line) {
                return Ok(());
            }
            self.at_start = false;
            let held = std::mem::take(&mut self.line);
            let rest = held.strip_prefix(BOM).unwrap_or(&held);
            return self.push(rest, events);
        }
        if std::mem::replace(&mut self.after_cr, false)
            && let Some(rest) = chunk.strip_prefix(b"\n")
        {
            chunk = rest;
        }
        while let Some(end) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.extend_line(&chunk[..end])?;
            let line = std::mem::take(&mut self.line);
            self.line_end(&line, events)?;
            self.line = line;
            self.line.clear();
            let mut next = end + 1;
            if chunk[end] == b'\r' {
                match chunk.get(next) {
                    Some(b'\n') => next += 1,
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            chunk = &chunk[next..];
        }
        self.extend_line(chunk)
    }

    fn extend_line(&mut self, bytes: &[u8]) -> Result<(), TooLarge> {
        if self.line.len() + bytes.len() > self.max + FIELD_ROOM {
            return Err(TooLarge(self.max));
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn line_end(&mut self, line: &[u8], events: &mut Vec<Event>) -> Result<(), TooLarge> {
        if line.is_empty() {
            self.dispatch(events);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        match field {
            "data" => {
                // Each data line is stored with its LF; the last LF is not part of the event.
                if self.data.len() + value.len() > self.max {
                    return Err(TooLarge(self.max));
                }
                self.data.push_str(value);
                self.data.push('\n');
            }
            "event" => self.name = value.to_string(),
            "id" if !value.contains('\0') => self.id_buffer = Some(value.to_string()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, events: &mut Vec<Event>) {
        self.last_event_id.clone_from(&self.id_buffer);
        let name = std::mem::take(&mut self.name);
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        let name = if name.is_empty() { "message".to_string() } else { name };
        events.push(Event { name, data });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_with(max: usize, chunks: &[&[u8]]) -> (Vec<Event>, Decoder) {
        let mut decoder = Decoder::new(max, None);
        let mut events = Vec::new();
        for chunk in chunks {
            decoder.push(chunk, &mut events).expect("within the limit");
        }
        (events, decoder)
    }

    fn decode(chunks: &[&[u8]]) -> (Vec<Event>, Decoder) {
        decode_with(1024, chunks)
    }

    fn event(name: &str, data: &str) -> Event {
        Event {
            name: name.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_are_read_across_chunks_and_line_endings() {
        let (events, decoder) = decode(&[
            b"id: 1-0\nretry: 250\ndata: \n\n",
            b": keep-alive\n\nid: 1-1\r\ndata: {\"a\":",
            b"1}\r",
            b"\n\r\nid: 1-2\rdata: x\rdata: y\r\r",
            b"event: endpoint\ndata:/messages\n\n",
            b"da",
            b"ta: spl",
            b"it\n",
            b"\n",
        ]);
        assert_eq!(
            events,
            [
                event("message", ""),
                event("message", "{\"a\":1}"),
                event("message", "x\ny"),
                event("endpoint", "/messages"),
                event("message", "split"),
            ]
        );
        assert_eq!(decoder.last_event_id.as_deref(), Some("1-2"));
        assert_eq!(decoder.retry, Some(250));
    }

    #[test]
    fn data_lines_join_and_fields_without_colon_or_unknown_are_handled() {
        let (events, _) =
            decode(&[b"event: message\ndata: {\ndata:  \"a\": 1\ndata: }\n\ndata:{}\n\ndata\n\nfoo: bar\n\n"]);
        assert_eq!(
            events,
            [
                event("message", "{\n \"a\": 1\n}"),
                event("message", "{}"),
                event("message", "")
            ]
        );
    }

    #[test]
    fn an_id_counts_once_its_event_is_dispatched() {
        let (events, decoder) = decode(&[b"id: 7-0\ndata: \n\nid: 7-1\ndata: half"]);
        assert_eq!(events, [event("message", "")]);
        assert_eq!(decoder.last_event_id.as_deref(), Some("7-0"));
        let (_, decoder) = decode(&[b"retry: soon\nid: a\0b\n\n"]);
        assert_eq!((decoder.retry, decoder.last_event_id), (None, None));
        // Comments and events without data dispatch nothing (an id alone still counts).
        let (events, decoder) = decode(&[b":\n\n: keep-alive\n\nid: 7\nretry: 10\n\nevent: endpoint\n\ndata: x\n\n"]);
        assert_eq!(events, [event("message", "x")]);
        assert_eq!(decoder.last_event_id.as_deref(), Some("7"));
    }

    #[test]
    fn a_byte_order_mark_is_dropped_even_split_and_only_at_the_start() {
        let (events, _) = decode(&[b"\xEF\xBB", b"\xBFdata: x\n\ndata: partial\n"]);
        assert_eq!(events, [event("message", "x")]);
        let (events, _) = decode(&[b"\xEF", b"\xBB\xBFdata: y\n\n"]);
        assert_eq!(events, [event("message", "y")]);
        // Not a mark: the bytes are the start of the first line.
        let (events, _) = decode(&[b"\xEF", b"data: z\n\n"]);
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn data_of_exactly_the_limit_is_read_in_one_line_or_many() {
        let (events, _) = decode_with(8, &[b"data: 12345678\n\n"]);
        assert_eq!(events, [event("message", "12345678")]);
        let (events, _) = decode_with(8, &[b"data: 1234\ndata: 567\n\n"]);
        assert_eq!(events, [event("message", "1234\n567")]);
    }

    #[test]
    fn overlong_lines_and_events_are_refused() {
        let mut events = Vec::new();
        let mut decoder = Decoder::new(8, None);
        assert_eq!(decoder.push(b"data: 123456789\n", &mut events), Err(TooLarge(8)));
        let mut decoder = Decoder::new(8, None);
        assert_eq!(decoder.push(&[b'x'; 200], &mut events), Err(TooLarge(8)));
        let mut decoder = Decoder::new(8, None);
        assert_eq!(
            decoder.push(b"data: 12345\ndata: 12345\n", &mut events),
            Err(TooLarge(8))
        );
        let mut decoder = Decoder::new(8, None);
        assert_eq!(
            decoder.push(b"data:012\ndata:345\ndata:678\n", &mut events),
            Err(TooLarge(8))
        );
    }
}
