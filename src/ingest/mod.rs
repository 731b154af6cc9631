//! Stage 1, **ingest**: bytes in, checked records out.
//!
//! Owns reading (one record, a JSON array or NDJSON), the nesting-depth guard, and the input
//! contract (the record JSON Schema). Knows nothing of FHIR, HTTP or files: callers hand it bytes
//! and a name for where they came from.

pub mod digest;
pub mod reader;
pub mod record;
pub mod schema;
pub mod semantic;
pub mod stream;

pub use reader::{Item, read_records};
pub use record::Record;
pub use schema::RecordSchema;
