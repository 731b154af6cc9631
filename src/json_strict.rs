//! Strict JSON: finding duplicate keys in an object, which `serde_json::Value` silently
//! resolves (the last one wins), so `{"sex": "F", "sex": "M"}` would mean whatever the last
//! writer chose. Every reader of the gateway's input (records, `$validate`, `mhg validate`)
//! refuses such documents.
//!
//! The check is one linear scan of the bytes *after* serde_json has accepted them: the `Value`
//! is still built by serde_json itself (so `arbitrary_precision` and `preserve_order` behave as
//! everywhere else), and the scan only remembers the keys of the objects still open. An object's
//! keys are compared as slices of the input (decoded only when they hold an escape, so `"a"` and
//! `"\u0061"` are the same key); past a few keys a hash set keeps a hostile object of a million
//! keys linear.
//!
//! Knows nothing of records, FHIR or HTTP. Its answer is a JSON Pointer (RFC 6901) of each object
//! holding a duplicate, never the duplicated key: a key can be record data. The pointer is built
//! from the keys *leading to* that object, so a caller that may not show those either (an unknown
//! property's name) shortens it (see `ingest::schema::RecordSchema::known_prefix`).

use std::borrow::Cow;
use std::collections::HashSet;

/// Above this many keys an object's keys go into a hash set instead of a list.
const LINEAR_KEYS: usize = 16;

/// The keys seen so far in one open object.
#[derive(Default)]
struct Keys<'a> {
    list: Vec<Cow<'a, [u8]>>,
    set: Option<HashSet<Cow<'a, [u8]>>>,
}

impl<'a> Keys<'a> {
    /// Adds `key`; false when it was already there.
    fn insert(&mut self, key: Cow<'a, [u8]>) -> bool {
        if let Some(set) = &mut self.set {
            return set.insert(key);
        }
        if self.list.contains(&key) {
            return false;
        }
        self.list.push(key);
        if self.list.len() > LINEAR_KEYS {
            self.set = Some(std::mem::take(&mut self.list).into_iter().collect());
        }
        true
    }
}

enum Frame<'a> {
    Object {
        keys: Keys<'a>,
        /// The key whose value is being read (for the pointer of what lies below).
        current: Option<Cow<'a, [u8]>>,
        /// Whether the next string is a key.
        expect_key: bool,
        /// Already reported: an object is named once, however many keys repeat.
        reported: bool,
    },
    Array {
        index: usize,
    },
}

/// Pointers (RFC 6901) of every object in `bytes` that holds some key twice, in document order;
/// `""` is the top-level value. Meant for input serde_json has already accepted; on anything
/// else it never panics, and reports what it saw.
pub fn duplicate_keys(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => stack.push(Frame::Object { keys: Keys::default(), current: None, expect_key: true, reported: false }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { expect_key, .. }) => *expect_key = true,
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            b'"' => {
                let start = i + 1;
                let (end, escaped) = string_end(bytes, start);
                if matches!(stack.last(), Some(Frame::Object { expect_key: true, .. })) {
                    let key = decode(bytes, start, end, escaped);
                    let mut first_repeat = false;
                    if let Some(Frame::Object { keys, current, expect_key, reported }) = stack.last_mut() {
                        *expect_key = false;
                        if !keys.insert(key.clone()) && !*reported {
                            *reported = true;
                            first_repeat = true;
                        }
                        *current = Some(key);
                    }
                    if first_repeat {
                        out.push(pointer(&stack));
                    }
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Index of the closing quote of the string whose content starts at `start` (or the end of the
/// input), and whether the string holds an escape.
fn string_end(bytes: &[u8], start: usize) -> (usize, bool) {
    let (mut j, mut escaped) = (start, false);
    while j < bytes.len() {
        match bytes[j] {
            b'"' => return (j, escaped),
            b'\\' => {
                escaped = true;
                j += 2;
            }
            _ => j += 1,
        }
    }
    (bytes.len(), escaped)
}

/// The key's text: the input slice, or its decoded form when it holds an escape.
fn decode(bytes: &[u8], start: usize, end: usize, escaped: bool) -> Cow<'_, [u8]> {
    let raw = &bytes[start.min(end)..end];
    if !escaped {
        return Cow::Borrowed(raw);
    }
    let quoted = &bytes[start - 1..(end + 1).min(bytes.len())];
    match serde_json::from_slice::<String>(quoted) {
        Ok(s) => Cow::Owned(s.into_bytes()),
        Err(_) => Cow::Borrowed(raw),
    }
}

/// The pointer of the innermost open object (the last frame), from the keys and indexes of the
/// frames around it.
fn pointer(stack: &[Frame<'_>]) -> String {
    let mut p = String::new();
    for f in &stack[..stack.len().saturating_sub(1)] {
        p.push('/');
        match f {
            Frame::Object { current, .. } => {
                let key = current.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                p.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Frame::Array { index } => p.push_str(&index.to_string()),
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &[&str]) {
        assert!(serde_json::from_str::<serde_json::Value>(input).is_ok(), "test input is JSON: {input}");
        assert_eq!(duplicate_keys(input.as_bytes()), expected, "{input}");
    }

    #[test]
    fn finds_duplicates_by_pointer() {
        check(r#"{"a":1,"b":2}"#, &[]);
        check(r#"{"a":1,"a":2}"#, &[""]);
        check(r#"{"a":1,"a":2,"a":3,"b":1,"b":2}"#, &[""]);
        check(r#"{"person":{"sex":"F","names":[],"sex":"M"}}"#, &["/person"]);
        check(r#"[{"x":1},{"y":[{"k":1},{"k":1,"k":2}]}]"#, &["/1/y/1"]);
        check(r#"{"a/b":{"~":{"z":0,"z":0}}}"#, &["/a~1b/~0"]);
        check(r#"{"a":{"k":1,"k":2},"b":{"k":1,"k":2}}"#, &["/a", "/b"]);
        // The same key in sibling or nested objects is not a duplicate.
        check(r#"{"k":{"k":{"k":1}},"j":[{"k":1},{"k":2}]}"#, &[]);
    }

    #[test]
    fn keys_are_compared_decoded() {
        check(r#"{"a":1,"\u0061":2}"#, &[""]);
        check(r#"{"a\"b":1,"a\u0022b":2}"#, &[""]);
        check(r#"{"a\\":1,"a\\\\":2}"#, &[]);
    }

    #[test]
    fn strings_that_look_like_structure_are_values() {
        check(r#"{"a":"{\"a\":1,\"a\":2}","b":"a","c":"a"}"#, &[]);
        check(r#"{"a":["a","a"],"b":{"a":"b"}}"#, &[]);
        check(r#"{"a":1 , "b" : [ 1 , 2 ] , "a" : null}"#, &[""]);
    }

    #[test]
    fn many_keys_stay_linear_and_exact() {
        let keys: Vec<String> = (0..10_000).map(|i| format!("\"k{i}\":{i}")).collect();
        let ok = format!("{{{}}}", keys.join(","));
        check(&ok, &[]);
        let dup = format!("{{{},\"k9999\":0}}", keys.join(","));
        check(&dup, &[""]);
    }

    #[test]
    fn never_panics_on_broken_input() {
        for s in ["{\"a", "{\"a\\", "\"", "}}]]", "{\"a\":1,\"a", "[\"\\u00"] {
            let _ = duplicate_keys(s.as_bytes());
        }
    }
}
