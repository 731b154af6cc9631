//! UCUM unit expressions by the UCUM grammar, offline: whether a code of
//! `http://unitsofmeasure.org` is a valid expression. Atoms and prefixes come from the table
//! committed at `conformance/ucum/ucum-atoms.tsv` (derived from `ucum-essence.xml`), compiled
//! into the binary; a prefix goes only on a metric atom.
//!
//! Grammar (UCUM §7, case-sensitive form):
//! `main-term := "/" term | term`; `term := component (("." | "/") component)*`;
//! `component := annotatable annotation? | annotation | factor | "(" term ")"`;
//! `annotatable := simple-unit exponent?`; `simple-unit := atom | prefix metric-atom`;
//! `exponent := ("+" | "-")? digits`; `annotation := "{" (ASCII 33-126 but curly braces)* "}"`.
//!
//! No I/O, no clock; an error names the position, never the code.

use std::collections::HashMap;
use std::sync::OnceLock;

pub const SYSTEM: &str = "http://unitsofmeasure.org";

const TABLE: &str = include_str!("../../../conformance/ucum/ucum-atoms.tsv");

struct Atoms {
    /// Atom code → metric (takes a prefix).
    atoms: HashMap<&'static str, bool>,
    /// Prefix codes, longest first.
    prefixes: Vec<&'static str>,
}

fn atoms() -> &'static Atoms {
    static A: OnceLock<Atoms> = OnceLock::new();
    A.get_or_init(|| {
        let mut atoms = HashMap::new();
        let mut prefixes = Vec::new();
        for line in TABLE.lines().filter(|l| !l.starts_with('#')) {
            match line.split_once('\t') {
                Some(("prefix", c)) => prefixes.push(c),
                Some(("base" | "metric", c)) => {
                    atoms.insert(c, true);
                }
                Some(("unit", c)) => {
                    atoms.insert(c, false);
                }
                _ => {}
            }
        }
        prefixes.sort_by_key(|p| std::cmp::Reverse(p.len()));
        Atoms { atoms, prefixes }
    })
}

/// Why an expression is not valid UCUM, and where (a 1-based character position).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at character {at}")]
pub struct UcumError {
    pub at: usize,
    pub what: &'static str,
}

/// `Ok` when `code` is a valid UCUM expression.
pub fn check(code: &str) -> Result<(), UcumError> {
    let mut p = Parser { s: code.as_bytes(), i: 0 };
    if p.s.is_empty() {
        return Err(p.err("an empty unit"));
    }
    if p.peek() == Some(b'/') {
        p.i += 1;
    }
    p.term(0)?;
    match p.peek() {
        None => Ok(()),
        Some(b')') => Err(p.err("a closing parenthesis without its opening one")),
        Some(_) => Err(p.err("an unexpected character")),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn err(&self, what: &'static str) -> UcumError {
        UcumError { at: self.i + 1, what }
    }

    fn term(&mut self, depth: usize) -> Result<(), UcumError> {
        if depth > 32 {
            return Err(self.err("parentheses nested too deeply"));
        }
        self.component(depth)?;
        while matches!(self.peek(), Some(b'.' | b'/')) {
            self.i += 1;
            self.component(depth)?;
        }
        Ok(())
    }

    fn component(&mut self, depth: usize) -> Result<(), UcumError> {
        match self.peek() {
            None => Err(self.err("a unit expected")),
            Some(b'(') => {
                self.i += 1;
                self.term(depth + 1)?;
                if self.peek() != Some(b')') {
                    return Err(self.err("a closing parenthesis expected"));
                }
                self.i += 1;
                if self.peek() == Some(b'{') {
                    return Err(self.err("an annotation after a parenthesis"));
                }
                Ok(())
            }
            Some(b'{') => self.annotation(),
            Some(_) => {
                self.simple()?;
                if self.peek() == Some(b'{') {
                    self.annotation()?;
                }
                Ok(())
            }
        }
    }

    fn annotation(&mut self) -> Result<(), UcumError> {
        let start = self.i;
        self.i += 1;
        while let Some(c) = self.peek() {
            match c {
                b'}' => {
                    self.i += 1;
                    return Ok(());
                }
                b'{' => return Err(self.err("a curly brace inside an annotation")),
                33..=126 => self.i += 1,
                _ => return Err(self.err("a character not allowed in an annotation")),
            }
        }
        self.i = start;
        Err(self.err("an annotation not closed"))
    }

    /// A symbol (up to `.`, `/`, `(`, `)`, `{`, `}`; square brackets taken whole), read as a
    /// factor, or an atom (optionally prefixed) with an optional exponent.
    fn simple(&mut self) -> Result<(), UcumError> {
        let start = self.i;
        while let Some(c) = self.peek() {
            match c {
                b'.' | b'/' | b'(' | b')' | b'{' | b'}' => break,
                b'[' => {
                    while self.peek().is_some_and(|c| c != b']') {
                        self.i += 1;
                    }
                    if self.peek().is_none() {
                        self.i = start;
                        return Err(self.err("a square bracket not closed"));
                    }
                    self.i += 1;
                }
                33..=126 => self.i += 1,
                _ => return Err(self.err("a character not allowed in a unit")),
            }
        }
        let sym = &self.s[start..self.i];
        if sym.is_empty() {
            return Err(self.err("a unit expected"));
        }
        if sym.iter().all(u8::is_ascii_digit) {
            return Ok(()); // a factor
        }
        // A trailing exponent: digits, optionally signed.
        let digits = sym.iter().rev().take_while(|c| c.is_ascii_digit()).count();
        let mut unit_len = sym.len() - digits;
        if digits > 0 && unit_len > 0 && matches!(sym[unit_len - 1], b'+' | b'-') {
            unit_len -= 1;
        }
        if unit_len == 0 {
            unit_len = sym.len();
        }
        let unit = std::str::from_utf8(&sym[..unit_len]).map_err(|_| UcumError { at: start + 1, what: "not ASCII" })?;
        if known(unit) { Ok(()) } else { Err(UcumError { at: start + 1, what: "an unknown unit" }) }
    }
}

/// An atom, or a prefix on a metric atom.
fn known(unit: &str) -> bool {
    let a = atoms();
    if a.atoms.contains_key(unit) {
        return true;
    }
    a.prefixes.iter().any(|p| unit.strip_prefix(p).is_some_and(|rest| a.atoms.get(rest) == Some(&true)))
}

/// How `a` (value and UCUM code) compares with `b`: None when either code is not a UCUM
/// expression this reading can evaluate; `Some(None)` when they measure different things
/// (metres and kilograms); else the ordering of the two in base units (temperature offsets
/// applied). Codes are checked by the grammar above before octofhir-ucum reads them.
pub fn compare(a: (f64, &str), b: (f64, &str)) -> Option<Option<std::cmp::Ordering>> {
    let base = |(v, code): (f64, &str)| {
        if !code.is_ascii() || check(code).is_err() {
            return None;
        }
        let analysis = std::panic::catch_unwind(|| octofhir_ucum::analyse(code).ok()).ok().flatten()?;
        Some((analysis.dimension.0, v * analysis.factor + analysis.offset))
    };
    let ((da, xa), (db, xb)) = (base(a)?, base(b)?);
    Some((da == db).then(|| xa.partial_cmp(&xb)).flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_expressions() {
        for c in [
            "kg",
            "mg/dL",
            "mm[Hg]",
            "/min",
            "cm",
            "[in_i]",
            "Cel",
            "[degF]",
            "%",
            "10*3/uL",
            "10*9/L",
            "m2",
            "kg/m2",
            "mL{total}",
            "{cells}/uL",
            "{score}",
            "1",
            "10",
            "g.m-2",
            "(m.s)/kg",
            "mmol/mol",
            "[iU]/L",
            "/[HPF]",
            "ug/(kg.min)",
            "s-1",
            "[pH]",
            "a",
            "mo",
            "wk",
            "d",
            "h",
            "'",
            "meq/L",
            "kPa",
            "B[10.nV]",
            "[ppm]",
            "umol/L",
            "10^6",
            "m+2",
        ] {
            assert_eq!(check(c), Ok(()), "{c}");
        }
    }

    #[test]
    fn invalid_expressions() {
        for c in [
            "",
            "kilogram",
            "mg/dl/",
            "mmHg",
            "[in_i",
            "mL{total",
            "k[in_i]",
            "cm (length)",
            "2m",
            "mg//dL",
            "(mg",
            "mg)",
            "10*3/",
            "µg",
            "{a{b}}",
            "mg.",
            "beats/minute",
            "X",
        ] {
            assert!(check(c).is_err(), "{c}");
        }
        assert_eq!(check("mg/dx"), Err(UcumError { at: 4, what: "an unknown unit" }));
    }
}
