//! Invariants answered without the FHIRPath engine: most constraints of R4 core and IPS are
//! boolean combinations of `path.exists()`, `path.empty()` and `path.hasValue()` over child
//! elements (`ips-pat-1`, `obs-6`, `qty-3`, `bdl-5`, `vs-2`...). Those are compiled here once per
//! constraint, against the element definitions (so `value` means `value[x]` only where it is a
//! choice), and evaluated on the JSON directly: no conversion, no context, about a tenth of a
//! microsecond instead of several.
//!
//! Anything outside that subset (functions with arguments, literals, comparisons, `%`
//! variables, steps through choice or primitive elements) does not compile and goes to the
//! engine. The subset has no empty results: each term is a boolean, so the logic is two-valued
//! and agrees with FHIRPath's three-valued logic on it.

use crate::validate::profile::json;
use crate::validate::profile::json::SmallGet;
use serde_json::Value;

/// A compiled invariant of the subset.
#[derive(Debug)]
pub enum Expr {
    Or(Box<Expr>, Box<Expr>),
    Xor(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Implies(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Exists(Path),
    Empty(Path),
    HasValue(Path),
}

/// Child steps from the focus; each step lists the JSON keys of the element (one, or one per
/// type of a choice) and their `_` shadows.
#[derive(Debug)]
pub struct Path(Vec<Step>);

#[derive(Debug)]
pub struct Step {
    keys: Vec<(String, String)>,
}

/// The JSON keys (main, shadow) of a child, and the child as an element further steps may go
/// through (`None` for a choice or a primitive).
pub type Child<'p> = (Vec<(String, String)>, Option<Box<dyn Elements<'p> + 'p>>);

/// What the compiler needs to know of an element: its children by name.
pub trait Elements<'p> {
    /// Child `name` of this element; `None` when there is no such child.
    fn child(&self, name: &str) -> Option<Child<'p>>;
}

impl Expr {
    /// Compiles `expr` against the focus element; `None` when it is outside the subset.
    pub fn compile<'p>(expr: &str, focus: &dyn Elements<'p>) -> Option<Expr> {
        let toks = tokenize(expr)?;
        let mut p = Parser { toks: &toks, at: 0, focus };
        let e = p.implies()?;
        (p.at == toks.len()).then_some(e)
    }

    /// For a constraint `A implies B` outside the subset whose `A` is inside it: `A`, which
    /// answers the whole when false (the engine is asked only when `A` holds). Such guards
    /// are common (`period.exists() implies period >= 0`), and this also keeps them away from
    /// the engine's misreading of a missing `period` beside a `periodUnit` as a choice.
    pub fn compile_guard<'p>(expr: &str, focus: &dyn Elements<'p>) -> Option<Expr> {
        Expr::compile(antecedent(expr)?, focus)
    }

    pub fn eval(&self, focus: &Value) -> bool {
        match self {
            Expr::Or(a, b) => a.eval(focus) || b.eval(focus),
            Expr::Xor(a, b) => a.eval(focus) != b.eval(focus),
            Expr::And(a, b) => a.eval(focus) && b.eval(focus),
            Expr::Implies(a, b) => !a.eval(focus) || b.eval(focus),
            Expr::Not(a) => !a.eval(focus),
            Expr::Exists(p) => p.count(focus, 2) > 0,
            Expr::Empty(p) => p.count(focus, 1) == 0,
            Expr::HasValue(p) => p.has_value(focus),
        }
    }
}

impl Path {
    /// How many elements the path reaches (counting stops at `limit`). A primitive present
    /// only as its `_element` (an extension) exists.
    fn count(&self, focus: &Value, limit: usize) -> usize {
        let mut n = 0;
        self.visit(focus, 0, &mut |main, shadow| {
            n += main.map_or(0, |m| usize::from(!m.is_null())).max(shadow.map_or(0, |s| usize::from(!s.is_null())));
            n < limit
        });
        n
    }

    /// One element, a primitive with a value.
    fn has_value(&self, focus: &Value) -> bool {
        let (mut n, mut valued) = (0, false);
        self.visit(focus, 0, &mut |main, shadow| {
            let here = main.is_some_and(|m| !m.is_null()) || shadow.is_some_and(|s| !s.is_null());
            if here {
                n += 1;
                valued = main.is_some_and(|m| m.is_string() || m.is_number() || m.is_boolean());
            }
            n < 2
        });
        n == 1 && valued
    }

    /// Calls `f(main, shadow)` for each element at the end of the path (array items paired
    /// with their shadows); stops when `f` returns false. Returns false when stopped.
    fn visit<'v>(&self, node: &'v Value, depth: usize, f: &mut dyn FnMut(Option<&'v Value>, Option<&'v Value>) -> bool) -> bool {
        let Some(step) = self.0.get(depth) else { return true };
        let Some(obj) = node.as_object() else { return true };
        let last = depth + 1 == self.0.len();
        for (k, s) in &step.keys {
            let (main, shadow) = (obj.get(k), obj.get(s));
            if main.is_none() && shadow.is_none() {
                continue;
            }
            let items = |v: Option<&'v Value>| -> &'v [Value] {
                match v {
                    Some(Value::Array(a)) => a,
                    Some(x) => std::slice::from_ref(x),
                    None => &[],
                }
            };
            let (ms, ss) = (items(main), items(shadow));
            for i in 0..ms.len().max(ss.len()) {
                let (m, sh) = (ms.get(i), ss.get(i));
                let go_on = if last { f(m, sh) } else { m.is_none_or(|m| self.visit(m, depth + 1, f)) };
                if !go_on {
                    return false;
                }
            }
        }
        true
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Dot,
    Open,
    Close,
}

fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            c if c.is_ascii_whitespace() => i += 1,
            b'.' => {
                out.push(Tok::Dot);
                i += 1;
            }
            b'(' => {
                out.push(Tok::Open);
                i += 1;
            }
            b')' => {
                out.push(Tok::Close);
                i += 1;
            }
            b'`' => {
                let end = s[i + 1..].find('`')? + i + 1;
                out.push(Tok::Ident(s[i + 1..end].to_owned()));
                i = end + 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push(Tok::Ident(s[start..i].to_owned()));
            }
            // Literals, operators, `%`, `$`, strings: outside the subset.
            _ => return None,
        }
    }
    Some(out)
}

/// `A` of `A implies B` when `implies` occurs once outside parentheses and strings.
fn antecedent(expr: &str) -> Option<&str> {
    let b = expr.as_bytes();
    let (mut depth, mut i, mut found) = (0i32, 0usize, None);
    while i < b.len() {
        match b[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            q @ (b'\'' | b'`' | b'"') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'i' if depth == 0
                && expr[i..].starts_with("implies")
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'.'))
                && b.get(i + 7).is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b'_')) =>
            {
                if found.is_some() {
                    return None;
                }
                found = Some(i);
                i += 7;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found.map(|at| expr[..at].trim())
}

struct Parser<'t, 'p> {
    toks: &'t [Tok],
    at: usize,
    focus: &'t dyn Elements<'p>,
}

impl<'p> Parser<'_, 'p> {
    fn keyword(&mut self, k: &str) -> bool {
        if matches!(self.toks.get(self.at), Some(Tok::Ident(w)) if w == k) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: &Tok) -> Option<()> {
        (self.toks.get(self.at) == Some(t)).then(|| self.at += 1)
    }

    // FHIRPath precedence, lowest first: implies; or, xor; and.
    fn implies(&mut self) -> Option<Expr> {
        let mut a = self.or()?;
        while self.keyword("implies") {
            a = Expr::Implies(Box::new(a), Box::new(self.or()?));
        }
        Some(a)
    }

    fn or(&mut self) -> Option<Expr> {
        let mut a = self.and()?;
        loop {
            if self.keyword("or") {
                a = Expr::Or(Box::new(a), Box::new(self.and()?));
            } else if self.keyword("xor") {
                a = Expr::Xor(Box::new(a), Box::new(self.and()?));
            } else {
                return Some(a);
            }
        }
    }

    fn and(&mut self) -> Option<Expr> {
        let mut a = self.term()?;
        while self.keyword("and") {
            a = Expr::And(Box::new(a), Box::new(self.term()?));
        }
        Some(a)
    }

    /// `( expr )` or `a.b.fn()`, then any number of `.not()`.
    fn term(&mut self) -> Option<Expr> {
        let mut e = if self.expect(&Tok::Open).is_some() {
            let e = self.implies()?;
            self.expect(&Tok::Close)?;
            e
        } else {
            self.call()?
        };
        while self.toks.get(self.at) == Some(&Tok::Dot) && self.toks.get(self.at + 1) == Some(&Tok::Ident("not".into())) {
            self.at += 2;
            self.expect(&Tok::Open)?;
            self.expect(&Tok::Close)?;
            e = Expr::Not(Box::new(e));
        }
        Some(e)
    }

    fn call(&mut self) -> Option<Expr> {
        let mut steps = Vec::new();
        let mut scope: Option<Box<dyn Elements<'p> + 'p>> = None;
        loop {
            let Some(Tok::Ident(name)) = self.toks.get(self.at) else { return None };
            self.at += 1;
            if self.toks.get(self.at) == Some(&Tok::Open) {
                self.at += 1;
                self.expect(&Tok::Close)?;
                if steps.is_empty() {
                    return None;
                }
                let path = Path(steps);
                return match name.as_str() {
                    "exists" => Some(Expr::Exists(path)),
                    "empty" => Some(Expr::Empty(path)),
                    "hasValue" => Some(Expr::HasValue(path)),
                    _ => None,
                };
            }
            if matches!(name.as_str(), "and" | "or" | "xor" | "implies" | "not" | "true" | "false") {
                return None;
            }
            let here: &dyn Elements<'p> = match &scope {
                Some(s) => s.as_ref(),
                None if steps.is_empty() => self.focus,
                // A step after an element that is a choice or primitive.
                None => return None,
            };
            let (keys, next) = here.child(name)?;
            steps.push(Step { keys });
            scope = next;
            self.expect(&Tok::Dot)?;
        }
    }
}

/// Invariants with a native form of their own (not in the subset), keyed by constraint key and
/// recognised by their expression: a profile that reuses a key with another expression goes to
/// the engine. `Some(verdict)` when answered.
pub fn by_key(key: &str, expr: &str, v: &Value, resource: &Value) -> Option<bool> {
    let known = match key {
        "ele-1" => expr.starts_with("hasValue() or (children().count() > id.count())"),
        "ext-1" => expr.starts_with("extension.exists() != value.exists()"),
        "dom-2" => expr == "contained.contained.empty()",
        "dom-3" => expr.starts_with("contained.where("),
        "dom-4" => expr.starts_with("contained.meta.versionId.empty()"),
        "dom-5" => expr == "contained.meta.security.empty()",
        "dom-6" => expr == "text.`div`.exists()",
        "ref-1" => expr.starts_with("reference.startsWith('#').not() or "),
        "bdl-8" => expr == "fullUrl.contains('/_history/').not()",
        "per-1" => expr == "start.hasValue().not() or end.hasValue().not() or (start <= end)",
        "org-1" => expr == "(identifier.count() + name.count()) > 0",
        "org-2" => expr == "where(use = 'home').empty()",
        // Consent: a patient, or no scope coding of the given code.
        "ppc-2" | "ppc-3" | "ppc-4" | "ppc-5" => consent_code(expr).is_some(),
        "obs-7" => expr == "value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty()",
        "bdl-4" => expr.starts_with("entry.all(response.exists() = (%resource.type = 'batch-response'"),
        k => k.starts_with("bdl-") && !matches!(k, "bdl-5" | "bdl-8" | "bdl-4"),
    };
    if !known {
        return None;
    }
    let obj = v.as_object();
    match key {
        // hasValue() or (children().count() > id.count()): empty objects are reported already.
        "ele-1" => Some(obj.is_none_or(|m| m.is_empty() || m.keys().any(|k| k != "id"))),
        "ext-1" => obj.map(|m| m.sget("extension").is_some() != m.keys().any(|k| k.starts_with("value"))),
        // Checked on the contained resources themselves (`Walk::orphans`).
        "dom-3" => Some(true),
        "dom-2" | "dom-4" | "dom-5" => obj.and_then(|m| m.sget("contained").is_none().then_some(true)),
        "dom-6" => obj.map(|m| m.sget("text").and_then(|t| t.sget("div")).is_some()),
        // Only a `#` reference looks into the root's `contained`: that case goes to the engine.
        "ref-1" => obj.and_then(|m| s(m, "reference").is_none_or(|r| !r.starts_with('#')).then_some(true)),
        "bdl-8" => obj.map(|m| s(m, "fullUrl").is_none_or(|u| !u.contains("/_history/"))),
        // `start <= end`: empty (ambiguous) fails, as HL7's validator evaluates it.
        "per-1" => obj.map(|m| match (s(m, "start"), s(m, "end")) {
            (Some(a), Some(b)) => order(a, b).is_some_and(|o| o != std::cmp::Ordering::Greater),
            _ => true,
        }),
        "org-1" => obj.map(|m| {
            m.sget("identifier").is_some_and(|i| i.as_array().is_none_or(|a| !a.is_empty()))
                || m.sget("name").is_some()
                || m.sget("_name").is_some()
        }),
        "org-2" => obj.map(|m| s(m, "use") != Some("home")),
        "ppc-2" | "ppc-3" | "ppc-4" | "ppc-5" => obj.map(|m| {
            let code = consent_code(expr).unwrap_or_default();
            m.sget("patient").is_some()
                || !m.sget("scope").and_then(|sc| sc.sget("coding")).and_then(Value::as_array).into_iter().flatten().any(|c| {
                    c.sget("system").and_then(Value::as_str) == Some("something") && c.sget("code").and_then(Value::as_str) == Some(code)
                })
        }),
        "obs-7" => obj.map(|m| {
            let has_value = m.keys().any(|k| k.len() > 5 && k.starts_with("value") && k.as_bytes()[5].is_ascii_uppercase());
            if !has_value {
                return true;
            }
            let own: Vec<&Value> = json::at(json::at(resource, "code"), "coding").as_array().into_iter().flatten().collect();
            !m.sget("component").and_then(Value::as_array).into_iter().flatten().any(|c| {
                json::at(json::at(c, "code"), "coding")
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|x| own.iter().any(|o| super::json::same(o, x)))
            })
        }),
        "bdl-4" => obj.map(|m| {
            let want = matches!(s(m, "type"), Some("batch-response" | "transaction-response" | "history"));
            m.sget("entry").and_then(Value::as_array).into_iter().flatten().all(|e| e.sget("response").is_some() == want)
        }),
        // Bundle rules done in `bundle_rules`.
        "bdl-3" | "bdl-7" => Some(true),
        "bdl-1" => obj.map(|m| m.sget("total").is_none() || matches!(s(m, "type"), Some("searchset" | "history"))),
        "bdl-2" => obj.map(|m| {
            s(m, "type") == Some("searchset")
                || m.sget("entry").and_then(Value::as_array).is_none_or(|es| es.iter().all(|e| e.sget("search").is_none()))
        }),
        "bdl-9" => obj.map(|m| {
            s(m, "type") != Some("document")
                || m.sget("identifier").is_some_and(|i| i.sget("system").is_some() && i.sget("value").is_some())
        }),
        "bdl-10" => obj.map(|m| s(m, "type") != Some("document") || m.sget("timestamp").is_some()),
        "bdl-11" => obj.map(|m| s(m, "type") != Some("document") || first_entry_type(m) == Some("Composition")),
        "bdl-12" => obj.map(|m| s(m, "type") != Some("message") || first_entry_type(m) == Some("MessageHeader")),
        _ => None,
    }
}

/// The code of R4's `ppc-2`..`ppc-5` (`patient.exists() or scope.coding.where(system='something'
/// and code='adr').exists().not()`; `something` is in R4 as published).
fn consent_code(expr: &str) -> Option<&str> {
    let rest = expr.strip_prefix("patient.exists() or scope.coding.where(system='something' and code='")?;
    let code = rest.strip_suffix("').exists().not()")?;
    (!code.contains('\'')).then_some(code)
}

/// FHIRPath's order of two dateTimes, as HL7's FHIRPathEngine compares them: two with times
/// in UTC (a time without a zone read as UTC), seconds and fractions as one precision;
/// otherwise the date components both have, and equal components at different precisions
/// are ambiguous (`None`: the comparison is empty). Unparseable values are ambiguous too
/// (the format check reports them).
fn order(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    match (instant(a), instant(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y),
        _ => {
            let (da, db) = (&a[..a.len().min(10)], &b[..b.len().min(10)]);
            let n = da.len().min(db.len());
            if !da.is_char_boundary(n) || !db.is_char_boundary(n) {
                return None;
            }
            match da[..n].cmp(&db[..n]) {
                std::cmp::Ordering::Equal if a.len() != b.len() => None,
                o => Some(o),
            }
        }
    }
}

/// Seconds since 1970 (UTC) of a dateTime with a time and a zone.
fn instant(v: &str) -> Option<f64> {
    let (date, time) = v.split_once('T')?;
    let num = |x: &str| -> Option<i64> { (!x.is_empty() && x.bytes().all(|c| c.is_ascii_digit())).then(|| x.parse().ok()).flatten() };
    let mut d = date.split('-');
    let (y, mo, da) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    let (clock, offset) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0)
    } else if !time.contains(['+', '-']) {
        (time, 0)
    } else {
        let i = time.rfind(['+', '-'])?;
        let (h, m) = time[i + 1..].split_once(':')?;
        let off = num(h)? * 3600 + num(m)? * 60;
        (&time[..i], if &time[i..i + 1] == "-" { -off } else { off })
    };
    let mut c = clock.splitn(3, ':');
    let (h, mi) = (num(c.next()?)?, num(c.next()?)?);
    let sec: f64 = c.next()?.parse().ok()?;
    let days = crate::calendar::days_from_civil(y, mo, da);
    Some((days * 86_400 + h * 3600 + mi * 60 - offset) as f64 + sec)
}

fn s<'a>(m: &'a serde_json::Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

fn first_entry_type(m: &serde_json::Map<String, Value>) -> Option<&str> {
    m.sget("entry")?.get(0)?.sget("resource")?.sget("resourceType")?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every name is a child; `value` is a choice (`valueString`, `valueQuantity`); names
    /// starting with `p` are primitives (no further steps).
    struct Any;
    impl Elements<'static> for Any {
        fn child(&self, name: &str) -> Option<Child<'static>> {
            if name == "value" {
                let keys = ["valueString", "valueQuantity"].iter().map(|k| (k.to_string(), format!("_{k}"))).collect();
                return Some((keys, None));
            }
            let next: Option<Box<dyn Elements<'static>>> = if name.starts_with('p') { None } else { Some(Box::new(Any)) };
            Some((vec![(name.to_owned(), format!("_{name}"))], next))
        }
    }

    fn eval(expr: &str, v: Value) -> Option<bool> {
        Expr::compile(expr, &Any).map(|e| e.eval(&v))
    }

    #[test]
    fn the_subset() {
        assert_eq!(eval("family.exists() or given.exists() or text.exists()", json!({"given": ["a"]})), Some(true));
        assert_eq!(eval("family.exists() or given.exists() or text.exists()", json!({"use": "x"})), Some(false));
        assert_eq!(
            eval("dataAbsentReason.empty() or value.empty()", json!({"valueQuantity": {}, "dataAbsentReason": {}})),
            Some(false)
        );
        assert_eq!(eval("dataAbsentReason.empty() or value.empty()", json!({"valueString": "x"})), Some(true));
        assert_eq!(
            eval(
                "component.exists() implies (component.value.exists() or component.dataAbsentReason.exists())",
                json!({"component": [{"code": {}}]})
            ),
            Some(false)
        );
        assert_eq!(eval("value.code.exists()", json!({})), None, "no step through a choice");
        assert_eq!(eval("(a.empty() and b.empty()) implies (c.exists() or value.exists())", json!({})), Some(false));
        assert_eq!(
            eval("(a.empty() and b.empty()) implies (c.exists() or value.exists())", json!({"a": [{}]})),
            Some(true)
        );
        assert_eq!(
            eval(
                "(num.empty() xor den.exists()) and (num.exists() or extension.exists())",
                json!({"num": {}, "den": {}})
            ),
            Some(true)
        );
        assert_eq!(eval("pstart.hasValue().not() or pend.hasValue().not()", json!({"pstart": "2020"})), Some(true));
        assert_eq!(
            eval("pstart.hasValue() and pend.hasValue()", json!({"pstart": "2020", "_pend": {"extension": []}})),
            Some(false)
        );
        // Shadow-only primitive exists.
        assert_eq!(eval("ptext.exists()", json!({"_ptext": {"extension": [{}]}})), Some(true));
        // per-1: instants in UTC, dates by their common components.
        let per = |a: &str, b: &str| {
            by_key(
                "per-1",
                "start.hasValue().not() or end.hasValue().not() or (start <= end)",
                &json!({"start": a, "end": b}),
                &json!({}),
            )
        };
        assert_eq!(per("2020-01-02", "2020-01-01"), Some(false));
        // Equal at the precision both have, different precisions: empty, and per-1 fails.
        assert_eq!(per("2020-01", "2020-01-01"), Some(false));
        assert_eq!(per("2023-06-21", "2023-06-21T06:20:00Z"), Some(false));
        assert_eq!(per("2020-01", "2020-02-01"), Some(true));
        assert_eq!(per("2020-01-01", "2020-01-01"), Some(true));
        assert_eq!(per("2020-01-01T10:00:00+02:00", "2020-01-01T09:00:00Z"), Some(true));
        assert_eq!(per("2020-01-01T10:00:00-02:00", "2020-01-01T09:00:00Z"), Some(false));
        assert_eq!(per("2020-01-01T09:00:00.5Z", "2020-01-01T09:00:00Z"), Some(false));
        assert_eq!(per("2019-12-31T23:00:00-05:00", "2020-01-01T03:00:00Z"), Some(false));
        assert_eq!(per("2020-01-03", "2020-01-02T10:00:00Z"), Some(false));
        // Outside the subset.
        assert_eq!(eval("start <= end", json!({})), None);
        assert_eq!(eval("a.where(b = 'x').empty()", json!({})), None);
        assert_eq!(eval("pname.given.exists()", json!({})), None);
        assert_eq!(eval("%resource.a.exists()", json!({})), None);
    }

    #[test]
    fn guards_of_implications() {
        assert_eq!(antecedent("period.exists() implies period >= 0"), Some("period.exists()"));
        assert_eq!(antecedent("(a implies b) and c"), None);
        assert_eq!(antecedent("a implies b implies c"), None);
        assert_eq!(antecedent("x = 'implies' or y"), None);
        assert_eq!(antecedent("impliesX.exists() implies a"), Some("impliesX.exists()"));
        assert_eq!(antecedent("a.implies"), None);
    }
}
