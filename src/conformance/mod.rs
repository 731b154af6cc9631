//! The integration tester's kit: the published test vectors and the runs that check a gateway
//! or a receiving FHIR server against them.
//!
//! - [`fields`]: the record schema walked for its enums, optional and required properties;
//! - [`vectors`] and [`bad`]: the vectors, generated from seed records by the gateway's own
//!   pipeline, written to and read from `conformance/vectors/`; [`testscript`]: a FHIR
//!   `TestScript` per vector;
//! - [`compare`]: FHIR JSON compared by meaning, differences as paths (never values);
//! - [`check`]: one check's result, and a run's; [`report`]: JUnit XML, HTML, FHIR TestReport;
//! - [`gateway`]: a running gateway against the vectors; [`destination`]: a receiving FHIR server.
//!
//! Must not know: HTTP frameworks (the runs speak through the relay's client), SQL. Reports name
//! vectors, checks, paths and codes of the synthetic vectors only.

/// Ticks as each request of a run is made (the command draws a progress bar with it).
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

pub mod bad;
pub mod check;
pub mod compare;
pub mod destination;
pub mod fields;
pub mod gateway;
pub mod report;
pub mod testscript;
pub mod vectors;
