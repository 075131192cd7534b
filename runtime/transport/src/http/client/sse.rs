//! Reading a `text/event-stream` body as it arrives, the way the HTML standard's event-stream
//! interpretation does: lines end with CRLF, LF or CR (a CRLF split between two chunks is one
//! line end); `data:` lines join with `\n`; a blank line dispatches; `id:` sets the last event
//! id when the event is dispatched (with or without data: a priming event is an id alone);
//! `retry:` takes decimal digits only; lines starting with `:` are comments (keep-alives).
//!
//! A line or event longer than the limit is an error: the stream cannot be read on safely.

/// One dispatched event with data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// The `event:` name; empty for the default (`message`).
    pub(crate) name: String,
    /// The data lines, joined with `\n`.
    pub(crate) data: String,
}

/// An incremental event-stream reader.
#[derive(Debug)]
pub(crate) struct Decoder {
    line: Vec<u8>,
    /// The previous chunk ended with CR: a LF starting this one ends no second line.
    after_cr: bool,
    data: String,
    name: String,
    id_buffer: Option<String>,
    /// The id of the last dispatched event (what `Last-Event-ID` sends).
    pub(crate) last_event_id: Option<String>,
    /// The last `retry:` value, in milliseconds.
    pub(crate) retry: Option<u64>,
    max: usize,
}

/// A line or an event exceeded the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLarge(pub(crate) usize);

impl Decoder {
    /// A reader of events of at most `max` bytes, resuming after `last_event_id`.
    pub(crate) fn new(max: usize, last_event_id: Option<String>) -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
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
    pub(crate) fn push(&mut self, chunk: &[u8], events: &mut Vec<Event>) -> Result<(), TooLarge> {
        for &byte in chunk {
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.line_end(&line, events)?;
                }
                _ => {
                    if self.line.len() >= self.max {
                        return Err(TooLarge(self.max));
                    }
                    self.line.push(byte);
                }
            }
        }
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
                if self.data.len() + value.len() + 1 > self.max {
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
        events.push(Event { name, data });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> (Vec<Event>, Decoder) {
        let mut decoder = Decoder::new(1024, None);
        let mut events = Vec::new();
        for chunk in chunks {
            decoder.push(chunk, &mut events).expect("within the limit");
        }
        (events, decoder)
    }

    fn event(data: &str) -> Event {
        Event {
            name: String::new(),
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
        ]);
        assert_eq!(
            events,
            [
                event(""),
                event("{\"a\":1}"),
                event("x\ny"),
                Event {
                    name: "endpoint".into(),
                    data: "/messages".into()
                }
            ]
        );
        assert_eq!(decoder.last_event_id.as_deref(), Some("1-2"));
        assert_eq!(decoder.retry, Some(250));
    }

    #[test]
    fn an_id_counts_once_its_event_is_dispatched() {
        let (events, decoder) = decode(&[b"id: 7-0\ndata: \n\nid: 7-1\ndata: half"]);
        assert_eq!(events, [event("")]);
        assert_eq!(decoder.last_event_id.as_deref(), Some("7-0"));
        let (_, decoder) = decode(&[b"retry: soon\nid: a\0b\n\n"]);
        assert_eq!((decoder.retry, decoder.last_event_id), (None, None));
    }

    #[test]
    fn overlong_lines_and_events_are_refused() {
        let mut decoder = Decoder::new(8, None);
        let mut events = Vec::new();
        assert_eq!(decoder.push(b"data: 0123456789", &mut events), Err(TooLarge(8)));
        let mut decoder = Decoder::new(8, None);
        assert_eq!(
            decoder.push(b"data:012\ndata:345\ndata:678\n", &mut events),
            Err(TooLarge(8))
        );
    }
}
