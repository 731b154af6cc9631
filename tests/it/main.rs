//! The integration tests: one binary, a module per capability.

mod cli;
mod common;
mod crash;
mod errors;
mod fhir_server;
mod fhirpath;
mod fhirpath_suite;
mod fidelity;
mod golden;
mod http;
mod mappings;
mod ops;
mod outbound;
mod packages;
mod peers;
mod property;
mod relay;
