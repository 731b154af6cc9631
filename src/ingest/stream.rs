//! Reading records from a stream (a file, stdin) in constant memory, with the same items as
//! [`read_records`] on the same bytes: NDJSON is passed on a line at a time, unparsed (so that
//! the caller may parse lines on several threads, [`Unit::item`]); anything else (one document,
//! a JSON array, a single line, malformed input) is read whole and split by [`read_records`].
//!
//! The decision is the one [`read_records`] takes: the input is NDJSON when its first non-empty
//! line does not start an array, stands alone as a JSON value, and another non-empty line
//! follows. Input that is NDJSON so can never be one JSON document (the second line holds
//! something that is not JSON whitespace after the first value), so streaming it does not
//! change which items it yields.
//!
//! Knows nothing of FHIR or files: it reads any [`BufRead`].

use std::io::BufRead;

use super::reader::{Item, is_blank, ndjson_item, read_records, stands_alone, strip_bom};

/// One unit of input: an NDJSON line still to be parsed, or an item already read.
pub enum Unit {
    /// The `record`th non-empty line, at 1-based line `line_no`, without its line end.
    Line {
        bytes: Vec<u8>,
        record: usize,
        line_no: usize,
    },
    Item(Item),
}

impl Unit {
    /// The item: an NDJSON line parsed as [`read_records`] parses it.
    pub fn item(self, file: Option<&str>, max_depth: usize) -> Item {
        match self {
            Unit::Line { bytes, record, line_no } => ndjson_item(&bytes, record, line_no, file, max_depth),
            Unit::Item(item) => item,
        }
    }
}

impl std::fmt::Debug for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unit::Line { bytes, record, line_no } => write!(f, "Line(record {record}, line {line_no}, {} bytes)", bytes.len()),
            Unit::Item(item) => write!(f, "Item({:?})", item.source),
        }
    }
}

/// The units of one input, in order.
pub struct Stream<R> {
    reader: R,
    file: Option<String>,
    max_depth: usize,
    /// Units decided but not yet handed out.
    pending: std::collections::VecDeque<Unit>,
    /// NDJSON established: lines are handed out as read. `None` before the decision.
    lines: Option<Lines>,
    done: bool,
}

struct Lines {
    /// Non-empty lines handed out so far.
    records: usize,
    /// Lines read so far.
    line_no: usize,
}

impl<R: BufRead> Stream<R> {
    /// `file` names the origin in refusals (as in [`read_records`]).
    pub fn new(reader: R, file: Option<&str>, max_depth: usize) -> Self {
        Stream { reader, file: file.map(str::to_owned), max_depth, pending: Default::default(), lines: None, done: false }
    }

    /// The next line, without `\n`, and whether it had one; `None` at the end.
    fn line(&mut self) -> std::io::Result<Option<(Vec<u8>, bool)>> {
        let mut buf = Vec::new();
        if self.reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(None);
        }
        let ended = buf.last() == Some(&b'\n');
        if ended {
            buf.pop();
        }
        Ok(Some((buf, ended)))
    }

    /// Reads until the shape of the input is known: queues its first units.
    fn decide(&mut self) -> std::io::Result<()> {
        // Everything read so far, byte for byte (for reading the input whole after all).
        let mut head: Vec<u8> = Vec::new();
        let mut found: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut line_no = 0;
        while let Some((line, ended)) = self.line()? {
            line_no += 1;
            head.extend_from_slice(&line);
            if ended {
                head.push(b'\n');
            }
            // As read_records splits: after a byte order mark, the line without a final `\r`.
            let line = if line_no == 1 { strip_bom(&line) } else { &line[..] };
            let content = line.strip_suffix(b"\r").unwrap_or(line);
            if is_blank(content) {
                continue;
            }
            if found.is_empty() {
                let array = content.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
                if array || !stands_alone(content, self.max_depth) {
                    return self.whole(head);
                }
            }
            found.push((line_no, content.to_vec()));
            if found.len() == 2 {
                for (i, (n, bytes)) in found.into_iter().enumerate() {
                    self.pending.push_back(Unit::Line { bytes, record: i + 1, line_no: n });
                }
                self.lines = Some(Lines { records: 2, line_no });
                return Ok(());
            }
        }
        // The end, with fewer than two non-empty lines: one document (or none).
        self.whole(head)
    }

    /// Reads the rest and splits `head` + rest as one input.
    fn whole(&mut self, mut head: Vec<u8>) -> std::io::Result<()> {
        self.reader.read_to_end(&mut head)?;
        for item in read_records(&head, self.file.as_deref(), self.max_depth) {
            self.pending.push_back(Unit::Item(item));
        }
        self.done = true;
        Ok(())
    }
}

impl<R: BufRead> Iterator for Stream<R> {
    type Item = std::io::Result<Unit>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(u) = self.pending.pop_front() {
            return Some(Ok(u));
        }
        if self.done {
            return None;
        }
        if self.lines.is_none() {
            if let Err(e) = self.decide() {
                self.done = true;
                return Some(Err(e));
            }
            return self.next();
        }
        loop {
            let line = match self.line() {
                Ok(Some((l, _))) => l,
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            let lines = self.lines.as_mut()?;
            lines.line_no += 1;
            let content = line.strip_suffix(b"\r").unwrap_or(&line);
            if is_blank(content) {
                continue;
            }
            lines.records += 1;
            let bytes = content.to_vec();
            return Some(Ok(Unit::Line { bytes, record: lines.records, line_no: lines.line_no }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via_stream(bytes: &[u8]) -> Vec<String> {
        Stream::new(bytes, Some("f"), 8).map(|u| format!("{:?}", u.map(|u| u.item(Some("f"), 8)).map_err(|e| e.to_string()))).collect()
    }

    fn whole(bytes: &[u8]) -> Vec<String> {
        read_records(bytes, Some("f"), 8).into_iter().map(|i| format!("{:?}", Ok::<_, String>(i))).collect()
    }

    /// Every combination of a few kinds of lines, joined with and without a final line end:
    /// the stream yields what read_records yields on the same bytes.
    #[test]
    fn same_items_as_read_records() {
        let pieces: [&[u8]; 12] = [
            br#"{"a":1}"#,
            b"",
            b"  \r",
            br#"{"a":"#,
            b"[1,2]",
            br#"{"a":1,"a":2}"#,
            b"[[[[[[[[[[[1]]]]]]]]]]]",
            b"\xEF\xBB\xBF{\"b\":2}",
            b"{",
            b"}",
            b"\x0C",
            br#" "x" "#,
        ];
        let mut n = 0;
        for a in &pieces {
            for b in &pieces {
                for c in &pieces {
                    let mut s = [*a, *b, *c].join(&b"\n"[..]);
                    for end in [false, true] {
                        if end {
                            s.push(b'\n');
                        }
                        assert_eq!(via_stream(&s), whole(&s), "{:?}", String::from_utf8_lossy(&s));
                        n += 1;
                    }
                }
            }
        }
        assert_eq!(n, 12 * 12 * 12 * 2);
    }
}
