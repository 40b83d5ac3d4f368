//! Server-sent events, decoded incrementally from a byte stream: events end at a blank
//! line; `event:` names them, `data:` lines carry the payload (joined with `\n`), lines
//! starting with `:` are comments. Lines may end in `\n`, `\r\n` or `\r`.

/// One event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    pub event: Option<String>,
    pub data: String,
}

/// The most one event may hold; a provider sending more is broken.
pub const MAX_EVENT: usize = 4 * 1024 * 1024;

#[derive(Default)]
pub struct Decoder {
    line: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
    size: usize,
    /// The last byte was `\r` (a following `\n` belongs to the same line end).
    after_cr: bool,
}

impl Decoder {
    /// Feeds bytes; returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, String> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.after_cr && b == b'\n' {
                self.after_cr = false;
                continue;
            }
            self.after_cr = b == b'\r';
            if b == b'\n' || b == b'\r' {
                let line = String::from_utf8(std::mem::take(&mut self.line)).map_err(|_| "invalid UTF-8")?;
                if let Some(e) = self.line_done(&line) {
                    out.push(e);
                }
            } else {
                self.line.push(b);
                self.size += 1;
                if self.size > MAX_EVENT {
                    return Err(format!("an event larger than {MAX_EVENT} bytes"));
                }
            }
        }
        Ok(out)
    }

    fn line_done(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            self.size = 0;
            let event = self.event.take();
            if self.data.is_empty() && event.is_none() {
                return None;
            }
            return Some(Event { event, data: std::mem::take(&mut self.data).join("\n") });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => self.data.push(value.to_owned()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_anywhere_are_put_back_together() {
        let wire = b"event: ping\ndata: {\"a\":1}\n\n: keep-alive\r\ndata: x\r\ndata: y\r\n\r\ndata: [DONE]\n\n";
        for cut in 0..wire.len() {
            let mut d = Decoder::default();
            let mut got = d.push(&wire[..cut]).expect("a");
            got.extend(d.push(&wire[cut..]).expect("b"));
            assert_eq!(
                got,
                [
                    Event { event: Some("ping".into()), data: "{\"a\":1}".into() },
                    Event { event: None, data: "x\ny".into() },
                    Event { event: None, data: "[DONE]".into() },
                ]
            );
        }
    }
}
