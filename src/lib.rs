//! # mhg: the migration health gateway
//!
//! Takes migration health assessment records (`mappings/record.schema.json`), maps them onto
//! FHIR R4 resources, checks them, and hands out transaction Bundles.
//!
//! # Layout (the pipeline, in order)
//! - [`ingest`]: bytes -> checked records (JSON / array / NDJSON, depth guard, record schema,
//!   calendar checks). Knows no FHIR.
//! - [`terminology`]: the ConceptMaps and CodeSystems of `mappings/`, loaded and checked once.
//! - [`map`]: record -> transaction Bundle. No I/O, no clock, no logging.
//! - [`validate`]: the output gate: the FHIR R4 JSON schema, then the profile validator
//!   ([`validate::profile`]: StructureDefinition snapshots from FHIR packages, bindings,
//!   slicing, invariants). No I/O after loading, no logging.
//! - [`pipeline`]: the three stages as one immutable value shared by the interfaces.
//! - [`http`]: the HTTP interface: routes, the listener, turning refusals into OperationOutcomes.
//!   The only module that knows the web framework and HTTP routes.
//! - [`cli`]: `mhg convert`, `mhg serve`, `mhg replay`, `mhg validate`.
//! - [`error`]: one error model; every refusal becomes an OperationOutcome with paths, no data.
//! - [`admission`]: converted records -> what the queue stores: authorisation, routing,
//!   destination profiles, identity and idempotency keys. No HTTP, no I/O.
//! - [`queue`]: the durable store (SQLite, PostgreSQL) between accepting and delivering.
//! - [`relay`]: delivery to destinations: retries, dead letters, order, outbound security.
//! - [`auth`]: who may call: API keys, JWT bearer tokens, client certificates, scopes, rate limits.
//! - [`ops`]: the metrics registry and its Prometheus text.
//! - [`json_strict`]: duplicate keys in JSON objects, refused by every reader of input.
//! - [`json_lean`]: JSON parsed into a `serde_json::Value` sized exactly (large Bundles).
//! - [`json_lenient`]: almost-JSON (comments, missing commas, unquoted names) read as the HL7
//!   validator reads it, each departure named at its FHIR path (`mhg validate`).
//! - [`calendar`]: calendar arithmetic and the one read of the clock; a leaf everyone may use.
//! - [`files`]: atomic file writes (`mhg convert --out`, directory destinations).
//! - [`markup`]: escaping text for HTML and XML (pages, narratives, console, reports).
//! - [`environment`]: the process environment, read once by `cli` and passed down as data.
//! - [`config`]: embedded defaults, TOML file, environment.
//! - [`conformance`]: the integration tester's kit: test vectors, `mhg conformance` runs, reports.

pub mod admission;
pub mod auth;
pub mod calendar;
pub mod cli;
pub mod config;
pub mod conformance;
pub mod environment;
pub mod error;
pub mod files;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod ingest;
pub mod json_lean;
pub mod json_lenient;
pub mod json_strict;
pub mod map;
pub mod markup;
pub mod ops;
pub mod pipeline;
pub mod queue;
pub mod relay;
pub mod terminology;
pub mod validate;

/// CodeSystem of the gateway's rejection reasons (`OperationOutcome.issue.details.coding`).
pub const CANONICAL_CS_REJECTION: &str = "https://w3id.org/mhg/fhir/CodeSystem/rejection";
