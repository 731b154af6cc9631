//! The JSON keys of an element's children, indexed once per element (issue 17): the walk looks
//! up each property of an object here instead of comparing it with every child's name and
//! shadow, and every child's name with every property (the walk's hottest loop).
//!
//! Built lazily from the compiled [`Profile`] and kept on the parent [`Elem`](super::model::Elem);
//! knows nothing of instances. No I/O.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::model::{ElemId, Profile};

/// What one JSON key names among the children.
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    /// Position of the child in the parent's `children`.
    pub child: u32,
    /// For a choice element: the position of the key's type in `choice_keys` (the first with
    /// that key).
    pub choice: Option<u32>,
    /// The key is the `_` shadow (`_birthDate`, `_valueString`).
    pub shadow: bool,
    /// For a choice: the key is longer than the element's name, so it names a type (always, but
    /// for a definition with an empty type code).
    pub typed: bool,
}

/// JSON key -> the children it names (one, but for definitions with clashing names).
#[derive(Debug, Clone, Default)]
pub struct KeyIndex {
    map: HashMap<Box<str>, Vec<Hit>, BuildHasherDefault<Fx>>,
}

impl KeyIndex {
    /// The keys of `children` (elements of `prof`).
    pub fn build(prof: &Profile, children: &[ElemId]) -> Self {
        let mut ix = KeyIndex::default();
        for (ci, &c) in children.iter().enumerate() {
            let ce = prof.elem(c);
            let child = ci as u32;
            if ce.choice {
                for (pos, (k, s, _)) in ce.choice_keys.iter().enumerate() {
                    let typed = k.len() > ce.name.len() && k.starts_with(ce.name.as_str());
                    ix.add(k, Hit { child, choice: Some(pos as u32), shadow: false, typed });
                    ix.add(s, Hit { child, choice: Some(pos as u32), shadow: true, typed });
                }
            } else {
                ix.add(&ce.name, Hit { child, choice: None, shadow: false, typed: false });
                ix.add(&ce.shadow, Hit { child, choice: None, shadow: true, typed: false });
            }
        }
        ix
    }

    /// Keeps the first hit per child and kind (a choice's first type with that key).
    fn add(&mut self, key: &str, hit: Hit) {
        let hits = self.map.entry(key.into()).or_default();
        if !hits.iter().any(|h| h.child == hit.child && h.shadow == hit.shadow && h.choice.is_some() == hit.choice.is_some()) {
            hits.push(hit);
        }
    }

    /// The children `key` names; empty when it names none.
    #[inline]
    pub fn get(&self, key: &str) -> &[Hit] {
        self.map.get(key).map(Vec::as_slice).unwrap_or_default()
    }
}

/// FxHash (rustc's): a few instructions a word. The keys hashed are definitions' element names;
/// lookups with an instance's keys cannot make the table degrade (it is never grown by them).
#[derive(Default)]
pub struct Fx(u64);

const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(K);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}
