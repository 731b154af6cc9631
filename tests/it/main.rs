//! The integration tests: one binary, a module per capability.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test and bench code: a failure should stop it loudly

mod aggregation;
mod auth;
mod batch;
mod cli;
mod common;
mod conformance;
mod console;
mod crash;
mod errors;
mod fhir_server;
mod fhirpath;
mod fhirpath_suite;
mod fidelity;
mod fuzz;
mod golden;
mod hostile_input;
mod http;
mod http_surface;
mod identity;
mod ips;
mod local_rules;
mod mappings;
mod narrative;
mod opdef;
mod ops;
mod outbound;
mod packages;
mod peers;
mod privacy;
mod profile;
mod property;
mod questionnaire;
mod relay;
mod sd_rules;
mod summary;
mod support;
mod tx_delegation;
mod txops;
mod validate_ndjson;
mod validator_options;
mod validator_suite;
