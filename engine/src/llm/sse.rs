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
    /// The start of a line whose end has not come yet.
    line: Vec<u8>,
    event: Option<String>,
    /// The `data` lines so far, joined with `\n`.
    data: String,
    has_data: bool,
    size: usize,
    /// The last byte was `\r` (a following `\n` belongs to the same line end).
    after_cr: bool,
}

impl Decoder {
    /// Feeds bytes; returns the events they complete. Whole lines are read in place; only
    /// a line cut by the end of `bytes` is copied.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, String> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            if std::mem::take(&mut self.after_cr) && rest[0] == b'\n' {
                rest = &rest[1..];
                continue;
            }
            let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                self.grow(rest.len())?;
                self.line.extend_from_slice(rest);
                break;
            };
            self.grow(end)?;
            self.after_cr = rest[end] == b'\r';
            let ev = if self.line.is_empty() {
                self.line_done(std::str::from_utf8(&rest[..end]).map_err(|_| "invalid UTF-8")?)
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&rest[..end]);
                let ev = self.line_done(std::str::from_utf8(&line).map_err(|_| "invalid UTF-8")?);
                line.clear();
                self.line = line;
                ev
            };
            out.extend(ev);
            rest = &rest[end + 1..];
        }
        Ok(out)
    }

    fn grow(&mut self, by: usize) -> Result<(), String> {
        self.size += by;
        if self.size > MAX_EVENT {
            return Err(format!("an event larger than {MAX_EVENT} bytes"));
        }
        Ok(())
    }

    fn line_done(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            self.size = 0;
            let event = self.event.take();
            if !std::mem::take(&mut self.has_data) && event.is_none() {
                return None;
            }
            return Some(Event { event, data: std::mem::take(&mut self.data) });
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
            "data" => {
                if std::mem::replace(&mut self.has_data, true) {
                    self.data.push('\n');
                }
                self.data.push_str(value);
            }
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
