//! Splitting a body or a file into records: one JSON object, a JSON array of objects, or NDJSON.
//!
//! Nesting depth is measured on the raw bytes *before* parsing, so a hostile document of
//! millions of `[` costs one linear scan and a clear 400, not a stack overflow. Error messages
//! give positions (line, column) and the kind of syntax error, never the bytes around it.

use serde_json::Value;

use crate::error::{Issue, RejectKind, Rejection, SourceRef};

/// One record as read from the input, or the reason it could not be read.
#[derive(Debug)]
pub struct Item {
    pub source: SourceRef,
    pub value: Result<Value, Rejection>,
}

/// The deepest nesting of arrays and objects in `bytes`, ignoring brackets inside strings.
/// Stops counting once `limit` is exceeded.
pub fn nesting_depth(bytes: &[u8], limit: usize) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_str {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    max = depth;
                    if max > limit {
                        return max;
                    }
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn malformed(e: &serde_json::Error, line_offset: usize) -> Rejection {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of input",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "invalid data",
        serde_json::error::Category::Io => "read error",
    };
    Rejection::one(
        RejectKind::Malformed,
        Issue::new(
            "structure",
            format!(
                "malformed JSON: {what} at line {} column {}",
                e.line() + line_offset,
                e.column()
            ),
        ),
    )
}

fn too_deep(limit: usize) -> Rejection {
    Rejection::one(
        RejectKind::TooDeep,
        Issue::new("too-costly", format!("JSON nested deeper than {limit} levels")),
    )
}

/// The bytes without a UTF-8 byte order mark (files saved by some Windows editors have one;
/// JSON parsers refuse it).
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes)
}

/// Reads every record in `bytes`. `file` names the origin in rejections.
///
/// - a JSON array: each element is a record;
/// - one JSON value: one record;
/// - otherwise, when the first non-empty line is a complete JSON value on its own: NDJSON, each
///   non-empty line a record, a bad line rejected alone.
pub fn read_records(bytes: &[u8], file: Option<&str>, max_depth: usize) -> Vec<Item> {
    let bytes = strip_bom(bytes);
    let src = |record: Option<usize>, line: Option<usize>| SourceRef {
        file: file.map(str::to_owned),
        record,
        line,
    };
    let trimmed_start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    if trimmed_start == bytes.len() {
        return vec![Item {
            source: src(None, None),
            value: Err(Rejection::one(
                RejectKind::Malformed,
                Issue::new("required", "empty input: no record"),
            )),
        }];
    }
    if bytes[trimmed_start] == b'[' {
        // The array adds one level on top of each record's own depth.
        if nesting_depth(bytes, max_depth + 1) > max_depth + 1 {
            return vec![Item { source: src(None, None), value: Err(too_deep(max_depth)) }];
        }
        return match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| Item { source: src(Some(i + 1), None), value: Ok(v) })
                .collect(),
            Ok(_) => unreachable_shape(src(None, None)),
            Err(e) => vec![Item { source: src(None, None), value: Err(malformed(&e, 0)) }],
        };
    }
    if nesting_depth(bytes, max_depth) <= max_depth {
        if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
            return vec![Item { source: src(Some(1), None), value: Ok(v) }];
        }
    }
    // Not one document: NDJSON if the first non-empty line stands alone.
    let lines: Vec<(usize, &[u8])> = bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix(b"\r").unwrap_or(l)))
        .filter(|(_, l)| l.iter().any(|b| !b.is_ascii_whitespace()))
        .collect();
    let first_is_whole = lines
        .first()
        .map(|(_, l)| nesting_depth(l, max_depth) <= max_depth && serde_json::from_slice::<Value>(l).is_ok())
        .unwrap_or(false);
    if lines.len() < 2 || !first_is_whole {
        // A single (malformed or too deep) document: report it as such.
        if nesting_depth(bytes, max_depth) > max_depth {
            return vec![Item { source: src(None, None), value: Err(too_deep(max_depth)) }];
        }
        let e = match serde_json::from_slice::<Value>(bytes) {
            Err(e) => malformed(&e, 0),
            Ok(_) => Rejection::one(RejectKind::Malformed, Issue::new("structure", "unreadable input")),
        };
        return vec![Item { source: src(None, None), value: Err(e) }];
    }
    lines
        .into_iter()
        .enumerate()
        .map(|(i, (line_no, line))| {
            let value = if nesting_depth(line, max_depth) > max_depth {
                Err(too_deep(max_depth))
            } else {
                serde_json::from_slice::<Value>(line).map_err(|e| malformed(&e, line_no - 1))
            };
            Item { source: src(Some(i + 1), Some(line_no)), value }
        })
        .collect()
}

fn unreachable_shape(source: SourceRef) -> Vec<Item> {
    vec![Item {
        source,
        value: Err(Rejection::one(RejectKind::Malformed, Issue::new("structure", "expected a JSON array"))),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(nesting_depth(br#"{"a":"[[[[{{{{\"]]"}"#, 10), 1);
        assert_eq!(nesting_depth(b"[[[]]]", 10), 3);
    }

    #[test]
    fn shapes() {
        assert_eq!(read_records(br#"{"a":1}"#, None, 8).len(), 1);
        assert_eq!(read_records(br#"[{"a":1},{"a":2}]"#, None, 8).len(), 2);
        let nd = read_records(b"{\"a\":1}\n\n{\"a\":2}\r\n{bad\n", None, 8);
        assert_eq!(nd.len(), 3);
        assert!(nd[2].value.is_err());
        assert_eq!(nd[2].source.line, Some(4));
        let pretty_bad = read_records(b"{\n \"a\": 1,\n \"b\": \n}\n", None, 8);
        assert_eq!(pretty_bad.len(), 1);
        assert_eq!(pretty_bad[0].value.as_ref().err().map(|r| r.kind), Some(RejectKind::Malformed));
        let deep = "[".repeat(100_000);
        let d = read_records(deep.as_bytes(), None, 8);
        assert_eq!(d[0].value.as_ref().err().map(|r| r.kind), Some(RejectKind::TooDeep));
    }
}

