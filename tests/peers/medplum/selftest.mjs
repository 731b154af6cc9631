#!/usr/bin/env node
// Self-test of validate.mjs: runs it once over the IPS 2.0.0 examples from the package cache plus
// hand-made good and broken resources, and checks the verdicts. Exit 0 when all hold.
// Usage: node selftest.mjs [--packages DIR] [--verbose]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const verbose = args.includes('--verbose');
let packagesDir = process.env.MHG_PACKAGES;
const pi = args.indexOf('--packages');
if (pi >= 0) packagesDir = args[pi + 1];
packagesDir ||= path.join(process.env.MHG_CACHE || path.join(process.env.HOME, '.cache', 'mhg'), 'packages');
const exampleDir = path.join(packagesDir, 'hl7.fhir.uv.ips#2.0.0', 'package', 'example');
if (!fs.existsSync(exampleDir)) {
  console.error(`selftest: ${exampleDir} missing; run tests/peers/setup.sh`);
  process.exit(2);
}
const example = (f) => JSON.parse(fs.readFileSync(path.join(exampleDir, f), 'utf8'));
const clone = (x) => JSON.parse(JSON.stringify(x));

const IPS = 'http://hl7.org/fhir/uv/ips/StructureDefinition/';
const PAT = 'urn:uuid:3f2b6c1e-8a4d-4f0e-9b7a-2c5d8e1f4a60';
const IMM = 'urn:uuid:7c9e2d4b-1f3a-4e6b-8d2c-5a7f9e0b3c14';
const SECRET = 'Zyxwquorth'; // family name: must never appear in the output

function transactionBundle() {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: PAT,
        resource: {
          resourceType: 'Patient',
          meta: { profile: [IPS + 'Patient-uv-ips'] },
          identifier: [{ system: 'urn:oid:2.16.840.1.113883.2.4.6.3', value: '999999990' }],
          name: [{ family: SECRET, given: ['Anna'] }],
          gender: 'female',
          birthDate: '1980-02-29',
        },
        request: { method: 'PUT', url: 'Patient?identifier=urn:oid:2.16.840.1.113883.2.4.6.3|999999990' },
      },
      {
        fullUrl: IMM,
        resource: {
          resourceType: 'Immunization',
          meta: { profile: [IPS + 'Immunization-uv-ips'] },
          identifier: [{ system: 'urn:ietf:rfc:3986', value: 'urn:uuid:0d6f1c52-3b1e-4a8f-9e27-6b4c1d2e3f70' }],
          status: 'completed',
          vaccineCode: {
            coding: [
              { system: 'http://hl7.org/fhir/sid/cvx', code: '140', display: 'Influenza, seasonal, injectable, preservative free' },
              { system: 'http://snomed.info/sct', code: '1181000221105', display: 'Influenza virus antigen only vaccine product' },
            ],
          },
          patient: { reference: PAT },
          occurrenceDateTime: '2024-10-01T10:00:00+02:00',
          primarySource: true,
        },
        request: { method: 'PUT', url: 'Immunization?identifier=urn:ietf:rfc:3986|urn:uuid:0d6f1c52-3b1e-4a8f-9e27-6b4c1d2e3f70' },
      },
    ],
  };
}

const cases = []; // { name, resource | raw, expect(out) -> string | undefined (failure reason) }
const noErrors = (o) => (o.errors.length ? `unexpected errors: ${JSON.stringify(o.errors)}` : undefined);
const noErrorsOrWarnings = (o) => noErrors(o) ?? (o.warnings.length ? `unexpected warnings: ${JSON.stringify(o.warnings)}` : undefined);
const hasError = (pathRe, msgRe, source) => (o) =>
  o.errors.some((e) => pathRe.test(e.path) && msgRe.test(e.message) && (!source || e.source === source))
    ? undefined
    : `expected error ${pathRe} ${msgRe} ${source ?? ''}; got ${JSON.stringify(o.errors)}`;
const hasWarning = (pathRe, msgRe) => (o) =>
  o.warnings.some((e) => pathRe.test(e.path) && msgRe.test(e.message)) ? undefined : `expected warning ${pathRe} ${msgRe}; got ${JSON.stringify(o.warnings)}`;
const all = (...fs) => (o) => fs.map((f) => f(o)).find((x) => x);

// 1. Every IPS example must pass (no errors, no warnings).
for (const f of fs.readdirSync(exampleDir).filter((f) => f.endsWith('.json')).sort()) {
  cases.push({ name: `ips example ${f}`, resource: example(f), expect: noErrorsOrWarnings });
}

// 2. Broken variants of IPS examples.
{
  const p = example('Patient-66033.json');
  p.gender = 'xx';
  cases.push({ name: 'Patient gender xx', resource: p, expect: hasError(/^Patient\.gender$/, /required value set .*administrative-gender/, 'mhg-binding') });
}
{
  const p = example('Patient-66033.json');
  p.foo = 'bar';
  cases.push({ name: 'Patient unknown property', resource: p, expect: hasError(/^Patient\.foo$/, /Invalid additional property/) });
}
{
  const p = example('Patient-66033.json');
  delete p.name;
  cases.push({ name: 'IPS Patient without name', resource: p, expect: hasError(/^Patient\.name$/, /Missing required property/) });
}
{
  const p = example('Patient-66033.json');
  p.birthDate = '1998-02-30T';
  cases.push({ name: 'Patient bad birthDate', resource: p, expect: hasError(/^Patient\.birthDate$/, /Invalid date format/) });
}
{
  const o = example('Observation-hemoglobin.json');
  delete o.status;
  cases.push({ name: 'Observation without status', resource: o, expect: hasError(/^Observation\.status$/, /Missing required property/) });
}
{
  const o = example('Observation-hemoglobin.json');
  o.status = 'done';
  cases.push({ name: 'Observation status not in value set', resource: o, expect: hasError(/^Observation\.status$/, /observation-status/, 'mhg-binding') });
}
{
  const o = example('Observation-hemoglobin.json');
  o.dataAbsentReason = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'unknown' }] };
  cases.push({ name: 'Observation obs-6 (value and dataAbsentReason)', resource: o, expect: hasError(/^Observation$/, /obs-6/) });
}
{
  const i = example('Immunization-75680.json');
  delete i.vaccineCode;
  cases.push({ name: 'Immunization without vaccineCode', resource: i, expect: hasError(/^Immunization\.vaccineCode$/, /Missing required property/) });
}
{
  const i = example('Immunization-75680.json');
  i.meta.profile.push('http://example.org/fhir/StructureDefinition/not-loaded');
  cases.push({ name: 'unknown profile is a warning', resource: i, expect: all(noErrors, hasWarning(/^Immunization$/, /profile not loaded/)) });
}
{
  const c = example('Composition-composition-minimal.json');
  c.section = c.section.filter((s) => s.code.coding[0].code !== '11450-4');
  cases.push({ name: 'IPS Composition without problems section', resource: c, expect: hasError(/^Composition\.section$/, /sectionProblems/) });
}

// 3. Hand-written transaction Bundle like the gateway's.
cases.push({
  name: 'transaction Bundle: IPS Patient + Immunization (CVX + SNOMED)',
  resource: transactionBundle(),
  expect: all(noErrorsOrWarnings, (o) =>
    o.checked.length === 2 ? undefined : `expected 2 profiles checked, got ${JSON.stringify(o.checked)}`
  ),
});
{
  const b = transactionBundle();
  b.entry[1].resource.patient.reference = IMM; // points at the Immunization itself
  cases.push({ name: 'Bundle: reference to wrong type', resource: b, expect: hasError(/^Bundle\.entry\[1\]\.resource\.patient$/, /resolves to a Immunization/, 'mhg-reference') });
}
{
  const b = transactionBundle();
  b.entry[1].resource.patient.reference = 'urn:uuid:00000000-0000-4000-8000-000000000000';
  cases.push({ name: 'Bundle: dangling urn:uuid', resource: b, expect: hasWarning(/^Bundle\.entry\[1\]\.resource\.patient$/, /does not resolve/) });
}
{
  const b = transactionBundle();
  b.entry[1].resource.patient.reference = 'Practitioner/1';
  cases.push({ name: 'Bundle: relative reference to wrong type', resource: b, expect: hasError(/^Bundle\.entry\[1\]\.resource\.patient$/, /reference to a Practitioner/) });
}
{
  const b = transactionBundle();
  b.entry[0].resource.gender = 'xx';
  delete b.entry[1].resource.vaccineCode;
  b.entry[1].request.method = 'PATCHX';
  delete b.entry[0].resource.birthDate;
  cases.push({
    name: 'Bundle: errors inside entries',
    resource: b,
    expect: all(
      hasError(/^Bundle\.entry\[0\]\.resource\.gender$/, /administrative-gender/),
      hasError(/^Bundle\.entry\[1\]\.resource\.vaccineCode$/, /Missing required property/),
      hasError(/^Bundle\.entry\[1\]\.request\.method$/, /http-verb/),
      hasError(/^Bundle\.entry\[0\]\.resource\.birthDate$/, /Missing required property/)
    ),
  });
}
{
  const b = transactionBundle();
  b.type = 'transactoin';
  delete b.entry[0].request;
  cases.push({
    name: 'Bundle: bad type, entry without request',
    resource: b,
    expect: all(hasError(/^Bundle\.type$/, /bundle-type/), hasError(/^Bundle$/, /bdl-3/)),
  });
}
{
  const b = transactionBundle();
  b.entry[1].resource.extension = [{ url: 'http://example.org/x', valueString: 'a', valueBoolean: true }];
  // medplum only warns about two value[x] properties (see README)
  cases.push({ name: 'Bundle: extension with two values (warning only)', resource: b, expect: all(noErrors, hasWarning(/^Bundle\.entry\[1\]\.resource$/, /Conflicting choice of type/)) });
}
{
  const b = transactionBundle();
  b.entry[1].resource.extension = [{ valueString: 'a' }];
  cases.push({ name: 'Bundle: extension without url', resource: b, expect: hasError(/^Bundle\.entry\[1\]\.resource\.extension\[0\]\.url$/, /Missing required property/) });
}

// 4. Lines that are not resources.
cases.push({ name: 'invalid JSON', raw: `{"resourceType": "Patient", "name": [{"family": "${SECRET}"`, expect: hasError(/^$/, /invalid JSON/) });
cases.push({ name: 'unknown resourceType', resource: { resourceType: 'Patientx' }, expect: hasError(/^.*$/, /unknown resourceType/) });

const input = cases.map((c) => (c.raw ?? JSON.stringify(c.resource)) + '\n').join('');
const t0 = Date.now();
const r = spawnSync(process.execPath, [path.join(here, 'validate.mjs'), '--packages', packagesDir], { input, encoding: 'utf8', maxBuffer: 1 << 28 });
const ms = Date.now() - t0;
if (r.status !== 0) {
  console.error(`selftest: validate.mjs exited ${r.status}: ${r.stderr}`);
  process.exit(1);
}
const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
let failed = 0;
if (lines.length !== cases.length) {
  console.error(`selftest: ${cases.length} lines in, ${lines.length} out`);
  failed++;
}
if (r.stdout.includes(SECRET) || r.stderr.includes(SECRET)) {
  console.error('selftest: FAIL resource content leaked into the output');
  failed++;
}
cases.forEach((c, i) => {
  const o = lines[i];
  const why = o?.index !== i ? `index ${o?.index} != ${i}` : c.expect(o);
  if (why) {
    failed++;
    console.error(`FAIL ${c.name}: ${why}`);
  } else if (verbose) {
    console.log(`ok   ${c.name}${o.errors.length ? ` -> ${o.errors.map((e) => `${e.path}: ${e.message}`).join(' | ')}` : ''}`);
  }
});
console.log(`selftest: ${cases.length - failed}/${cases.length} passed, ${cases.length} lines validated in ${ms} ms`);
process.exit(failed ? 1 : 0);
