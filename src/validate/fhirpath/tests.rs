//! Façade semantics; the official suite is tests/it/fhirpath_suite.rs.
