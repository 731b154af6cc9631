//! Reading a document that is almost JSON the way the HL7 validator's own parser reads it
//! (its JSON5 mode: `org.hl7.fhir.utilities.json.parser.JsonParser`), so that `mhg validate`
//! names each departure from JSON at the FHIR path where it is, instead of refusing the whole
//! file as "not JSON". Only used once a strict parse has failed: valid JSON never comes here.
//!
//! Accepted, each reported as the HL7 validator reports it (`JSON_*` of its message catalogue)
//! and at the place it gives:
//! - comments (`// ...` to the end of the line, `/* ... */`): at the value read next after the
//!   comment (an object at its own path, a primitive at its property's path without index, an
//!   array of objects at the object holding it; an array of primitives is not reported, as in
//!   Java) — `JSON_COMMENTS_NOT_ALLOWED`, dropped when comments are allowed;
//! - a missing comma between an object's properties, at the object (`JSON_COMMA_MISSING`; a
//!   missing comma between array items is accepted silently, as in Java);
//! - an extra comma before `}` at the object, before `]` at the array (`JSON_COMMA_EXTRA`);
//! - a property name without quotes, at the object (`JSON_PROPERTY_NO_QUOTES`);
//! - a string value without quotes: of a property at the object, of an array item at the item
//!   (`JSON_PROPERTY_VALUE_NO_QUOTES`; the message names the property, never the value, which
//!   may be patient data).
//!
//! A key given twice keeps its first position and last value (as everywhere else here). Knows
//! nothing of FHIR beyond naming the root by its `resourceType`.

use serde_json::{Map, Number, Value};

/// One departure from JSON: where (a FHIR path) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure {
    pub path: String,
    pub message: String,
    /// A comment (allowed by `--allow-comments`); every other departure is always an error.
    pub comment: bool,
}

/// The document read leniently, with its departures from JSON in document order; `None`
/// when it cannot be read even so (or nests deeper than `max_depth`).
pub fn from_slice(bytes: &[u8], max_depth: usize) -> Option<(Value, Vec<Departure>)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut p = Parser { s: text.as_bytes(), text, i: 0, comments: 0, max_depth, found: Vec::new() };
    p.skip();
    let pending = std::mem::take(&mut p.comments);
    let mut at = Vec::new();
    let v = p.value(&mut at, 0)?;
    p.skip();
    if p.i != p.s.len() || !v.is_object() {
        return None;
    }
    let root = v.get("resourceType").and_then(Value::as_str).unwrap_or("$").to_owned();
    let mut out = Vec::new();
    for _ in 0..pending {
        out.push(Departure { path: root.clone(), message: "Comments are not allowed in JSON".into(), comment: true });
    }
    out.extend(p.found.into_iter().map(|(segs, message, comment)| Departure { path: render(&root, &segs), message, comment }));
    Some((v, out))
}

#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

fn render(root: &str, segs: &[Seg]) -> String {
    use std::fmt::Write;
    let mut s = root.to_owned();
    for g in segs {
        match g {
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Index(i) => {
                let _ = write!(s, "[{i}]");
            }
        }
    }
    s
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    /// Comments read and not yet attached to a value.
    comments: usize,
    max_depth: usize,
    found: Vec<(Vec<Seg>, String, bool)>,
}

/// How a value was written, for the departures reported where its holder is known.
struct Read {
    value: Value,
    unquoted: bool,
    /// Comments read just before the value.
    comments: usize,
}

impl Parser<'_> {
    /// Skips whitespace and comments, counting the comments.
    fn skip(&mut self) {
        loop {
            while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
            if self.s[self.i..].starts_with(b"//") {
                while self.i < self.s.len() && self.s[self.i] != b'\n' {
                    self.i += 1;
                }
                self.comments += 1;
            } else if self.s[self.i..].starts_with(b"/*") {
                match self.text[self.i + 2..].find("*/") {
                    Some(j) => self.i += 2 + j + 2,
                    None => self.i = self.s.len(),
                }
                self.comments += 1;
            } else {
                return;
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn note(&mut self, at: &[Seg], message: String, comment: bool) {
        self.found.push((at.to_vec(), message, comment));
    }

    /// A value at `at` (comments before it already skipped).
    fn value(&mut self, at: &mut Vec<Seg>, depth: usize) -> Option<Value> {
        Some(self.read(at, depth)?.value)
    }

    fn read(&mut self, at: &mut Vec<Seg>, depth: usize) -> Option<Read> {
        let comments = std::mem::take(&mut self.comments);
        if depth > self.max_depth {
            return None;
        }
        let (value, unquoted) = match self.peek()? {
            b'{' => (self.object(at, depth, comments)?, false),
            b'[' => (self.array(at, depth)?, false),
            b'"' => (Value::String(self.string()?), false),
            _ => self.bare()?,
        };
        Some(Read { value, unquoted, comments })
    }

    /// A quoted string, decoded as JSON decodes it.
    fn string(&mut self) -> Option<String> {
        let start = self.i;
        self.i += 1;
        loop {
            match self.peek()? {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    break;
                }
                _ => self.i += 1,
            }
        }
        serde_json::from_str(self.text.get(start..self.i)?).ok()
    }

    /// A word without quotes: a literal, a number, or (JSON5) a string.
    fn bare(&mut self) -> Option<(Value, bool)> {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace() || matches!(c, b',' | b':' | b'{' | b'}' | b'[' | b']' | b'"') || self.s[self.i..].starts_with(b"//")
            {
                break;
            }
            self.i += 1;
        }
        let word = &self.text[start..self.i];
        Some(match word {
            "" => return None,
            "true" => (Value::Bool(true), false),
            "false" => (Value::Bool(false), false),
            "null" => (Value::Null, false),
            w if w.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => match w.parse::<Number>() {
                Ok(n) => (Value::Number(n), false),
                Err(_) => (Value::String(w.to_owned()), true),
            },
            w => (Value::String(w.to_owned()), true),
        })
    }

    fn object(&mut self, at: &mut Vec<Seg>, depth: usize, comments: usize) -> Option<Value> {
        for _ in 0..comments {
            self.note(at, "Comments are not allowed in JSON".into(), true);
        }
        self.i += 1;
        let mut entries: Vec<(String, Value)> = Vec::new();
        let mut comma = true;
        let mut first = true;
        loop {
            self.skip();
            match self.peek()? {
                b'}' => {
                    self.i += 1;
                    if comma && !first {
                        self.note(at, "There is an extra comma at the end of the Object in the JSON".into(), false);
                    }
                    break;
                }
                b',' => {
                    self.i += 1;
                    comma = true;
                    continue;
                }
                _ => {}
            }
            if !comma {
                self.note(at, "A Comma is missing in the JSON".into(), false);
            }
            let (name, quoted) = match self.peek()? {
                b'"' => (self.string()?, true),
                _ => match self.bare()? {
                    (Value::String(s), true) => (s, false),
                    _ => return None,
                },
            };
            if !quoted {
                self.note(at, format!("The JSON property '{name}' has no quotes around the name of the property"), false);
            }
            self.skip();
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            self.skip();
            at.push(Seg::Key(name.clone()));
            let r = self.read(at, depth + 1)?;
            at.pop();
            self.attach(at, &name, &r);
            if r.unquoted && r.value.is_string() {
                self.note(at, format!("The JSON property '{name}' has no quotes around the value of the property"), false);
            }
            match entries.iter_mut().find(|(k, _)| *k == name) {
                Some(e) => e.1 = r.value,
                None => entries.push((name, r.value)),
            }
            first = false;
            comma = false;
            self.skip();
            if self.peek() == Some(b',') {
                self.i += 1;
                comma = true;
            }
        }
        let mut m = Map::with_capacity(entries.len());
        for (k, v) in entries {
            m.insert(k, v);
        }
        Some(Value::Object(m))
    }

    /// Comments before property `name`'s value, where Java reports them: an object's own at
    /// the object (done when it was read), an array of objects' at the object holding it, a
    /// primitive's at its property; an array of primitives' are not reported.
    fn attach(&mut self, at: &[Seg], name: &str, r: &Read) {
        match &r.value {
            Value::Object(_) => {}
            Value::Array(a) if a.first().is_some_and(Value::is_object) => {
                for _ in 0..r.comments {
                    self.note(at, "Comments are not allowed in JSON".into(), true);
                }
            }
            Value::Array(_) => {}
            _ => {
                let mut p = at.to_vec();
                p.push(Seg::Key(name.to_owned()));
                for _ in 0..r.comments {
                    self.note(&p, "Comments are not allowed in JSON".into(), true);
                }
            }
        }
    }

    fn array(&mut self, at: &mut Vec<Seg>, depth: usize) -> Option<Value> {
        self.i += 1;
        let mut items = Vec::new();
        let mut comma = false;
        loop {
            self.skip();
            match self.peek()? {
                b']' => {
                    self.i += 1;
                    if comma {
                        self.note(at, "There is an extra comma at the end of the Array in the JSON".into(), false);
                    }
                    break;
                }
                b',' => {
                    self.i += 1;
                    comma = true;
                    continue;
                }
                _ => {}
            }
            at.push(Seg::Index(items.len()));
            let r = self.read(at, depth + 1)?;
            if r.unquoted && r.value.is_string() {
                self.note(at, "The JSON property 'item' has no quotes around the value of the property".into(), false);
            }
            at.pop();
            if !r.value.is_object() && !r.value.is_array() && r.comments > 0 {
                // A primitive item's comments: at the property, without index.
                for _ in 0..r.comments {
                    self.note(at, "Comments are not allowed in JSON".into(), true);
                }
            }
            items.push(r.value);
            comma = false;
        }
        Some(Value::Array(items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn departures(text: &str) -> Vec<(String, String)> {
        from_slice(text.as_bytes(), 64).expect("read").1.into_iter().map(|d| (d.path, d.message)).collect()
    }

    #[test]
    fn departures_are_named_where_the_hl7_validator_names_them() {
        let d = departures(
            "// c\n{\"resourceType\": \"Patient\", // c2\n \"id\": \"x\", \"name\": [{\"family\": \"F\" // c3\n}], \"gender\": \"female\"}",
        );
        let paths: Vec<&str> = d.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["Patient", "Patient.id", "Patient.gender"]);
        let d = departures(
            "{\"resourceType\": \"Patient\", \"name\": [{\"family\": \"F\" \"given\": [\"A\" \"B\",]}], \"address\": [{\"city\": \"C\",}]}",
        );
        assert_eq!(
            d,
            [
                ("Patient.name[0]".to_owned(), "A Comma is missing in the JSON".to_owned()),
                (
                    "Patient.name[0].given".to_owned(),
                    "There is an extra comma at the end of the Array in the JSON".to_owned()
                ),
                (
                    "Patient.address[0]".to_owned(),
                    "There is an extra comma at the end of the Object in the JSON".to_owned()
                ),
            ]
        );
        let d = departures("{resourceType: \"Patient\", \"name\": [{\"given\": [Sarah], \"family\": Smith}]}");
        let paths: Vec<&str> = d.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["Patient", "Patient.name[0].given[0]", "Patient.name[0]"]);
        assert!(
            d.iter().all(|(_, m)| !m.contains("Sarah") && !m.contains("Smith")),
            "values are not repeated: {d:?}"
        );
    }

    #[test]
    fn the_value_is_the_one_json_would_give() {
        let (v, d) = from_slice(
            b"{\"resourceType\": \"Observation\", \"valueQuantity\": {\"value\": 1.50, \"unit\": \"\\u00e9\"}, \"x\": [true, null, -2e3],}",
            64,
        )
        .unwrap();
        assert_eq!(v, serde_json::from_str::<Value>("{\"resourceType\": \"Observation\", \"valueQuantity\": {\"value\": 1.50, \"unit\": \"\\u00e9\"}, \"x\": [true, null, -2e3]}").unwrap());
        assert_eq!(d.len(), 1);
        assert!(from_slice(b"{\"a\": }", 64).is_none());
        assert!(from_slice(b"[1]", 64).is_none());
        assert!(from_slice(b"{\"a\": [[[[1]]]]}", 3).is_none());
    }
}
