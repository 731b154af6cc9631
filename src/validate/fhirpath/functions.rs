//! The FHIR-specific functions whose octofhir versions do not fit a gateway validator, registered
//! over them by name:
//!
//! - `resolve()`: octofhir finds `Type/id` in a Bundle by `resource.id` only; ours also finds
//!   entries by `fullUrl` (`urn:uuid:...`, absolute URLs, and `Type/id` at the end of one), and
//!   `#id` in the `contained` of `%resource`. It never goes to a server.
//! - `memberOf(valueSet)`: through the validator's [`Terminology`] callback, empty without one.
//! - `all()`, `allTrue()`, `anyTrue()`, `isDistinct()`, `subsetOf()`, `supersetOf()`: octofhir's
//!   implementations answer an empty input correctly (`{}.all(x)` is true), but their metadata
//!   tells the evaluator to return empty before calling them. Re-registered with that flag off.
//! - `conformsTo(profile)`: through the validator's [`Conformance`] callback (an unknown profile
//!   is an error), empty without one.
//!
//! No I/O here; the callbacks decide what they do.

use std::sync::Arc;

use async_trait::async_trait;
use octofhir_fhirpath::ast::ExpressionNode;
use octofhir_fhirpath::core::node::FhirNode;
use octofhir_fhirpath::core::{Collection, FhirPathValue};
use octofhir_fhirpath::evaluator::function_registry::{
    ArgumentEvaluationStrategy, EmptyPropagation, FunctionCategory, FunctionEvaluatorWrapper, FunctionMetadata, FunctionParameter,
    FunctionRegistry, FunctionSignature, LazyFunctionEvaluator, NullPropagationStrategy, ProviderPureFunctionEvaluator,
    PureFunctionEvaluator,
};
use octofhir_fhirpath::evaluator::{AsyncNodeEvaluator, EvaluationContext, EvaluationResult};
use serde_json::Value;

/// Value set membership, answered by the validator's terminology (local CodeSystems and
/// ValueSets). `None`: the value set is not known, and `memberOf()` returns empty.
pub trait Terminology: Send + Sync {
    fn member_of(&self, system: &str, code: &str, value_set: &str) -> Option<bool>;
}

/// Profile conformance for `conformsTo()`, answered by the validator. `None`: the profile is not
/// known, which makes `conformsTo()` an error (as the FHIR spec says). Without a callback at all,
/// `conformsTo()` returns empty.
pub trait Conformance: Send + Sync {
    fn conforms_to(&self, resource: &Value, profile: &str) -> Option<bool>;
}

fn metadata(name: &str, params: &[&str], input: &str, ret: &str) -> FunctionMetadata {
    FunctionMetadata {
        name: name.to_owned(),
        description: format!("{name} (mhg)"),
        signature: FunctionSignature {
            input_type: input.to_owned(),
            parameters: params
                .iter()
                .map(|p| FunctionParameter {
                    name: (*p).to_owned(),
                    parameter_type: vec!["String".to_owned()],
                    optional: false,
                    is_expression: false,
                    description: String::new(),
                    default_value: None,
                })
                .collect(),
            return_type: ret.to_owned(),
            polymorphic: true,
            min_params: params.len(),
            max_params: Some(params.len()),
        },
        argument_evaluation: ArgumentEvaluationStrategy::Current,
        null_propagation: NullPropagationStrategy::Focus,
        empty_propagation: EmptyPropagation::Propagate,
        deterministic: true,
        category: FunctionCategory::Utility,
        requires_terminology: false,
        requires_model: false,
    }
}

fn ok(values: Vec<FhirPathValue>) -> octofhir_fhirpath::Result<EvaluationResult> {
    Ok(EvaluationResult { value: Collection::from_values(values) })
}

fn string_arg(args: &[Collection]) -> Option<String> {
    match args.first()?.first()? {
        FhirPathValue::String(s, _, _) => Some(s.clone()),
        _ => None,
    }
}

fn node_of(value: &FhirPathValue) -> Option<&FhirNode> {
    match value {
        FhirPathValue::Resource(node, _, _) => Some(node),
        _ => None,
    }
}

pub struct Resolve {
    metadata: FunctionMetadata,
}

impl Resolve {
    pub fn create() -> Arc<dyn ProviderPureFunctionEvaluator> {
        Arc::new(Resolve { metadata: metadata("resolve", &[], "Reference|uri|canonical|url", "Resource") })
    }
}

/// The resource a reference names: a Bundle entry of `root` (by fullUrl, or by `Type/id`), or a
/// contained resource of `resource` (`#id`).
fn find(reference: &str, resource: Option<&FhirNode>, root: Option<&FhirNode>) -> Option<FhirNode> {
    if let Some(id) = reference.strip_prefix('#') {
        let contained = resource?.get("contained")?.as_array()?;
        return contained.iter().find(|c| c.get("id").and_then(FhirNode::as_str) == Some(id)).cloned();
    }
    let typed_id = reference.rsplit_once("/_history/").map_or(reference, |(r, _)| r);
    let relative = {
        let mut parts = typed_id.rsplit('/');
        match (parts.next(), parts.next()) {
            (Some(id), Some(ty)) if ty.starts_with(|c: char| c.is_ascii_uppercase()) => Some((ty, id)),
            _ => None,
        }
    };
    for candidate in [root, resource].into_iter().flatten() {
        if candidate.get("resourceType").and_then(FhirNode::as_str) == Some("Bundle")
            && let Some(entries) = candidate.get("entry").and_then(FhirNode::as_array)
        {
            if let Some(hit) = entries.iter().find(|e| e.get("fullUrl").and_then(FhirNode::as_str) == Some(reference)) {
                return hit.get("resource").cloned();
            }
            if let Some((ty, id)) = relative {
                let suffix = format!("/{ty}/{id}");
                let hit = entries.iter().find(|e| {
                    let r = e.get("resource");
                    let by_id = r.and_then(|r| r.get("resourceType")).and_then(FhirNode::as_str) == Some(ty)
                        && r.and_then(|r| r.get("id")).and_then(FhirNode::as_str) == Some(id);
                    by_id || e.get("fullUrl").and_then(FhirNode::as_str).is_some_and(|u| u.ends_with(&suffix))
                });
                if let Some(hit) = hit {
                    return hit.get("resource").cloned();
                }
            }
        } else if let Some((ty, id)) = relative
            && candidate.get("resourceType").and_then(FhirNode::as_str) == Some(ty)
            && candidate.get("id").and_then(FhirNode::as_str) == Some(id)
        {
            return Some(candidate.clone());
        }
    }
    None
}

#[async_trait]
impl ProviderPureFunctionEvaluator for Resolve {
    async fn evaluate(
        &self,
        input: Collection,
        _args: Vec<Collection>,
        context: &EvaluationContext,
    ) -> octofhir_fhirpath::Result<EvaluationResult> {
        let resource = context.get_variable("resource");
        let root = context.get_variable("rootResource").or_else(|| resource.clone());
        let mut out = Vec::new();
        for item in input.iter() {
            let reference = match item {
                FhirPathValue::Resource(node, _, _) => node.get("reference").and_then(FhirNode::as_str).map(str::to_owned),
                FhirPathValue::String(s, _, _) => Some(s.clone()),
                _ => None,
            };
            let Some(reference) = reference else { continue };
            if let Some(found) = find(&reference, resource.as_ref().and_then(node_of), root.as_ref().and_then(node_of)) {
                let ty = found.get("resourceType").and_then(FhirNode::as_str).unwrap_or("Resource").to_owned();
                let info = context
                    .get_or_fetch_type_info(&ty)
                    .await
                    .unwrap_or_else(|| Arc::new(octofhir_fhirpath::core::model_provider::TypeInfo::new_complex(&ty)));
                out.push(FhirPathValue::Resource(found, info, None));
            }
        }
        ok(out)
    }

    fn metadata(&self) -> &FunctionMetadata {
        &self.metadata
    }
}

pub struct MemberOf {
    metadata: FunctionMetadata,
    terminology: Option<Arc<dyn Terminology>>,
}

impl MemberOf {
    pub fn create(terminology: Option<Arc<dyn Terminology>>) -> Arc<dyn ProviderPureFunctionEvaluator> {
        Arc::new(MemberOf { metadata: metadata("memberOf", &["valueSet"], "Any", "Boolean"), terminology })
    }
}

/// (system, code) pairs of a code, Coding or CodeableConcept.
fn codings(value: &FhirPathValue) -> Vec<(String, String)> {
    let pair = |n: &FhirNode| {
        Some((
            n.get("system").and_then(FhirNode::as_str).unwrap_or_default().to_owned(),
            n.get("code")?.as_str()?.to_owned(),
        ))
    };
    match value {
        FhirPathValue::String(code, _, _) => vec![(String::new(), code.clone())],
        FhirPathValue::Resource(node, _, _) => match node.get("coding").and_then(FhirNode::as_array) {
            Some(list) => list.iter().filter_map(pair).collect(),
            None => pair(node).into_iter().collect(),
        },
        _ => Vec::new(),
    }
}

#[async_trait]
impl ProviderPureFunctionEvaluator for MemberOf {
    async fn evaluate(
        &self,
        input: Collection,
        args: Vec<Collection>,
        _context: &EvaluationContext,
    ) -> octofhir_fhirpath::Result<EvaluationResult> {
        let (Some(tx), Some(vs)) = (&self.terminology, string_arg(&args)) else {
            return ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in input.iter() {
            let answers: Vec<Option<bool>> = codings(item).iter().map(|(s, c)| tx.member_of(s, c, &vs)).collect();
            if answers.contains(&Some(true)) {
                out.push(FhirPathValue::boolean(true));
            } else if !answers.is_empty() && answers.iter().all(|a| *a == Some(false)) {
                out.push(FhirPathValue::boolean(false));
            }
        }
        ok(out)
    }

    fn metadata(&self) -> &FunctionMetadata {
        &self.metadata
    }
}

pub struct ConformsTo {
    metadata: FunctionMetadata,
    conformance: Option<Arc<dyn Conformance>>,
}

impl ConformsTo {
    pub fn create(conformance: Option<Arc<dyn Conformance>>) -> Arc<dyn ProviderPureFunctionEvaluator> {
        Arc::new(ConformsTo { metadata: metadata("conformsTo", &["profile"], "Resource", "Boolean"), conformance })
    }
}

#[async_trait]
impl ProviderPureFunctionEvaluator for ConformsTo {
    async fn evaluate(
        &self,
        input: Collection,
        args: Vec<Collection>,
        _context: &EvaluationContext,
    ) -> octofhir_fhirpath::Result<EvaluationResult> {
        let (Some(check), Some(profile)) = (&self.conformance, string_arg(&args)) else {
            return ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in input.iter() {
            if let Some(node) = node_of(item) {
                let answer = check.conforms_to(&node.to_json(), &profile).ok_or_else(|| {
                    octofhir_fhirpath::FhirPathError::evaluation_error(
                        octofhir_fhirpath::core::error_code::FP0054,
                        "conformsTo(): the profile is not known",
                    )
                })?;
                out.push(FhirPathValue::boolean(answer));
            }
        }
        ok(out)
    }

    fn metadata(&self) -> &FunctionMetadata {
        &self.metadata
    }
}

/// Functions that must see an empty input (`{}.all(x)` = true, `{}.anyTrue()` = false).
const ANSWER_EMPTY_INPUT: [&str; 6] = ["all", "allTrue", "anyTrue", "isDistinct", "subsetOf", "supersetOf"];

/// Re-registers [`ANSWER_EMPTY_INPUT`] so that the evaluator calls them on an empty input.
pub fn answer_empty_input(registry: &mut FunctionRegistry) {
    for name in ANSWER_EMPTY_INPUT {
        match registry.get_function_wrapper(name).cloned() {
            Some(FunctionEvaluatorWrapper::Lazy(inner)) => {
                let metadata = called_on_empty(inner.metadata());
                registry.register_lazy_function(Arc::new(CalledOnEmpty { inner, metadata }));
            }
            Some(FunctionEvaluatorWrapper::Pure(inner)) => registry.register_pure_function(pure_called_on_empty(inner)),
            _ => {}
        }
    }
}

fn called_on_empty(m: &FunctionMetadata) -> FunctionMetadata {
    FunctionMetadata { null_propagation: NullPropagationStrategy::None, ..m.clone() }
}

fn pure_called_on_empty(inner: Arc<dyn PureFunctionEvaluator>) -> Arc<dyn PureFunctionEvaluator> {
    let metadata = called_on_empty(inner.metadata());
    Arc::new(CalledOnEmpty { inner, metadata })
}

/// An octofhir function with its metadata changed, otherwise itself.
struct CalledOnEmpty<T: ?Sized> {
    inner: Arc<T>,
    metadata: FunctionMetadata,
}

#[async_trait]
impl LazyFunctionEvaluator for CalledOnEmpty<dyn LazyFunctionEvaluator> {
    async fn evaluate_borrowed(
        &self,
        input: Collection,
        context: &EvaluationContext,
        args: &[ExpressionNode],
        evaluator: AsyncNodeEvaluator<'_>,
    ) -> octofhir_fhirpath::Result<EvaluationResult> {
        self.inner.evaluate_borrowed(input, context, args, evaluator).await
    }

    async fn evaluate(
        &self,
        input: Collection,
        context: &EvaluationContext,
        args: Vec<ExpressionNode>,
        evaluator: AsyncNodeEvaluator<'_>,
    ) -> octofhir_fhirpath::Result<EvaluationResult> {
        self.inner.evaluate(input, context, args, evaluator).await
    }

    fn metadata(&self) -> &FunctionMetadata {
        &self.metadata
    }
}

#[async_trait]
impl PureFunctionEvaluator for CalledOnEmpty<dyn PureFunctionEvaluator> {
    fn prepare(&self, args: &[Collection]) -> Option<Arc<dyn PureFunctionEvaluator>> {
        self.inner.prepare(args).map(pure_called_on_empty)
    }

    fn supports_sync(&self) -> bool {
        self.inner.supports_sync()
    }

    fn evaluate_sync(&self, input: Collection, args: Vec<Collection>) -> octofhir_fhirpath::Result<EvaluationResult> {
        self.inner.evaluate_sync(input, args)
    }

    fn evaluate_sync_borrowed(&self, input: Collection, args: &[Collection]) -> octofhir_fhirpath::Result<EvaluationResult> {
        self.inner.evaluate_sync_borrowed(input, args)
    }

    async fn evaluate(&self, input: Collection, args: Vec<Collection>) -> octofhir_fhirpath::Result<EvaluationResult> {
        self.inner.evaluate(input, args).await
    }

    fn metadata(&self) -> &FunctionMetadata {
        &self.metadata
    }
}
