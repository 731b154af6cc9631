#!/usr/bin/env node
// Independent FHIR R4 validator for mhg's tests: medplum's validateResource plus a small
// required-binding check. See ../README.md.
//
// Usage: node validate.mjs [--packages DIR] [--no-bindings] < in.ndjson > out.ndjson
//
// Input: NDJSON, one FHIR R4 resource (typically a transaction Bundle) per line.
// Output: one JSON line per input line, in order:
//   {"index": n, "resourceType": "...", "errors": [issue...], "warnings": [issue...],
//    "checked": [{"path": "...", "profile": "url"}...]}
//   issue = {"path": "Bundle.entry[0].resource.gender", "message": "...", "source": "medplum" |
//            "mhg-binding" | "harness", "profile"?: "url"}
// Messages never contain values from the resource (only element paths, property names, profile /
// value-set / extension URLs and constraint descriptions); the resources hold patient data.
// Exit status: 0 when every line was processed (whatever was found), 2 when it could not run.

import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import {
  crawlTypedValue,
  indexStructureDefinitionBundle,
  loadDataType,
  parseStructureDefinition,
  toTypedValue,
  validateResource,
} from '@medplum/core';

const INDEX_VERSION = 1;
const BASE_PACKAGE = 'hl7.fhir.r4.examples#4.0.1'; // official R4 definitions (hl7.fhir.r4.core is not on npm)
// Package priority when the same canonical URL is defined more than once.
const PACKAGE_PRIORITY = [BASE_PACKAGE, 'hl7.fhir.uv.ips#2.0.0', 'hl7.terminology.r4#7.0.1', 'hl7.fhir.uv.extensions.r4#5.3.0-ballot-tc1'];

// Errata in official R4 invariant expressions that medplum's own R4 definitions correct
// (without these, valid resources fail: bdl-8 on entries without fullUrl, tim-9 on Timing.repeat.when
// lists, app-4 names a code 'no-show' that does not exist).
const INVARIANT_FIXES = {
  'app-4': [
    "Appointment.cancelationReason.exists() implies (Appointment.status='no-show' or Appointment.status='cancelled')",
    "Appointment.cancelationReason.exists() implies (Appointment.status='noshow' or Appointment.status='cancelled')",
  ],
  'bdl-8': ["fullUrl.contains('/_history/').not()", "fullUrl.exists() implies fullUrl.contains('/_history/').not()"],
  'tim-9': [
    "offset.empty() or (when.exists() and ((when in ('C' | 'CM' | 'CD' | 'CV')).not()))",
    "offset.empty() or (when.exists() and when.select($this in ('C' | 'CM' | 'CD' | 'CV')).allFalse())",
  ],
};

function die(msg) {
  process.stderr.write(`validate.mjs: error: ${msg}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// Arguments and package location

const args = process.argv.slice(2);
let packagesDir = process.env.MHG_PACKAGES;
let checkBindings = true;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--packages') packagesDir = args[++i];
  else if (a === '--no-bindings') checkBindings = false;
  else if (a === '-h' || a === '--help') {
    process.stdout.write('usage: node validate.mjs [--packages DIR] [--no-bindings] < in.ndjson > out.ndjson\n');
    process.exit(0);
  } else die(`unknown argument ${a}`);
}
if (!packagesDir) {
  const cache = process.env.MHG_CACHE || (process.env.HOME && path.join(process.env.HOME, '.cache', 'mhg'));
  if (!cache) die('neither MHG_PACKAGES, MHG_CACHE nor HOME is set');
  packagesDir = path.join(cache, 'packages');
}
if (!fs.existsSync(path.join(packagesDir, BASE_PACKAGE, 'package', 'package.json'))) {
  die(`FHIR packages not found in ${packagesDir} (missing ${BASE_PACKAGE}); run tests/peers/setup.sh`);
}

// ---------------------------------------------------------------------------------------------
// Canonical-URL index of StructureDefinitions, ValueSets and CodeSystems in every cached package.
// Built once (about 1 s) and cached next to the packages, written atomically.

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

function packageRank(pkg) {
  const i = PACKAGE_PRIORITY.indexOf(pkg);
  return i < 0 ? PACKAGE_PRIORITY.length : i;
}

function loadIndex() {
  const pkgs = fs
    .readdirSync(packagesDir)
    .filter((d) => !d.startsWith('.') && fs.existsSync(path.join(packagesDir, d, 'package', 'package.json')))
    .sort((a, b) => packageRank(a) - packageRank(b) || a.localeCompare(b));
  const indexFile = path.join(packagesDir, `.mhg-medplum-index.v${INDEX_VERSION}.json`);
  try {
    const idx = readJson(indexFile);
    if (JSON.stringify(idx.packages) === JSON.stringify(pkgs)) return idx;
  } catch {
    // missing or stale: rebuild
  }
  const idx = { packages: pkgs, sd: {}, vs: {}, cs: {} };
  for (const pkg of pkgs) {
    const dir = path.join(packagesDir, pkg, 'package');
    for (const f of fs.readdirSync(dir)) {
      const m = /^(StructureDefinition|ValueSet|CodeSystem)-.*\.json$/.exec(f);
      if (!m) continue;
      let r;
      try {
        r = readJson(path.join(dir, f));
      } catch {
        continue;
      }
      if (!r?.url || r.resourceType !== m[1]) continue;
      const rel = path.join(pkg, 'package', f);
      if (r.resourceType === 'StructureDefinition') {
        (idx.sd[r.url] ||= []).push({ file: rel, type: r.type, kind: r.kind, derivation: r.derivation, name: r.name });
      } else if (r.resourceType === 'ValueSet') {
        (idx.vs[r.url] ||= []).push({ file: rel, version: r.version });
      } else {
        (idx.cs[r.url] ||= []).push({ file: rel, version: r.version, content: r.content });
      }
    }
  }
  const tmp = `${indexFile}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, JSON.stringify(idx));
    fs.renameSync(tmp, indexFile);
  } catch {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // ignore: the cache is an optimisation
    }
  }
  return idx;
}

const index = loadIndex();

function pickVersion(entries, version) {
  if (!entries?.length) return undefined;
  if (version) {
    const exact = entries.find((e) => e.version === version);
    if (exact) return exact;
  }
  return entries[0];
}

function splitCanonical(url) {
  const bar = url.indexOf('|');
  return bar < 0 ? [url, undefined] : [url.slice(0, bar), url.slice(bar + 1)];
}

// ---------------------------------------------------------------------------------------------
// Base R4 definitions from the official package (replacing medplum's bundled schema, which adds
// Medplum-specific elements such as Meta.project).

function fixInvariants(sd) {
  for (const el of sd.snapshot?.element ?? []) {
    for (const c of el.constraint ?? []) {
      const fix = INVARIANT_FIXES[c.key];
      if (fix && c.expression === fix[0]) c.expression = fix[1];
    }
  }
  return sd;
}

{
  const base = [];
  for (const [url, entries] of Object.entries(index.sd)) {
    const e = entries.find((x) => x.file.startsWith(BASE_PACKAGE + path.sep));
    if (!e) continue;
    const isBaseType = url === `http://hl7.org/fhir/StructureDefinition/${e.type}` && e.derivation !== 'constraint';
    const isSpecial = url.endsWith('/SimpleQuantity') || url.endsWith('/MoneyQuantity');
    if (e.derivation === 'specialization' || isBaseType || isSpecial) {
      if (e.kind === 'logical') continue;
      base.push(fixInvariants(readJson(path.join(packagesDir, e.file))));
    }
  }
  if (base.length < 150) die(`only ${base.length} base StructureDefinitions found in ${BASE_PACKAGE}`);
  try {
    indexStructureDefinitionBundle(base);
  } catch (e) {
    die(`loading base R4 StructureDefinitions failed: ${e.message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Profiles, loaded lazily on first use. medplum 4.5.2 cannot parse slicing with a 'profile'
// discriminator (IPS Bundle and DiagnosticReport use it); such slicings are dropped and reported.

const profileCache = new Map(); // url -> { sd, schema, notes[] } | { error }

const SUPPORTED_DISCRIMINATORS = new Set(['value', 'pattern', 'type']);

// Rewrites a profile so that medplum 4.5.2 can use it, and says what is then not checked.
// medplum's StructureDefinition parser keeps one slicing context at a time, so:
// - slicing inside a slice (IPS Composition.section:sectionProblems.entry:problem) and slicing of a
//   descendant of a sliced element (IPS Composition.section.extension:section-note) would be read as
//   extra slices of the outer slicing: both are dropped;
// - a contentReference inside a slice (IPS Composition.section:sectionX.section) is resolved to the
//   previous *slice* and becomes a bogus 0..0 slice: such elements are dropped (medplum only uses
//   slice contents to recognise slices, never validates them, so nothing is lost);
// - discriminator types other than value/pattern/type (IPS uses 'profile') make the parser throw:
//   that slicing is dropped;
// - canonical versions in type.profile/targetProfile ('...|4.0.1') are removed: medplum compares
//   them as plain strings and would flag every correctly typed reference.
function adaptProfile(sd) {
  const notes = [];
  let elements = sd.snapshot?.element ?? [];
  const strip = (u) => (typeof u === 'string' ? splitCanonical(u)[0] : u);
  for (const el of elements) {
    for (const t of el.type ?? []) {
      if (t.targetProfile) t.targetProfile = t.targetProfile.map(strip);
      if (t.profile) t.profile = t.profile.map(strip);
    }
  }
  const inSlice = (id) => String(id).split('.').slice(0, -1).some((seg) => seg.includes(':'));
  const dropped = new Set(); // ids of elements whose slicing is dropped (with their slices)
  const kept = []; // paths of sliced elements medplum will see
  for (const el of elements) {
    if (!el.slicing) continue;
    if (dropped.has(el.id) || [...dropped].some((d) => String(el.id).startsWith(d + ':'))) continue;
    const unsupported = (el.slicing.discriminator ?? []).some((d) => !SUPPORTED_DISCRIMINATORS.has(d.type));
    const underSliced = kept.some((p) => String(el.path).startsWith(p + '.'));
    if (inSlice(el.id) || unsupported || underSliced) {
      dropped.add(el.id);
      delete el.slicing;
      notes.push(`slicing at ${el.id} is not checked (unsupported by medplum)`);
    } else {
      kept.push(el.path);
    }
  }
  elements = elements.filter((el) => {
    const id = String(el.id);
    if ([...dropped].some((d) => id.startsWith(d + ':'))) return false;
    if (el.contentReference && id.includes(':')) return false;
    return true;
  });
  sd.snapshot.element = elements;
  return notes;
}

function getProfile(canonical) {
  const [url, version] = splitCanonical(canonical);
  if (profileCache.has(url)) return profileCache.get(url);
  let result;
  const entries = index.sd[url];
  if (!entries) {
    result = { error: 'profile not loaded (not in any cached package); not checked' };
  } else {
    const e = pickVersion(entries, version);
    const sd = fixInvariants(readJson(path.join(packagesDir, e.file)));
    const notes = sd.derivation === 'constraint' ? adaptProfile(sd) : [];
    try {
      loadDataType(sd);
    } catch (err) {
      result = { error: `profile could not be loaded by medplum (${err.message}); not checked` };
    }
    if (!result) {
      result = { sd, schema: parseStructureDefinition(sd), notes, type: sd.type };
    }
  }
  profileCache.set(url, result);
  return result;
}

// ---------------------------------------------------------------------------------------------
// Required-binding check (medplum does not check bindings at all). Only value sets that can be
// expanded from the cached packages are checked: compose.include of whole complete CodeSystems or
// of enumerated concepts, and included value sets. Filters, unknown or incomplete code systems make
// a value set unknown, and unknown value sets are skipped (listed in warnings once per resource).

const vsCache = new Map(); // url -> Set("system|code") or null (cannot expand)

function csCodes(system, version) {
  const e = pickVersion(index.cs[system], version);
  if (!e || e.content !== 'complete') return null;
  const cs = readJson(path.join(packagesDir, e.file));
  const codes = [];
  const walk = (concepts) => {
    for (const c of concepts ?? []) {
      codes.push(c.code);
      walk(c.concept);
    }
  };
  walk(cs.concept);
  return codes;
}

function expandValueSet(canonical, depth = 0) {
  const [url, version] = splitCanonical(canonical);
  const key = url;
  if (vsCache.has(key)) return vsCache.get(key);
  vsCache.set(key, null); // guards against cycles
  let result = null;
  const e = pickVersion(index.vs[url], version);
  if (e && depth < 10) {
    const vs = readJson(path.join(packagesDir, e.file));
    result = new Set();
    const includeInto = (inc, target) => {
      if (inc.filter?.length) return false;
      let set;
      if (inc.system) {
        set = new Set();
        if (inc.concept?.length) {
          for (const c of inc.concept) set.add(`${inc.system}|${c.code}`);
        } else {
          const codes = csCodes(inc.system, inc.version);
          if (!codes) return false;
          for (const c of codes) set.add(`${inc.system}|${c}`);
        }
      }
      for (const v of inc.valueSet ?? []) {
        const sub = expandValueSet(v, depth + 1);
        if (!sub) return false;
        set = set ? new Set([...set].filter((x) => sub.has(x))) : new Set(sub);
      }
      if (!set) return false;
      for (const x of set) target.add(x);
      return true;
    };
    const compose = vs.compose;
    if (!compose?.include?.length) {
      result = null;
    } else {
      for (const inc of compose.include) {
        if (!includeInto(inc, result)) {
          result = null;
          break;
        }
      }
      if (result && compose.exclude?.length) {
        for (const exc of compose.exclude) {
          const ex = new Set();
          if (!includeInto(exc, ex)) {
            result = null;
            break;
          }
          for (const x of ex) result.delete(x);
        }
      }
    }
  }
  vsCache.set(key, result);
  return result;
}

function codeInSet(set, system, code) {
  if (typeof code !== 'string') return false;
  if (system) return set.has(`${system}|${code}`);
  for (const x of set) if (x.endsWith(`|${code}`)) return true;
  return false;
}

// Checks medplum does not make, run over the same element tree medplum uses (base type or profile):
// - required bindings (see above);
// - references inside a Bundle: a urn:uuid/urn:oid or absolute reference must resolve to an entry
//   fullUrl (else warning), and the resolved resource's type must be one of the element's target
//   types (else error). medplum itself only checks relative references ("Patient/1", "Patient?x=y").
function extraIssues(resource, schema, ctx) {
  const errors = [];
  const warnings = [];
  const checkBinding = (v, vsUrl) => {
    const set = expandValueSet(vsUrl);
    const vsName = splitCanonical(vsUrl)[0];
    if (!set) {
      ctx.skippedVs.add(vsName);
      return;
    }
    const val = v.value;
    if (v.type === 'code') {
      const code = typeof val === 'string' ? val : val?.valueOf?.();
      if (typeof code === 'string' && !codeInSet(set, undefined, code)) {
        errors.push({ path: v.path, message: `code is not in the required value set ${vsName}`, source: 'mhg-binding' });
      }
    } else if (v.type === 'Coding') {
      if (val?.code !== undefined && !codeInSet(set, val.system, val.code)) {
        errors.push({ path: v.path, message: `Coding is not in the required value set ${vsName}`, source: 'mhg-binding' });
      }
    } else if (v.type === 'CodeableConcept') {
      const codings = (val?.coding ?? []).filter((c) => c?.code !== undefined);
      if (!codings.length) {
        warnings.push({ path: v.path, message: `no coding given for required value set ${vsName}`, source: 'mhg-binding' });
      } else if (!codings.some((c) => codeInSet(set, c.system, c.code))) {
        errors.push({ path: v.path, message: `no coding is in the required value set ${vsName}`, source: 'mhg-binding' });
      }
    }
  };
  const checkReference = (v, el) => {
    const ref = v.value?.reference;
    if (typeof ref !== 'string' || !ctx.fullUrls) return;
    if (!/^(urn:(uuid|oid):|[a-z][a-z0-9+.-]*:\/\/)/i.test(ref)) return; // relative: medplum checks the type
    const target = ctx.fullUrls.get(ref);
    if (!target) {
      if (/^urn:/i.test(ref)) {
        warnings.push({ path: v.path, message: 'urn reference does not resolve to any entry fullUrl in the Bundle', source: 'mhg-reference' });
      }
      return;
    }
    const allowed = targetTypes(el);
    if (allowed && !allowed.has(target) && !allowed.has('Resource')) {
      errors.push({
        path: v.path,
        message: `reference resolves to a ${target}, not one of the allowed target types ${[...allowed].sort().join(', ')}`,
        source: 'mhg-reference',
      });
    }
  };
  crawlTypedValue(
    toTypedValue(resource),
    {
      visitProperty(_parent, key, _path, propertyValues, s) {
        const el = s.elements[key];
        if (!el) return;
        const b = el.binding;
        const bind = checkBinding && b && b.strength === 'required' && b.valueSet;
        for (const pv of propertyValues) {
          for (const v of Array.isArray(pv) ? pv : [pv]) {
            if (!v || v.value === undefined || v.value === null) continue;
            if (bind && ctx.checkBindings) checkBinding(v, b.valueSet);
            if (v.type === 'Reference') checkReference(v, el);
          }
        }
      },
    },
    { schema, initialPath: schema.path }
  );
  return { errors, warnings };
}

// Allowed target resource types of a Reference element, or undefined when unconstrained/unknown.
function targetTypes(el) {
  const t = el.type?.find((x) => x.code === 'Reference');
  if (!t?.targetProfile?.length) return undefined;
  const types = new Set();
  for (const tp of t.targetProfile) {
    const url = splitCanonical(tp)[0];
    const m = /^http:\/\/hl7\.org\/fhir\/StructureDefinition\/([A-Za-z]+)$/.exec(url);
    if (m) {
      types.add(m[1]);
      continue;
    }
    const sd = index.sd[url]?.[0];
    if (!sd?.type) return undefined; // unknown profile: cannot tell
    types.add(sd.type);
  }
  return types;
}

// ---------------------------------------------------------------------------------------------
// Validation of one resource tree.

function medplumIssues(resource, sd) {
  try {
    return sd ? validateResource(resource, { profile: sd }) : validateResource(resource);
  } catch (e) {
    if (e?.outcome?.issue) return e.outcome.issue;
    return [{ severity: 'error', code: 'exception', details: { text: `validator exception (${e?.name ?? 'unknown'})` }, expression: [''], harness: true }];
  }
}

// Converts a medplum issue; returns undefined for issues to drop.
function toIssue(i, rewrite, profile) {
  let msg = i.details?.text ?? i.code ?? 'issue';
  let severity = i.severity === 'error' || i.severity === 'fatal' ? 'error' : 'warning';
  if (i.code === 'processing') msg = `${msg} (medplum could not evaluate it)`; // never pass on diagnostics
  const ref = /^Invalid reference: got "(.*)", expected (.*)$/.exec(msg);
  if (ref) {
    // medplum takes the text before the first '/' as the type: for urn:uuid and absolute references
    // that is not a type (and would leak the reference); those are checked by extraIssues instead.
    if (!/^[A-Z][A-Za-z]+$/.test(ref[1])) return undefined;
    const expected = [...ref[2].matchAll(/"([^"]*)"/g)].map((m) => splitCanonical(m[1])[0].replace(/^.*\//, ''));
    msg = `reference to a ${ref[1]}, not one of the allowed target types ${[...new Set(expected)].sort().join(', ')}`;
    severity = 'error'; // medplum reports it as a warning only for backwards compatibility
  }
  const out = { severity, path: rewrite(i.expression?.[0] ?? ''), message: msg, source: i.harness ? 'harness' : 'medplum' };
  if (profile) out.profile = profile;
  return out;
}

function collectFullUrls(bundle, map, depth = 0) {
  if (bundle?.resourceType !== 'Bundle' || !Array.isArray(bundle.entry) || depth > 5) return map;
  for (const e of bundle.entry) {
    const r = e?.resource;
    if (typeof e?.fullUrl === 'string' && typeof r?.resourceType === 'string') map.set(e.fullUrl, r.resourceType);
    if (r?.resourceType === 'Bundle') collectFullUrls(r, map, depth + 1);
  }
  return map;
}

function validateLine(resource) {
  const errors = [];
  const warnings = [];
  const info = [];
  const checked = [];
  const seen = new Set();
  // Issues are deduplicated on path + message: nested resources are validated both as part of their
  // parent and on their own, against base R4 and against each claimed profile.
  const add = (list, issue) => {
    const key = `${issue.path}\u0000${issue.message}`;
    if (seen.has(key)) return;
    seen.add(key);
    list.push(issue);
  };
  const addMedplum = (issues, rewrite, profile) => {
    for (const i of issues) {
      const x = toIssue(i, rewrite, profile);
      if (!x) continue;
      const { severity, ...issue } = x;
      add(severity === 'error' ? errors : warnings, issue);
    }
  };
  const ctx = {
    checkBindings,
    fullUrls: resource.resourceType === 'Bundle' ? collectFullUrls(resource, new Map()) : undefined,
    skippedVs: new Set(),
  };
  const addExtra = (res, schema, rewrite, prefix, profile) => {
    try {
      const b = extraIssues(res, schema, ctx);
      for (const x of b.errors) add(errors, { ...x, path: rewrite(x.path), ...(profile ? { profile } : {}) });
      for (const x of b.warnings) add(warnings, { ...x, path: rewrite(x.path), ...(profile ? { profile } : {}) });
    } catch {
      add(warnings, { path: prefix, message: 'binding/reference check failed on this resource', source: 'harness' });
    }
  };

  // prefix: FHIRPath-like location of `res` inside the line's root resource.
  const visit = (res, prefix, depth) => {
    const rt = res.resourceType;
    // medplum paths start with the type name; a few issues (conflicting choice types) carry only a
    // property name, which is then located at the resource.
    const rewrite = (p) => (p === rt || p?.startsWith(rt + '.') || p?.startsWith(rt + '[') ? prefix + p.slice(rt.length) : prefix);
    if (!isKnownType(rt)) {
      add(errors, { path: prefix, message: 'unknown resourceType', source: 'harness' });
      return;
    }
    // Base R4. For the root this also checks every nested resource's structure; nested resources
    // are validated again on their own so that their resource-level invariants are evaluated.
    addMedplum(medplumIssues(res), rewrite);
    addExtra(res, parseSchemaFor(rt), rewrite, prefix);
    for (const p of res.meta?.profile ?? []) {
      if (typeof p !== 'string') continue;
      const prof = getProfile(p);
      if (prof.error) {
        add(warnings, { path: prefix, message: prof.error, source: 'harness', profile: p });
        continue;
      }
      if (prof.type !== rt) {
        add(errors, { path: prefix, message: `claims a profile for type ${prof.type}`, source: 'harness', profile: p });
        continue;
      }
      checked.push({ path: prefix, profile: p });
      for (const n of prof.notes) info.push({ path: prefix, message: n, source: 'harness', profile: p });
      addMedplum(medplumIssues(res, prof.sd), rewrite, p);
      addExtra(res, prof.schema, rewrite, prefix, p);
    }
    if (rt === 'Bundle' && Array.isArray(res.entry) && depth < 5) {
      res.entry.forEach((e, i) => {
        const r = e?.resource;
        if (r && typeof r === 'object' && typeof r.resourceType === 'string') visit(r, `${prefix}.entry[${i}].resource`, depth + 1);
      });
    }
  };

  if (!resource || typeof resource !== 'object' || Array.isArray(resource)) {
    errors.push({ path: '', message: 'line is not a JSON object', source: 'harness' });
    return { errors, warnings, info, checked };
  }
  if (typeof resource.resourceType !== 'string') {
    errors.push({ path: '', message: 'missing resourceType', source: 'harness' });
    return { errors, warnings, info, checked };
  }
  visit(resource, resource.resourceType, 0);
  for (const vs of ctx.skippedVs) {
    info.push({ path: '', message: `required binding to ${vs} not checked (value set not expandable offline)`, source: 'mhg-binding' });
  }
  return { errors, warnings, info, checked };
}

const baseSchemas = new Map();
function parseSchemaFor(type) {
  let s = baseSchemas.get(type);
  if (!s) {
    const e = index.sd[`http://hl7.org/fhir/StructureDefinition/${type}`]?.[0];
    s = parseStructureDefinition(fixInvariants(readJson(path.join(packagesDir, e.file))));
    baseSchemas.set(type, s);
  }
  return s;
}
function isKnownType(type) {
  if (typeof type !== 'string') return false;
  const e = index.sd[`http://hl7.org/fhir/StructureDefinition/${type}`]?.[0];
  return !!e && e.kind === 'resource';
}

// ---------------------------------------------------------------------------------------------
// Main loop: strictly one output line per input line.

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
let n = 0;
for await (const line of rl) {
  const index = n++;
  let out;
  if (!line.trim()) {
    out = { index, errors: [{ path: '', message: 'empty input line', source: 'harness' }], warnings: [], info: [], checked: [] };
  } else {
    let resource;
    let parsed = false;
    try {
      resource = JSON.parse(line);
      parsed = true;
    } catch {
      // The JSON.parse message can quote input text: do not pass it on.
      out = { index, errors: [{ path: '', message: 'invalid JSON', source: 'harness' }], warnings: [], info: [], checked: [] };
    }
    if (parsed) {
      let r;
      try {
        r = validateLine(resource);
      } catch (e) {
        r = { errors: [{ path: '', message: `validator exception (${e?.name ?? 'unknown'})`, source: 'harness' }], warnings: [], info: [], checked: [] };
      }
      out = { index, resourceType: isKnownType(resource?.resourceType) ? resource.resourceType : undefined, ...r };
    }
  }
  if (!process.stdout.write(JSON.stringify(out) + '\n')) {
    await new Promise((resolve) => process.stdout.once('drain', resolve));
  }
}
