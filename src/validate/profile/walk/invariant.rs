//! Invariants (`ElementDefinition.constraint`): answered natively where possible ([`native`]:
//! by key, or compiled into its subset and memoised on the constraint), the rest in one batch
//! through the FHIRPath engine, naming nodes by JSON Pointer into the root prepared once
//! ([`Prep`](super::Prep)).
//!
//! No I/O, no clock; a finding names the constraint's key and its human text.

use std::sync::Arc;

use serde_json::Value;

use super::element::children_of;
use super::{Scope, Walk};
use crate::validate::profile::model::{Constraint, ElemId, Profile, is_primitive};
use crate::validate::profile::{BestPractice, InvariantError, Severity, Validator, native};

impl Walk<'_> {
    pub(super) fn constraints<'v>(&mut self, prof: &Arc<Profile>, eid: ElemId, value: &'v Value, ty: &str, scope: Scope<'v>) {
        let e = prof.elem(eid);
        if e.constraints.is_empty() {
            return;
        }
        if !self.ctx && e.constraints.iter().any(|c| c.context) {
            self.ctx = true;
        }
        // Most elements' constraints are all answered natively: then in order, without
        // gathering verdicts (issue 17: the gathering allocated on every element walked).
        const INLINE: usize = 16;
        let n = e.constraints.len();
        let mut native = [None::<bool>; INLINE];
        let mut verdicts: Vec<Option<Result<bool, InvariantError>>> = if n <= INLINE {
            for (i, c) in e.constraints.iter().enumerate() {
                native[i] = self.native(prof, eid, ty, c, value, scope.resource);
            }
            if native[..n].iter().all(Option::is_some) {
                for (c, v) in e.constraints.iter().zip(native) {
                    if v == Some(false) {
                        self.failed(c);
                    }
                }
                return;
            }
            native[..n].iter().map(|v| v.map(Ok)).collect()
        } else {
            e.constraints.iter().map(|c| self.native(prof, eid, ty, c, value, scope.resource).map(Ok)).collect()
        };
        if let Some(engine) = self.v.engine().filter(|_| verdicts.iter().any(Option::is_none)) {
            let focus_type = if matches!(ty, "BackboneElement" | "Element") { e.base_path.as_str() } else { ty };
            let pending: Vec<usize> = (0..verdicts.len()).filter(|&i| verdicts[i].is_none()).collect();
            let exprs: Vec<&str> = pending.iter().map(|&i| e.constraints[i].expression.as_str()).collect();
            let prep = self.prep;
            // The root is converted only where the walk can name its nodes by pointer.
            let ptrs = if self.ptr_ok { self.ptr.get(..scope.res_ptr).zip(self.ptr.get(..scope.root_ptr)) } else { None };
            let batch = ptrs
                .and_then(|rp| Some((rp, prep.prepared(engine)?)))
                .and_then(|((rp, root), p)| engine.invariants_at(p, &exprs, &self.ptr, focus_type, rp, root).ok());
            match batch {
                Some(results) if results.len() == pending.len() => {
                    for (i, r) in pending.into_iter().zip(results) {
                        verdicts[i] = Some(r);
                    }
                }
                _ => {
                    for (i, expr) in pending.into_iter().zip(exprs) {
                        verdicts[i] = Some(engine.invariant(expr, value, focus_type, scope.resource, scope.root));
                    }
                }
            }
        }
        for (c, verdict) in e.constraints.iter().zip(verdicts) {
            match verdict {
                None | Some(Ok(true)) => {}
                Some(Ok(false)) => self.failed(c),
                Some(Err(_)) => self.report(Severity::Warning, "invariant", format!("constraint {} could not be evaluated", c.key)),
            }
        }
    }

    /// Reports a failed constraint, at the severity its kind and the validator's options give.
    fn failed(&mut self, c: &Constraint) {
        let sev = match (c.best_practice, self.v.best_practice()) {
            (true, BestPractice::Ignore) => return,
            (true, BestPractice::Hint) => Severity::Information,
            (true, BestPractice::Warning) => Severity::Warning,
            (true, BestPractice::Error) => Severity::Error,
            (false, _) if c.error => Severity::Error,
            (false, _) => Severity::Warning,
        };
        let mut text = format!("constraint {} failed: {}", c.key, c.human);
        if self.v.invariants_in_messages() {
            text.push_str(&format!(" (inv = {})", c.expression));
        }
        self.report(sev, "invariant", text);
    }

    /// An invariant answered without the engine: natively by key, or compiled into the
    /// subset of [`native`] (memoised on the constraint where its element has one type).
    fn native(&self, prof: &Arc<Profile>, eid: ElemId, ty: &str, c: &Constraint, value: &Value, resource: &Value) -> Option<bool> {
        if let Some(v) = native::by_key(&c.key, &c.expression, value, resource) {
            return Some(v);
        }
        let focus = || ElemCtx { v: self.v, prof: prof.clone(), eid, ty: ty.to_owned() };
        let compile = || native::Expr::compile(&c.expression, &focus()).map(Arc::new);
        let memo = eid == 0 || prof.elem(eid).types.len() <= 1;
        // Memoised ones are borrowed, not cloned: an `Arc` count touched per element would
        // bounce between the cores under `--jobs`.
        let owned;
        let expr = if memo {
            c.compiled.get_or_init(compile).as_deref()
        } else {
            owned = compile();
            owned.as_deref()
        };
        if let Some(x) = expr {
            return Some(x.eval(value));
        }
        // `A implies B` with `A` in the subset: true when `A` is false, else the engine's.
        let guard = || native::Expr::compile_guard(&c.expression, &focus()).map(Arc::new);
        let owned_guard;
        let g = if memo {
            c.guard.get_or_init(guard).as_deref()
        } else {
            owned_guard = guard();
            owned_guard.as_deref()
        };
        g.filter(|g| !g.eval(value)).map(|_| true)
    }
}

/// An element as the subset compiler sees it: its children, with their JSON keys.
struct ElemCtx<'p> {
    v: &'p Validator,
    prof: Arc<Profile>,
    eid: ElemId,
    ty: String,
}

impl<'p> native::Elements<'p> for ElemCtx<'p> {
    fn child(&self, name: &str) -> Option<native::Child<'p>> {
        let (cp, pid) = children_of(self.v, &self.prof, self.eid, &self.ty);
        let c = cp.elem(pid).children.iter().copied().find(|&c| cp.elem(c).name == name)?;
        let ce = cp.elem(c);
        if ce.choice {
            return Some((ce.choice_keys.iter().map(|(k, s, _)| (k.clone(), s.clone())).collect(), None));
        }
        let keys = vec![(ce.name.clone(), ce.shadow.clone())];
        let ty = match ce.types.as_slice() {
            [] => "BackboneElement".to_owned(),
            [t] if is_primitive(&t.code) => return Some((keys, None)),
            [t] => t.code.clone(),
            _ => return Some((keys, None)),
        };
        let v = self.v;
        Some((keys, Some(Box::new(ElemCtx { v, prof: cp, eid: c, ty }))))
    }
}
