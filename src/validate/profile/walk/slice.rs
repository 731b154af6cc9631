//! Slicing: each item of a sliced element is assigned to the first slice it matches
//! (discriminators evaluated by `discriminator.rs`), then slice
//! cardinality, overlapping slices, prohibited slices, closed slicing, `ordered` and
//! `openAtEnd` are checked. The items are then walked against their slices by `element.rs`.
//!
//! No I/O, no clock; findings name slices by name, never instance values.

use std::sync::Arc;

use serde_json::Value;

use super::discriminator;
use super::{Scope, Walk};
use crate::validate::profile::Severity;
use crate::validate::profile::model::{ElemId, Profile, Rules};

impl Walk<'_> {
    /// Assigns items to slices and checks slice cardinality, closed and ordered rules.
    pub(super) fn slices<'v>(
        &mut self,
        cp: &Arc<Profile>,
        c: ElemId,
        items: &[(Option<&'v Value>, Option<&'v Value>)],
        ty: &str,
        scope: Scope<'v>,
    ) -> Vec<Option<ElemId>> {
        let ce = cp.elem(c);
        let mut assigned = Vec::with_capacity(items.len());
        let mut counts = vec![0u32; ce.slices.len()];
        let mut last_slice = 0usize;
        let mut seen_unmatched = false;
        // Slices must not overlap: an item matching two is an error (it is counted in the
        // first). Looked for only where matching is cheap (no `profile` discriminator, which
        // validates the item against each slice's profile).
        let cheap = ce.slicing.as_ref().is_some_and(|s| s.discriminators.iter().all(|d| d.kind != "profile"));
        for (i, (m, _)) in items.iter().enumerate() {
            let mut hit = None;
            let mut also = Vec::new();
            if let Some(v) = m {
                for (si, &s) in ce.slices.iter().enumerate() {
                    if discriminator::matches(self, cp, c, s, v, ty, scope) {
                        if hit.is_none() {
                            hit = Some(si);
                            if !cheap {
                                break;
                            }
                        } else {
                            also.push(si);
                        }
                    }
                }
            }
            let len = self.push_element(&ce.name, ce.choice.then_some(ty), ce.base_many.then_some(i));
            if let (Some(first), false) = (hit, also.is_empty()) {
                let names: Vec<&str> =
                    std::iter::once(first).chain(also).filter_map(|si| cp.elem(ce.slices[si]).slice_name.as_deref()).collect();
                self.report(
                    Severity::Error,
                    "structure",
                    format!("matches more than one slice ({}): slices must not overlap", names.join(", ")),
                );
            }
            match hit {
                Some(si) => {
                    counts[si] += 1;
                    let se = cp.elem(ce.slices[si]);
                    if se.max == Some(0) {
                        // A prohibited slice: reported at the item, as the HL7 validator does.
                        let name = se.slice_name.as_deref().unwrap_or_default();
                        self.report(
                            Severity::Error,
                            "structure",
                            format!("matches the slice {}:{name}, which the profile prohibits", se.path),
                        );
                    }
                    if let Some(sl) = &ce.slicing {
                        if sl.ordered && si < last_slice {
                            self.report(Severity::Error, "structure", "slices are out of the order the profile defines");
                        }
                        if sl.rules == Rules::OpenAtEnd && seen_unmatched {
                            self.report(Severity::Error, "structure", "an item matching a slice after an unmatched one (openAtEnd)");
                        }
                    }
                    last_slice = si;
                    assigned.push(Some(ce.slices[si]));
                }
                None => {
                    seen_unmatched = true;
                    if ce.slicing.as_ref().is_some_and(|s| s.rules == Rules::Closed) {
                        let names: Vec<&str> = ce.slices.iter().filter_map(|&s| cp.elem(s).slice_name.as_deref()).collect();
                        self.report(
                            Severity::Error,
                            "structure",
                            format!("does not match any of the slices ({}) and the slicing is closed", names.join(", ")),
                        );
                    }
                    assigned.push(None);
                }
            }
            self.path.truncate(len);
        }
        for (si, &s) in ce.slices.iter().enumerate() {
            let se = cp.elem(s);
            let name = se.slice_name.as_deref().unwrap_or_default();
            if counts[si] < se.min {
                self.report(
                    Severity::Error,
                    "required",
                    format!("{}:{name}: minimum required = {}, but only found {}", se.path, se.min, counts[si]),
                );
            }
            if se.max.is_some_and(|m| m > 0 && counts[si] > m) {
                self.report(
                    Severity::Error,
                    "structure",
                    format!("{}:{name}: maximum allowed = {}, but found {}", se.path, se.max.unwrap_or_default(), counts[si]),
                );
            }
        }
        assigned
    }
}
