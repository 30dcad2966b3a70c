//! Server-Sent Events as the WHATWG specification frames them: `event:`,
//! `data:` and `id:` lines, an empty line ending each event, `:` comments
//! (heartbeats) ignored.

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    pub event: String,
    pub data: String,
    pub id: Option<String>,
}

#[derive(Default)]
pub struct Parser {
    buffer: String,
    current: Event,
    has_data: bool,
}

impl Parser {
    /// Takes the next bytes of the stream; returns the events they complete.
    pub fn feed(&mut self, chunk: &str) -> Vec<Event> {
        self.buffer.push_str(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.find('\n') {
            let line: String = self.buffer.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                let event = std::mem::take(&mut self.current);
                if std::mem::take(&mut self.has_data) {
                    events.push(Event {
                        event: if event.event.is_empty() {
                            "message".into()
                        } else {
                            event.event
                        },
                        ..event
                    });
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.current.event = value.to_owned(),
                "data" => {
                    if self.has_data {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                    self.has_data = true;
                }
                "id" => self.current.id = Some(value.to_owned()),
                _ => {}
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_framed_across_chunks() {
        let mut parser = Parser::default();
        assert!(
            parser
                .feed(": heartbeat\n\nevent: environment\nid: 4")
                .is_empty()
        );
        let events = parser
            .feed("2\ndata: {\"name\":\"a\"}\n\nevent: deleted\r\ndata:{\"name\":\"b\"}\r\n\r\n");
        assert_eq!(
            events,
            vec![
                Event {
                    event: "environment".into(),
                    data: "{\"name\":\"a\"}".into(),
                    id: Some("42".into())
                },
                Event {
                    event: "deleted".into(),
                    data: "{\"name\":\"b\"}".into(),
                    id: None
                },
            ]
        );
        let events = parser.feed("data: one\ndata: two\n\n");
        assert_eq!(events[0].event, "message");
        assert_eq!(events[0].data, "one\ntwo");
    }
}
