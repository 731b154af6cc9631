//! The typed form of one migration health record (`mappings/record.schema.json`, version 1.0).
//!
//! Records are checked against the JSON Schema *before* they are deserialised into these types, so
//! every field here is already known to be well formed; the types exist to make the mapping code
//! read like the schema. Code-valued fields stay `String`s on purpose: their meaning lives in the
//! ConceptMaps under `mappings/`, not in Rust enums.
//!
//! Patient data lives here. `Debug` is written by hand so that nothing but identifiers of the
//! record itself (never of the person) can reach a log line through `{:?}`.

use serde::Deserialize;
use serde_json::Number;

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Record {
    pub schema_version: String,
    pub record_id: String,
    pub record_version: u32,
    pub source_system: String,
    pub person: Person,
    pub assessment: Assessment,
    #[serde(default)]
    pub results: Vec<TestResult>,
    #[serde(default)]
    pub vaccinations: Vec<Vaccination>,
    pub provenance: Option<RecordProvenance>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("record_id", &self.record_id)
            .field("record_version", &self.record_version)
            .field("results", &self.results.len())
            .field("vaccinations", &self.vaccinations.len())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Person {
    pub person_id: String,
    #[serde(default)]
    pub identifiers: Vec<PersonIdentifier>,
    pub names: Vec<Name>,
    pub sex: String,
    pub birth_date: String,
    pub birth_date_estimated: Option<bool>,
    pub birth_country: Option<String>,
    #[serde(default)]
    pub nationalities: Vec<String>,
    #[serde(default)]
    pub languages: Vec<Language>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub destination_address: Option<Address>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersonIdentifier {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    pub issuer: Option<String>,
    pub expires: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Name {
    #[serde(rename = "use")]
    pub name_use: String,
    pub family: Option<String>,
    #[serde(default)]
    pub given: Vec<String>,
    pub script: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Language {
    pub code: String,
    pub preferred: Option<bool>,
    pub interpreter_needed: Option<bool>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Address {
    #[serde(default)]
    pub lines: Vec<String>,
    pub city: Option<String>,
    pub district: Option<String>,
    pub postal_code: Option<String>,
    pub country: String,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Assessment {
    pub assessment_id: String,
    pub programme: String,
    pub kind: String,
    pub destination_country: String,
    pub site: Site,
    pub physician: Option<Physician>,
    pub exam_date: String,
    pub valid_until: Option<String>,
    pub tb_classification: Option<String>,
    #[serde(default)]
    pub other_classifications: Vec<Classification>,
    pub fit_to_travel: Option<bool>,
    pub note: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Site {
    pub code: String,
    pub name: String,
    pub country: String,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Physician {
    pub id: String,
    pub name: String,
    pub licence: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Classification {
    pub condition: String,
    pub class: String,
    pub note: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestResult {
    pub result_id: String,
    pub test: String,
    pub method: Option<String>,
    pub specimen: Option<String>,
    pub sequence: Option<u8>,
    pub collected: Option<String>,
    pub resulted: Option<String>,
    pub status: String,
    pub value: ResultValue,
    #[serde(default)]
    pub components: Vec<Component>,
    #[serde(default)]
    pub findings: Vec<String>,
    pub laboratory: Option<String>,
    pub note: Option<String>,
}

/// One of the four value shapes of the schema's `oneOf`.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub enum ResultValue {
    Coded { coded: String },
    Quantity { quantity: Number, unit: String, comparator: Option<String> },
    Titer { titer: String },
    Text { text: String },
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Component {
    pub name: String,
    pub quantity: Number,
    pub unit: String,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Vaccination {
    pub vaccination_id: String,
    pub vaccine: String,
    pub date: Option<String>,
    pub status: String,
    pub not_done_reason: Option<String>,
    pub source: String,
    pub dose_number: Option<u8>,
    pub series_doses: Option<u8>,
    pub lot: Option<String>,
    pub expiry: Option<String>,
    pub manufacturer: Option<String>,
    pub route: Option<String>,
    pub body_site: Option<String>,
    pub country: Option<String>,
    pub note: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordProvenance {
    pub entered_by: Option<String>,
    pub attested_by: Option<String>,
    pub created: String,
    pub updated: Option<String>,
    pub consent: Option<Consent>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Consent {
    pub status: String,
    pub date: Option<String>,
    pub scope: Option<String>,
}
