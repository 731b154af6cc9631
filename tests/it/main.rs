//! The integration tests: one binary, a module per capability.

mod auth;
mod cli;
mod common;
mod crash;
mod errors;
mod fhir_server;
mod fhirpath;
mod fhirpath_suite;
mod fidelity;
mod fuzz;
mod golden;
mod hostile_input;
mod http_surface;
mod identity;
mod http;
mod mappings;
mod ops;
mod outbound;
mod packages;
mod profile;
mod peers;
mod privacy;
mod property;
mod relay;
mod validator_suite;
