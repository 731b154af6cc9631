//! The instance walk: one pass over the JSON, element by element, against compiled profiles.
//! The FHIRPath of the current element is kept in one growing `String` (pushed and truncated),
//! so nothing is formatted unless a finding is made; so is its JSON Pointer from the root, which
//! names the node to the FHIRPath engine.
//!
//! This file holds the walker ([`Walk`]), where it is ([`Scope`], [`Host`]), what it visits
//! ([`Item`]) and the entry point ([`validate_root`]). The rules live beside it, one concern a
//! file, each adding methods to `Walk`:
//!
//! | file | owns |
//! |---|---|
//! | `resource.rs` | a resource: which profiles apply, `%rootResource`, contained resources (dom-3) |
//! | `element.rs` | elements: the properties of an object, cardinality, choice types, arrays, type profiles |
//! | `value.rs` | primitives and values: formats, `fixed[x]`, `pattern[x]`, min/max, maxLength |
//! | `binding.rs` | codes: Coding.system and display, bindings to value sets |
//! | `reference.rs` | references: their form, where they resolve, the target types allowed |
//! | `extension.rs` | extensions: definitions, contexts, unknown and example URLs |
//! | `bundle.rs` | Bundle rules (fullUrl, bdl-3, bdl-7) and the index references resolve against |
//! | `bundle_links.rs` | Bundle rules on links (relations by Bundle type) and search sets |
//! | `ids.rs` | element ids unique within a resource, contained resource ids unique |
//! | `slice.rs` | slicing: items assigned to slices, slice cardinality, closed and ordered rules |
//! | `discriminator.rs` | whether an item matches a slice (its discriminators) |
//! | `clean.rs` | the memo of clean subtrees: an element's value walked clean once is not walked again |
//! | `invariant.rs` | invariants: natively where possible, else through the engine |
//! | `pointer.rs` | JSON Pointers and what one validation prepares for the engine ([`Prep`]) |
//!
//! Invariants, as absences: no I/O (definitions come through the [`Validator`], loaded before),
//! no clock (`today` is given by the caller, [`Walk::today`]), no logging, and no finding quotes
//! an instance value. The root is converted for the engine at most once per validation
//! ([`Prep`]), and only when an invariant needs the engine; every engine call after that names
//! its nodes by pointer. A Bundle of n entries therefore costs O(n), never a conversion per
//! invariant.

mod binding;
mod bundle;
mod bundle_document;
mod bundle_links;
mod clean;
mod discriminator;
mod element;
mod extension;
mod ids;
mod invariant;
mod pointer;
mod reference;
mod resource;
mod slice;
mod value;

use std::sync::Arc;

use serde_json::Value;

use super::model::{ElemId, Profile};
use super::{Finding, Severity, Validator};
use std::cell::RefCell;

use crate::terminology::delegate::{TxAnswers, VsQuery};
use crate::validate::profile::json;
use bundle::BundleIndex;
pub(super) use clean::CleanMemo;
use pointer::Prep;

const MAX_DEPTH: usize = 64;

/// Where the walk is: the resource (for `%resource`, contained references), the root, the
/// enclosing Bundle and the fullUrl of the entry.
#[derive(Clone, Copy)]
struct Scope<'v> {
    pub resource: &'v Value,
    pub root: &'v Value,
    pub bundle: Option<&'v BundleIndex<'v>>,
    pub full_url: Option<&'v str>,
    /// Inside an entry of `bundle` (whose `full_url` may be absent).
    pub in_entry: bool,
    /// The entry's FHIRPath (`Bundle.entry[3]`): this many leading bytes of the walk's path.
    pub entry_len: usize,
    /// The resource holding this one (a contained resource's siblings resolve through it).
    pub container: Option<&'v Value>,
    /// `resource`'s JSON Pointer: this many leading bytes of the walk's pointer.
    pub res_ptr: usize,
    /// `root`'s JSON Pointer, likewise.
    pub root_ptr: usize,
}

/// The element holding an extension: its base path and type (for extension contexts).
#[derive(Clone, Copy)]
struct Host<'a> {
    pub path: &'a str,
    pub ty: &'a str,
}

/// One value of an element as the walk meets it: the element (`eid` in `prof`), the value and/or
/// its `_element` shadow, the FHIR type it is read as, where it is ([`Scope`]) and the element
/// holding it ([`Host`], for extension contexts). Passed by reference down the walk.
#[derive(Clone, Copy)]
struct Item<'a, 'v> {
    pub prof: &'a Arc<Profile>,
    pub eid: ElemId,
    /// `None` for a primitive given only by its `_element` (or a `null` in an array).
    pub value: Option<&'v Value>,
    pub shadow: Option<&'v Value>,
    pub ty: &'a str,
    pub scope: Scope<'v>,
    pub host: Host<'a>,
}

impl<'a, 'v> Item<'a, 'v> {
    /// `value` against the root element of `prof` (a resource, a datatype or extension profile).
    pub fn root(prof: &'a Arc<Profile>, value: &'v Value, ty: &'a str, scope: Scope<'v>, host: Host<'a>) -> Self {
        Item { prof, eid: 0, value: Some(value), shadow: None, ty, scope, host }
    }
}

struct Walk<'a> {
    pub v: &'a Validator,
    pub out: &'a mut Vec<Finding>,
    pub path: String,
    pub depth: usize,
    /// JSON Pointer of the current node from the root (when `ptr_ok`).
    pub ptr: String,
    /// False where the walk cannot name its node by pointer (a primitive's `_element`); the
    /// engine then converts the nodes per call.
    pub ptr_ok: bool,
    pub prep: &'a Prep<'a>,
    /// Today, in days since 1970-01-01 (UTC), from the caller: `minValueDuration` and
    /// `maxValueDuration` are relative to it. The walk never reads the clock.
    pub today: i64,
    /// Terminology servers' verdicts (prefetched), or where to note what to ask them.
    pub tx: TxView<'a>,
    /// Set when the walk reads beyond the current subtree (a reference, a resource, an
    /// invariant on `%resource`...): the subtree's verdict depends on where it sits, so it is
    /// not memoised as clean ([`clean`]).
    pub ctx: bool,
    /// Inside a value walked through the memo: its elements go through the memo too.
    pub memo_inner: bool,
}

/// What the walk has of terminology servers: their verdicts for Codings of systems not loaded
/// here and for bindings that cannot be expanded here (prefetched before the walk), and, in
/// the walk that only collects, where to note the bindings to ask about.
#[derive(Clone, Copy, Default)]
pub(super) struct TxView<'a> {
    pub answers: Option<&'a TxAnswers>,
    pub wanted: Option<&'a RefCell<Vec<VsQuery>>>,
}

/// Validates `resource` (the root) against its own profiles and `profiles`, the dates relative
/// to `today` (days since 1970-01-01, UTC).
pub(super) fn validate_root(v: &Validator, resource: &Value, profiles: &[&str], today: i64, tx: TxView<'_>, out: &mut Vec<Finding>) {
    // A root that is no resource (no `resourceType`) is located at `$`, as HL7's validator
    // locates it.
    let rt = json::at(resource, "resourceType").as_str().unwrap_or("$");
    let prep = Prep::new(resource);
    let mut w = Walk {
        v,
        out,
        path: String::with_capacity(128),
        depth: 0,
        ptr: String::with_capacity(64),
        ptr_ok: true,
        prep: &prep,
        today,
        tx,
        ctx: false,
        memo_inner: false,
    };
    w.path.push_str(rt);
    let extra: Vec<Arc<Profile>> = profiles
        .iter()
        .filter_map(|p| match v.profile(p) {
            Some(p) => Some(p),
            None => {
                w.report(Severity::Error, "not-found", format!("profile {p} is not known"));
                None
            }
        })
        .collect();
    let scope = Scope {
        resource,
        root: resource,
        bundle: None,
        full_url: None,
        in_entry: false,
        entry_len: 0,
        container: None,
        res_ptr: 0,
        root_ptr: 0,
    };
    w.resource(resource, &extra, scope);
}

impl<'a> Walk<'a> {
    pub fn report(&mut self, severity: Severity, code: &'static str, text: impl Into<String>) {
        self.out.push(Finding { severity, code, text: text.into(), expression: self.path.clone() });
    }

    fn push(&mut self, seg: &str, index: Option<usize>) -> usize {
        self.push_element(seg, None, index)
    }

    /// Appends an element's step to the FHIRPath: `.name`, then `.ofType(T)` for a choice
    /// element's type, else `[i]` for an item of a repeating element. Returns the length to
    /// truncate back to.
    fn push_element(&mut self, name: &str, choice_type: Option<&str>, index: Option<usize>) -> usize {
        let len = self.path.len();
        self.path.push('.');
        self.path.push_str(name);
        if let Some(t) = choice_type {
            self.path.push_str(".ofType(");
            self.path.push_str(t);
            self.path.push(')');
        } else if let Some(i) = index {
            self.path.push('[');
            push_decimal(&mut self.path, i);
            self.path.push(']');
        }
        len
    }
}

/// Appends `i` in decimal: what `write!(s, "{i}")` does, without the formatting machinery
/// (paths and pointers get an index for every item of every array walked; issue 17).
pub(super) fn push_decimal(s: &mut String, mut i: usize) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (i % 10) as u8;
        i /= 10;
        if i == 0 {
            break;
        }
    }
    s.extend(buf[at..].iter().map(|&b| char::from(b)));
}

#[cfg(test)]
#[test]
fn push_decimal_writes_as_display_does() {
    for i in [0, 7, 10, 99, 100, 12_345, usize::MAX] {
        let mut s = String::from("x");
        push_decimal(&mut s, i);
        assert_eq!(s, format!("x{i}"));
    }
}

/// What the walk's unit tests share: the validator on the shipped packages
/// (`conformance/packages`), loaded once, and the findings of one validation as text.
#[cfg(test)]
pub(super) mod testing {
    use std::sync::OnceLock;

    use serde_json::Value;

    use crate::validate::profile::{Validator, load};

    pub fn shipped() -> &'static Validator {
        static V: OnceLock<Validator> = OnceLock::new();
        V.get_or_init(|| {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/packages");
            load::load(&dir, &[], &[]).unwrap()
        })
    }

    /// `severity expression: text` of every finding of `resource` against base R4.
    pub fn findings(resource: Value) -> Vec<String> {
        shipped().validate(&resource, &[]).iter().map(|f| format!("{} {}: {}", f.severity.as_str(), f.expression, f.text)).collect()
    }
}
