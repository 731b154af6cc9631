//! FHIRPath for the profile validator: invariants (`ele-1`, `obs-6`, `ips-pat-1`...) and general
//! expressions, evaluated by octofhir-fhirpath 0.4.57 (docs/fhirpath-engine-evaluation.md) over
//! the raw JSON, typed by our own [`TypeModel`].
//!
//! The façade is synchronous and `Send + Sync`: octofhir's API is async but does no I/O here, so
//! each call drives its future to completion on the calling thread
//! (`futures_executor::block_on`). That is safe on a Tokio worker inside `spawn_blocking` and in
//! plain CLI code alike; no runtime is needed or created.
//!
//! Compiled expressions are cached for the life of the [`FhirPath`] (invariants are few and
//! evaluated millions of times). Where octofhir falls short of what a validator needs, this module
//! steps in (see [`functions`]): `resolve()` finds Bundle entries by `fullUrl` (`urn:uuid:`),
//! `memberOf()` and `conformsTo()` go to callbacks the validator supplies, and `{}.all(x)` is
//! true (octofhir returns empty, which would fail every `x.all(...)` invariant combined with
//! another term when `x` is absent).
//!
//! Errors never carry instance values: a [`FhirPathError`] names the construct (an error code and
//! its description, the function) and, for parse errors, the expression, which comes from a
//! definition and not from patient data.
//!
//! Panics: octofhir 0.4.57 adds, subtracts and multiplies integers and decimals unchecked
//! (`9223372036854775807 + 1`, a decimal past 7.9e28), and its dependencies have panicked on odd
//! input before (found by `scripts/fuzz fhirpath`). Every call into the engine therefore runs
//! inside [`guarded`]: a panic there becomes a [`FhirPathError`] (code `MHG-PANIC`) for that
//! expression, and the process-wide panic hook stays silent about it (a panic message can quote
//! the strings being worked on; the warning logged names only the code location). The spec
//! answers overflow with empty; an error is the honest answer from an engine that cannot tell.
//!
//! Decimal precision: octofhir reads `1.50` as `1.5`. Only `precision()`, `lowBoundary()` and
//! `highBoundary()` see the difference, and no invariant of R4 core or IPS 2.0.0 calls them on
//! instance data.

pub mod functions;
pub mod model;
mod shadow;

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Once, RwLock};

use futures_executor::block_on;
use octofhir_fhirpath::core::model_provider::TypeInfo;
use octofhir_fhirpath::core::node::FhirNode;
use octofhir_fhirpath::core::{Collection, FhirPathValue, ModelProvider};
use octofhir_fhirpath::{CompiledPlan, EvaluationContext, FhirPathEngine};
use serde_json::Value;

use crate::validate::profile::InvariantError;

pub use functions::{Conformance, Terminology};
pub use model::TypeModel;

/// Why an expression could not be parsed or evaluated. Holds no instance data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind} error {code} ({description}){}", detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
pub struct FhirPathError {
    pub kind: ErrorKind,
    /// octofhir's error code (`FP0051`...).
    pub code: String,
    /// The fixed description of that code.
    pub description: &'static str,
    /// The function at fault, or the parser's message (about the expression only).
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Parse,
    Evaluation,
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorKind::Parse => "FHIRPath parse",
            ErrorKind::Evaluation => "FHIRPath evaluation",
        })
    }
}

impl FhirPathError {
    fn from_engine(e: &octofhir_fhirpath::FhirPathError) -> Self {
        use octofhir_fhirpath::FhirPathError as E;
        let code = e.error_code();
        let (kind, detail) = match e {
            E::ParseError { message, .. } => (ErrorKind::Parse, Some(message.clone())),
            E::FunctionError { function_name, .. } => (ErrorKind::Evaluation, function_name.as_ref().map(|f| format!("in {f}()"))),
            _ => (ErrorKind::Evaluation, None),
        };
        FhirPathError { kind, code: code.code_str(), description: code.description(), detail }
    }

    fn panicked() -> Self {
        FhirPathError {
            kind: ErrorKind::Evaluation,
            code: "MHG-PANIC".into(),
            description: "the engine failed on this expression (arithmetic overflow or an engine fault)",
            detail: None,
        }
    }

    fn internal(what: &str) -> Self {
        FhirPathError { kind: ErrorKind::Evaluation, code: "MHG".into(), description: "internal", detail: Some(what.into()) }
    }
}

/// One item of a result, by FHIRPath type. Decimals keep octofhir's text (`1.5`), dates their
/// FHIRPath text without `@`.
#[derive(Debug, Clone, PartialEq)]
pub enum FpValue {
    Boolean(bool),
    Integer(i64),
    Decimal(String),
    /// `string` and its FHIR specializations (`code`, `id`, `uri`...).
    String(String),
    Date(String),
    DateTime(String),
    Time(String),
    Quantity {
        value: String,
        unit: Option<String>,
    },
    /// A complex value or resource, with its FHIR type name when known.
    Object {
        type_name: String,
        json: Value,
    },
}

/// The variable `%context` is compiled to: octofhir answers `%context` with the root resource of
/// the evaluation, where FHIR invariants mean the focus (the element the constraint is on).
const FOCUS_VAR: &str = "mhgFocus";

/// `expr` with `%context` (outside string literals) renamed to `%mhgFocus`.
fn focus_as_context(expr: &str) -> std::borrow::Cow<'_, str> {
    if !expr.contains("%context") {
        return std::borrow::Cow::Borrowed(expr);
    }
    let mut out = String::with_capacity(expr.len() + 8);
    let mut in_str = false;
    let mut rest = expr;
    while let Some(c) = rest.chars().next() {
        if in_str {
            if c == '\\' {
                let n = rest.chars().nth(1).map_or(1, |d| 1 + d.len_utf8());
                out.push_str(&rest[..n]);
                rest = &rest[n..];
                continue;
            }
            in_str = c != '\'';
        } else if c == '\'' {
            in_str = true;
        } else if let Some(after) = rest.strip_prefix("%context") {
            if !after.starts_with(|d: char| d.is_ascii_alphanumeric() || d == '_') {
                out.push('%');
                out.push_str(FOCUS_VAR);
                rest = after;
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    std::borrow::Cow::Owned(out)
}

/// FHIRPath evaluation over R4 JSON. Share one in an `Arc`.
pub struct FhirPath {
    engine: FhirPathEngine,
    model: Arc<TypeModel>,
    /// Compiled expressions, kept as long as this lives (octofhir's own cache holds 256).
    plans: RwLock<HashMap<String, Arc<CompiledPlan>>>,
    /// `(type, element) -> type` lookups shared by every context we build.
    element_types: Arc<papaya::HashMap<String, Option<Arc<TypeInfo>>>>,
}

impl std::fmt::Debug for FhirPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FhirPath").field("model", &self.model).finish_non_exhaustive()
    }
}

/// A root (a resource or a Bundle) converted once for many [`FhirPath::invariant_at`] calls.
pub struct Prepared {
    root: FhirNode,
}

impl Prepared {
    /// The node a JSON Pointer into the root names (`what` says which, for the error).
    fn node(&self, ptr: &str, what: &str) -> Result<FhirNode, FhirPathError> {
        self.root.pointer(ptr).cloned().ok_or_else(|| FhirPathError::internal(what))
    }

    /// The focus and resource nodes named by JSON Pointers into the root.
    fn nodes(&self, focus: &str, resource: &str) -> Result<(FhirNode, FhirNode), FhirPathError> {
        Ok((
            self.node(focus, "focus pointer names no node")?,
            self.node(resource, "resource pointer names no node")?,
        ))
    }
}

thread_local! {
    static IN_ENGINE: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is running engine code inside [`guarded`] (for panic hooks).
pub fn inside_engine() -> bool {
    IN_ENGINE.with(Cell::get)
}

/// Chains a hook before whatever panic hook is installed (the default, libFuzzer's): a panic
/// inside [`guarded`] is logged as a warning naming only the code location and is otherwise
/// left to `catch_unwind`; every other panic goes to the previous hook unchanged.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if inside_engine() {
                let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
                tracing::warn!(target: "mhg::fhirpath", location = %at, "FHIRPath engine panicked; the expression is answered as an evaluation error");
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs engine work (a future driven on this thread, or a parse) so that a panic in it becomes
/// [`FhirPathError::panicked`] instead of unwinding through the validator.
fn guarded<T>(work: impl FnOnce() -> Result<T, FhirPathError>) -> Result<T, FhirPathError> {
    let was = IN_ENGINE.with(|f| f.replace(true));
    let out = std::panic::catch_unwind(AssertUnwindSafe(work));
    IN_ENGINE.with(|f| f.set(was));
    out.unwrap_or_else(|_| Err(FhirPathError::panicked()))
}

/// [`guarded`] for a future.
fn run_guarded<T>(work: impl Future<Output = Result<T, FhirPathError>>) -> Result<T, FhirPathError> {
    guarded(|| block_on(work))
}

/// `trace()` answers its input and says nothing: the engine's default prints every traced
/// value on stderr, and those values are patient data (a profile's invariant may trace).
struct Silent;

impl octofhir_fhirpath::core::trace::TraceProvider for Silent {
    fn trace(&self, _: &str, _: usize, _: &str) {}
    fn trace_simple(&self, _: &str, _: &str) {}
    fn collect_traces(&self) -> Vec<String> {
        Vec::new()
    }
    fn clear_traces(&self) {}
}

impl FhirPath {
    /// An engine typed by `model`, without terminology or profile callbacks.
    pub fn new(model: Arc<TypeModel>) -> Result<Self, FhirPathError> {
        Self::with_callbacks(model, None, None)
    }

    /// An engine whose `memberOf()` asks `terminology` and whose `conformsTo()` asks
    /// `conformance` (each returns empty when absent or when the callback does not know).
    pub fn with_callbacks(
        model: Arc<TypeModel>,
        terminology: Option<Arc<dyn Terminology>>,
        conformance: Option<Arc<dyn Conformance>>,
    ) -> Result<Self, FhirPathError> {
        let mut registry = octofhir_fhirpath::create_function_registry();
        registry.register_provider_pure_function(functions::Resolve::create());
        registry.register_provider_pure_function(functions::MemberOf::create(terminology));
        registry.register_provider_pure_function(functions::ConformsTo::create(conformance));
        functions::answer_empty_input(&mut registry);
        let provider: Arc<dyn ModelProvider + Send + Sync> = model.clone();
        install_panic_hook();
        let engine =
            run_guarded(async { FhirPathEngine::new(Arc::new(registry), provider).await.map_err(|e| FhirPathError::from_engine(&e)) })?;
        Ok(FhirPath { engine, model, plans: RwLock::new(HashMap::new()), element_types: Arc::new(papaya::HashMap::new()) })
    }

    pub fn model(&self) -> &Arc<TypeModel> {
        &self.model
    }

    /// Parses only; `Err` names the problem (bad constraint expressions, fuzzing).
    pub fn parse(&self, expr: &str) -> Result<(), FhirPathError> {
        self.plan(expr).map(|_| ())
    }

    fn plan(&self, expr: &str) -> Result<Arc<CompiledPlan>, FhirPathError> {
        if let Some(p) = self.plans.read().ok().and_then(|m| m.get(expr).cloned()) {
            return Ok(p);
        }
        if non_ascii_unit(expr) {
            // octofhir-ucum 0.4 slices unit strings by byte and panics inside a non-ASCII
            // character (found by `scripts/fuzz fhirpath`); UCUM units are ASCII anyway.
            return Err(FhirPathError {
                kind: ErrorKind::Parse,
                code: "MHG".into(),
                description: "a quantity's unit must be UCUM (ASCII)",
                detail: None,
            });
        }
        let plan = guarded(|| self.engine.compile_plan(&focus_as_context(expr)).map_err(|e| FhirPathError::from_engine(&e)))?;
        if let Ok(mut m) = self.plans.write() {
            m.insert(expr.to_owned(), plan.clone());
        }
        Ok(plan)
    }

    /// The typed value of a JSON node of FHIR type `type_name` (ignored when it has a
    /// `resourceType`).
    async fn typed(&self, node: FhirNode, type_name: &str) -> Result<Collection, FhirPathError> {
        if node.is_object() {
            let ty = node.get("resourceType").and_then(FhirNode::as_str).unwrap_or(type_name).to_owned();
            let info = self.model.get_type(&ty).await.ok().flatten().unwrap_or_else(|| TypeInfo::new_complex(&ty));
            return Ok(Collection::single(FhirPathValue::Resource(node, Arc::new(info), None)));
        }
        let provider: Arc<dyn ModelProvider + Send + Sync> = self.model.clone();
        Collection::from_json_typed_arc(Arc::new(node.to_json()), Some(type_name), Some(provider))
            .await
            .map_err(|e| FhirPathError::from_engine(&e))
    }

    /// The context of one focus: the resource is its root (octofhir's `%resource`), the focus a
    /// child of it, `%rootResource` a variable.
    fn context(&self, focus: Collection, resource: Collection, root: Collection) -> EvaluationContext {
        let provider: Arc<dyn ModelProvider + Send + Sync> = self.model.clone();
        let outer = EvaluationContext::new_with_server_and_element_type_cache(
            resource,
            provider,
            None,
            None,
            Some(Arc::new(Silent)),
            None,
            self.element_types.clone(),
        );
        if let Some(r) = root.first() {
            outer.set_variable("rootResource".into(), r.clone());
            outer.set_variable("%rootResource".into(), r.clone());
        }
        let this = focus.first().cloned();
        if let Some(t) = &this {
            // `%context` is the focus (see `focus_as_context`).
            outer.set_variable(FOCUS_VAR.into(), t.clone());
        }
        let ctx = outer.create_child_context(focus);
        if let Some(t) = this {
            ctx.set_this(t);
        }
        ctx
    }

    /// Evaluates in a scope of its own (`defineVariable` cannot leak to the next expression).
    async fn eval_in(&self, expr: &str, ctx: &EvaluationContext) -> Result<Collection, FhirPathError> {
        let plan = self.plan(expr)?;
        let result = self.engine.evaluate_plan(&plan, &ctx.nest()).await.map_err(|e| FhirPathError::from_engine(&e))?;
        Ok(result.value)
    }

    async fn run(&self, expr: &str, focus: Collection, resource: Collection, root: Collection) -> Result<Collection, FhirPathError> {
        let ctx = self.context(focus, resource, root);
        self.eval_in(expr, &ctx).await
    }

    /// Evaluates `expr` on a resource (`%resource` and `%rootResource` are the resource); on
    /// nothing when `resource` is `null`.
    pub fn evaluate(&self, expr: &str, resource: &Value) -> Result<Vec<FpValue>, FhirPathError> {
        run_guarded(async {
            let r = match resource["resourceType"].as_str() {
                _ if resource.is_null() => Collection::empty(),
                ty => self.typed(self.node(resource), ty.unwrap_or("Resource")).await?,
            };
            let out = self.run(expr, r.clone(), r.clone(), r).await?;
            Ok(out.iter().flat_map(to_values).collect())
        })
    }

    /// An invariant on `focus`, a JSON node of FHIR type `focus_type` (`Patient`, `HumanName`,
    /// `Observation.component`, `Extension`, `dateTime`...), inside `resource` (`%resource`)
    /// and `root` (`%rootResource`: the Bundle, for a Bundle entry). Empty is true (FHIR
    /// constraint semantics), as is any result other than one `false`.
    ///
    /// Converts the three JSON trees on every call (a node that is the same object as another
    /// is converted once); for many invariants on one resource use [`Self::prepare`].
    pub fn invariant(&self, expr: &str, focus: &Value, focus_type: &str, resource: &Value, root: &Value) -> Result<bool, FhirPathError> {
        let resource_node = self.node(resource);
        let root_node = if std::ptr::eq(root, resource) { resource_node.clone() } else { self.node(root) };
        let focus_node = if std::ptr::eq(focus, resource) { resource_node.clone() } else { self.node(focus) };
        run_guarded(self.constraint(expr, focus_node, focus_type, resource_node, root_node))
    }

    /// A JSON tree as the engine reads it, with plain element names shadowed where octofhir
    /// would read a longer key as their value ([`TypeModel::shadowed_prefixes`]).
    fn node(&self, v: &Value) -> FhirNode {
        let n = FhirNode::from_json(v);
        shadow::shadow(&self.model, &n, 0).unwrap_or(n)
    }

    /// Converts `root` (a resource or a Bundle) once for [`Self::invariant_at`].
    pub fn prepare(&self, root: &Value) -> Prepared {
        Prepared { root: self.node(root) }
    }

    /// [`Self::invariant`] with the nodes named by JSON Pointers into a [`Prepared`] root:
    /// `focus` (`/entry/2/resource/name/0`) and `resource` (`/entry/2/resource`, or `""` for
    /// the root itself).
    pub fn invariant_at(&self, expr: &str, root: &Prepared, focus: &str, focus_type: &str, resource: &str) -> Result<bool, FhirPathError> {
        let (focus_node, resource_node) = root.nodes(focus, resource)?;
        run_guarded(self.constraint(expr, focus_node, focus_type, resource_node, root.root.clone()))
    }

    /// Several invariants on one focus (the constraints of one element), sharing one context:
    /// the per-call set-up is paid once. One result per expression, in order. `root_resource`
    /// points at `%rootResource` (`""`: the prepared root).
    pub fn invariants_at(
        &self,
        exprs: &[&str],
        root: &Prepared,
        focus: &str,
        focus_type: &str,
        resource: &str,
        root_resource: &str,
    ) -> Result<Vec<Result<bool, FhirPathError>>, FhirPathError> {
        let (focus_node, resource_node) = root.nodes(focus, resource)?;
        let root_node = if root_resource.is_empty() { root.root.clone() } else { root.node(root_resource, "root pointer names no node")? };
        let ctx = run_guarded(self.constraint_context(focus_node, focus_type, resource_node, root_node))?;
        // One guard per expression: a panic in one answers that one only.
        Ok(exprs.iter().map(|expr| run_guarded(async { self.eval_in(expr, &ctx).await.map(|c| holds(&c)) })).collect())
    }

    async fn constraint_context(
        &self,
        focus: FhirNode,
        focus_type: &str,
        resource: FhirNode,
        root: FhirNode,
    ) -> Result<EvaluationContext, FhirPathError> {
        let focus = self.typed(focus, focus_type).await?;
        let resource = self.typed(resource, "Resource").await?;
        let root = self.typed(root, "Resource").await?;
        Ok(self.context(focus, resource, root))
    }

    async fn constraint(
        &self,
        expr: &str,
        focus: FhirNode,
        focus_type: &str,
        resource: FhirNode,
        root: FhirNode,
    ) -> Result<bool, FhirPathError> {
        let ctx = self.constraint_context(focus, focus_type, resource, root).await?;
        Ok(holds(&self.eval_in(expr, &ctx).await?))
    }
}

/// FHIR constraint semantics: only a single `false` fails. HL7's validator fails an empty
/// result too (`convertToBoolean`), but here empty also comes from functions the engine does
/// not evaluate (`memberOf`), so empty holds; the one published invariant that turns on an
/// empty comparison, per-1 (dates of different precisions), is decided natively as Java does.
fn holds(result: &Collection) -> bool {
    !matches!(result.iter().collect::<Vec<_>>().as_slice(), [FhirPathValue::Boolean(false, _, _)])
}

fn to_values(v: &FhirPathValue) -> Vec<FpValue> {
    let one = match v {
        FhirPathValue::Boolean(b, _, _) => FpValue::Boolean(*b),
        FhirPathValue::Integer(i, _, _) => FpValue::Integer(*i),
        FhirPathValue::Decimal(d, _, _) => FpValue::Decimal(d.to_string()),
        FhirPathValue::String(s, _, _) => FpValue::String(s.clone()),
        FhirPathValue::Date(d, _, _) => FpValue::Date(d.to_string()),
        FhirPathValue::DateTime(d, _, _) => FpValue::DateTime(d.to_string()),
        FhirPathValue::Time(t, _, _) => FpValue::Time(t.to_string()),
        FhirPathValue::Quantity { value, unit, .. } => FpValue::Quantity { value: value.to_string(), unit: unit.clone() },
        FhirPathValue::Resource(node, info, _) => {
            FpValue::Object { type_name: info.name.clone().unwrap_or_else(|| info.type_name.clone()), json: node.to_json() }
        }
        FhirPathValue::Collection(c) => return c.iter().flat_map(to_values).collect(),
        FhirPathValue::Empty => return Vec::new(),
    };
    vec![one]
}

/// The profile validator's invariants go through this engine. The walk prepares each root once
/// and names nodes by JSON Pointer ([`FhirPath::invariants_at`]). On the per-call path
/// (`invariant`, used where the walk has no pointer), `%rootResource` is the resource itself
/// unless the expression needs the whole root (`%rootResource`, `resolve()`): converting a large
/// Bundle per invariant would make Bundle validation quadratic.
impl crate::validate::profile::InvariantEngine for FhirPath {
    fn parses(&self, expr: &str) -> Option<bool> {
        Some(self.parse(expr).is_ok())
    }

    fn invariant(&self, expr: &str, focus: &Value, focus_type: &str, resource: &Value, root: &Value) -> Result<bool, InvariantError> {
        let needs_root = expr.contains("rootResource") || expr.contains("resolve()");
        let root = if needs_root { root } else { resource };
        FhirPath::invariant(self, expr, focus, focus_type, resource, root).map_err(engine_error)
    }

    fn prepare(&self, root: &Value) -> Option<Box<dyn std::any::Any>> {
        Some(Box::new(FhirPath::prepare(self, root)))
    }

    fn invariants_at(
        &self,
        prepared: &dyn std::any::Any,
        exprs: &[&str],
        focus: &str,
        focus_type: &str,
        resource: &str,
        root: &str,
    ) -> Result<Vec<Result<bool, InvariantError>>, InvariantError> {
        let prepared = prepared.downcast_ref::<Prepared>().ok_or(InvariantError::NotPrepared)?;
        let out = FhirPath::invariants_at(self, exprs, prepared, focus, focus_type, resource, root).map_err(engine_error)?;
        Ok(out.into_iter().map(|r| r.map_err(engine_error)).collect())
    }
}

fn engine_error(e: FhirPathError) -> InvariantError {
    InvariantError::Engine(Box::new(e))
}

/// Whether a quantity literal (`5 'mg'`) has a unit with a non-ASCII character.
fn non_ascii_unit(expr: &str) -> bool {
    let b = expr.as_bytes();
    let mut i = 0;
    let mut after_number = false;
    while i < b.len() {
        match b[i] {
            b'\'' => {
                let start = i + 1;
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                let end = i.min(b.len());
                if after_number && !b[start..end].is_ascii() {
                    return true;
                }
                after_number = false;
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
                after_number = false;
            }
            c if c.is_ascii_digit() => {
                while i + 1 < b.len() && (b[i + 1].is_ascii_digit() || b[i + 1] == b'.') {
                    i += 1;
                }
                after_number = true;
            }
            c if c.is_ascii_whitespace() => {}
            _ => after_number = false,
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod unit_guard {
    #[test]
    fn units_must_be_ascii() {
        assert!(super::non_ascii_unit("1 'm\u{0632}'"));
        assert!(!super::non_ascii_unit("value > 1 'mg' and name = '\u{0632}'"));
        assert!(!super::non_ascii_unit("1.5 'mm[Hg]'"));
    }
}
