//! Splitting a body or a file into records: one JSON object, a JSON array of objects, or NDJSON.
//!
//! Nesting depth is measured on the raw bytes *before* parsing, so a hostile document of
//! millions of `[` costs one linear scan and a clear 400, not a stack overflow. Error messages
//! give positions (line, column) and the kind of syntax error, never the bytes around it.
//!
//! Refused here, each as one item, so that every caller (the HTTP routes, `mhg convert`) refuses
//! it the same way: input that holds no record (an empty body, only blank lines, `[]`), and a
//! record with a key twice in one object ([`crate::json_strict`]), named by the pointer of that
//! object, never by the key.

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
            format!("malformed JSON: {what} at line {} column {}", e.line() + line_offset, e.column()),
        ),
    )
}

fn too_deep(limit: usize) -> Rejection {
    Rejection::one(RejectKind::TooDeep, Issue::new("too-costly", format!("JSON nested deeper than {limit} levels")))
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
    let src = |record: Option<usize>, line: Option<usize>| SourceRef { file: file.map(str::to_owned), record, line };
    let trimmed_start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    if trimmed_start == bytes.len() {
        return vec![Item { source: src(None, None), value: Err(no_record()) }];
    }
    if bytes[trimmed_start] == b'[' {
        // The array adds one level on top of each record's own depth.
        if nesting_depth(bytes, max_depth + 1) > max_depth + 1 {
            return vec![Item { source: src(None, None), value: Err(too_deep(max_depth)) }];
        }
        return match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Array(items)) if items.is_empty() => vec![Item { source: src(None, None), value: Err(no_record()) }],
            Ok(Value::Array(items)) => {
                // Duplicates by element: `/3/person` is `/person` of the fourth record.
                let mut dups: Vec<Vec<String>> = vec![Vec::new(); items.len()];
                for p in crate::json_strict::duplicate_keys(bytes) {
                    let rest = p.strip_prefix('/').unwrap_or_default();
                    let (index, inner) = rest.split_once('/').map_or((rest, String::new()), |(i, r)| (i, format!("/{r}")));
                    if let Some(d) = index.parse::<usize>().ok().and_then(|i| dups.get_mut(i)) {
                        d.push(inner);
                    }
                }
                items
                    .into_iter()
                    .zip(dups)
                    .enumerate()
                    .map(|(i, (v, d))| Item { source: src(Some(i + 1), None), value: strict(v, d) })
                    .collect()
            }
            Ok(_) => unreachable_shape(src(None, None)),
            Err(e) => vec![Item { source: src(None, None), value: Err(malformed(&e, 0)) }],
        };
    }
    if nesting_depth(bytes, max_depth) <= max_depth {
        if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
            return vec![Item { source: src(Some(1), None), value: strict(v, crate::json_strict::duplicate_keys(bytes)) }];
        }
    }
    // Not one document: NDJSON if the first non-empty line stands alone.
    let lines: Vec<(usize, &[u8])> = bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix(b"\r").unwrap_or(l)))
        .filter(|(_, l)| !is_blank(l))
        .collect();
    let first_is_whole = lines.first().map(|(_, l)| stands_alone(l, max_depth)).unwrap_or(false);
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
    lines.into_iter().enumerate().map(|(i, (line_no, line))| ndjson_item(line, i + 1, line_no, file, max_depth)).collect()
}

/// One NDJSON line (without its line end) as an item: the `record`th non-empty line of `file`,
/// at 1-based line `line_no`. What [`read_records`] makes of each line of NDJSON input; also
/// used by [`super::stream`], which reads NDJSON a line at a time.
pub fn ndjson_item(line: &[u8], record: usize, line_no: usize, file: Option<&str>, max_depth: usize) -> Item {
    let value = if nesting_depth(line, max_depth) > max_depth {
        Err(too_deep(max_depth))
    } else {
        serde_json::from_slice::<Value>(line)
            .map_err(|e| malformed(&e, line_no - 1))
            .and_then(|v| strict(v, crate::json_strict::duplicate_keys(line)))
    };
    Item { source: SourceRef { file: file.map(str::to_owned), record: Some(record), line: Some(line_no) }, value }
}

/// Whether an NDJSON line is non-empty (holds something beyond ASCII whitespace).
pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| b.is_ascii_whitespace())
}

/// Whether the first non-empty line of input stands alone as a JSON value (within the depth
/// limit): what makes input NDJSON rather than one document.
pub fn stands_alone(line: &[u8], max_depth: usize) -> bool {
    nesting_depth(line, max_depth) <= max_depth && serde_json::from_slice::<Value>(line).is_ok()
}

/// The refusal of input that holds no record at all.
fn no_record() -> Rejection {
    Rejection::one(RejectKind::Malformed, Issue::new("required", "the request holds no record"))
}

/// `value`, unless some of its objects hold a key twice (`duplicates`: their pointers, `""` for
/// the record itself). The key is never named: it may be record data.
fn strict(value: Value, duplicates: Vec<String>) -> Result<Value, Rejection> {
    if duplicates.is_empty() {
        return Ok(value);
    }
    let issues = duplicates
        .into_iter()
        .map(|p| {
            if p.is_empty() {
                Issue::new("structure", "duplicate property: the record holds a property name twice")
            } else {
                Issue::new("structure", "duplicate property: this object holds a property name twice").at(p)
            }
        })
        .collect();
    Err(Rejection::new(RejectKind::Malformed, issues))
}

fn unreachable_shape(source: SourceRef) -> Vec<Item> {
    vec![Item { source, value: Err(Rejection::one(RejectKind::Malformed, Issue::new("structure", "expected a JSON array"))) }]
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
        let empty_kind = |b: &[u8]| {
            let items = read_records(b, None, 8);
            assert_eq!(items.len(), 1, "{:?}", String::from_utf8_lossy(b));
            items[0].value.as_ref().err().map(|r| (r.kind, r.issues[0].code))
        };
        for b in [&b""[..], b"  \n\r\n\n", b"[]", b" [ \n ] ", b"\xEF\xBB\xBF[]"] {
            assert_eq!(empty_kind(b), Some((RejectKind::Malformed, "required")));
        }
        let deep = "[".repeat(100_000);
        let d = read_records(deep.as_bytes(), None, 8);
        assert_eq!(d[0].value.as_ref().err().map(|r| r.kind), Some(RejectKind::TooDeep));
    }

    #[test]
    fn duplicate_keys_refuse_their_record_only() {
        let path = |i: &Item| i.value.as_ref().err().map(|r| r.issues.iter().map(|i| i.input_path.clone()).collect::<Vec<_>>());
        let one = read_records(br#"{"a":1,"person":{"sex":"F","sex":"M"}}"#, None, 8);
        assert_eq!(path(&one[0]), Some(vec![Some("/person".to_owned())]));
        assert_eq!(one[0].value.as_ref().err().map(|r| r.kind), Some(RejectKind::Malformed));
        let root = read_records(br#"{"a":1,"a":1}"#, None, 8);
        assert_eq!(path(&root[0]), Some(vec![None]));
        let arr = read_records(br#"[{"a":1},{"b":[{"c":1,"c":2}],"d":{"e":1,"e":1}},{"a":1,"a":2}]"#, None, 8);
        assert!(arr[0].value.is_ok());
        assert_eq!(path(&arr[1]), Some(vec![Some("/b/0".to_owned()), Some("/d".to_owned())]));
        assert_eq!(path(&arr[2]), Some(vec![None]));
        let nd = read_records(b"{\"a\":1}\n{\"x\":{\"a\":1,\"a\":1}}\n", None, 8);
        assert!(nd[0].value.is_ok());
        assert_eq!(path(&nd[1]), Some(vec![Some("/x".to_owned())]));
        let text = format!("{:?}", read_records(br#"{"Jane Doe":1,"Jane Doe":2}"#, None, 8));
        assert!(!text.contains("Jane"), "{text}");
    }
}
