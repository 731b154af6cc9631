//! The form of codes in terminologies the gateway does not load (LOINC, SNOMED CT), checked
//! offline: a code that does not have the system's form is in no edition of it, which is
//! what HL7's validator reports (from its terminology server) as an unknown code.
//!
//! - LOINC: `NNNNN-C` with the mod-10 check digit LOINC defines (Luhn's), or a part, answer or
//!   group code (`LP...`, `LA...`, `LG...`) of the same form.
//! - SNOMED CT: an SCTID, 6 to 18 digits without a leading zero, whose last digit is the
//!   Verhoeff check digit and whose partition (the two digits before it) is one SNOMED
//!   defines. A post-coordinated expression (with `:`, `|`, `=`, `+` or spaces) is not judged.
//!
//! The code is never quoted in findings (it comes from the instance).

pub const LOINC: &str = "http://loinc.org";
pub const SNOMED: &str = "http://snomed.info/sct";

/// Whether `code` has the form of a code of `system`; None when this module does not know
/// the system (or cannot judge the code, as a SNOMED CT expression).
pub fn well_formed(system: &str, code: &str) -> Option<bool> {
    match system {
        LOINC => Some(loinc(code)),
        SNOMED if code.contains([':', '|', '=', '+', ' ', '{', '(']) => None,
        SNOMED => Some(sctid(code)),
        _ => None,
    }
}

fn loinc(code: &str) -> bool {
    let body = ["LP", "LA", "LG", "LL"].iter().find_map(|p| code.strip_prefix(p)).unwrap_or(code);
    let Some((num, check)) = body.split_once('-') else { return false };
    if num.is_empty() || num.len() > 8 || !num.bytes().all(|b| b.is_ascii_digit()) || check.len() != 1 {
        return false;
    }
    let Some(c) = check.bytes().next().filter(u8::is_ascii_digit) else { return false };
    // Parts, answers and groups: the form only (their check digits follow the same rule, but
    // the form is what is certain).
    if body.len() != code.len() {
        return true;
    }
    luhn_check_digit(num) == c - b'0'
}

/// LOINC's mod-10 check digit (the Luhn digit of the number).
fn luhn_check_digit(num: &str) -> u8 {
    let sum: u32 = num
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                x / 10 + x % 10
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

fn sctid(code: &str) -> bool {
    let b = code.as_bytes();
    if !(6..=18).contains(&b.len()) || b[0] == b'0' || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let partition = &code[b.len() - 3..b.len() - 1];
    matches!(partition, "00" | "01" | "02" | "03" | "04" | "05" | "10" | "11" | "12" | "13" | "14" | "15") && verhoeff(code)
}

/// Whether a number's last digit is its Verhoeff check digit.
fn verhoeff(num: &str) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    let mut c = 0u8;
    for (i, b) in num.bytes().rev().enumerate() {
        c = D[c as usize][P[i % 8][(b - b'0') as usize] as usize];
    }
    c == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loinc_codes_carry_their_check_digit() {
        for ok in ["8310-5", "29463-7", "8867-4", "71802-3", "94500-6", "LP6960-1", "LA6576-8"] {
            assert_eq!(well_formed(LOINC, ok), Some(true), "{ok}");
        }
        for bad in ["8310-4", "test", "8310", "8310-55", "-5", "LX123-4", "8310-x"] {
            assert_eq!(well_formed(LOINC, bad), Some(false), "{bad}");
        }
    }

    #[test]
    fn snomed_identifiers_carry_their_verhoeff_digit_and_partition() {
        // Concepts (partition 00, 10), a description (01) and an extension concept (10).
        for ok in ["276885007", "840535000", "56248011000036107", "410534003", "38341003"] {
            assert_eq!(well_formed(SNOMED, ok), Some(true), "{ok}");
        }
        for bad in ["276885007x", "276885008", "012345", "12345", "276885097"] {
            assert_eq!(well_formed(SNOMED, bad), Some(false), "{bad}");
        }
        // An expression is not judged; other systems are not known here.
        assert_eq!(well_formed(SNOMED, "73211009 |Diabetes mellitus|"), None);
        assert_eq!(well_formed("http://example.org", "x"), None);
    }
}
