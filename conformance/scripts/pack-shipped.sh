#!/usr/bin/env bash
# Builds the definition packages the gateway ships (conformance/packages/*.tgz) from the
# official npm packages, trimmed to what validation needs:
#   - StructureDefinitions (snapshot only: no differential, narrative, mappings, or
#     definition/comment/requirements prose), ValueSets and CodeSystems (no narrative,
#     definitions or designations), SearchParameters (code, base, type, expression,
#     components: no prose or XPath), minified;
#   - everything else (examples, OperationDefinitions, ...) dropped, except IPS's package/example/,
#     kept verbatim for the examples test.
# Sources are fetched with tests/peers/fetch-packages.sh (npm pack) into the cache. The output
# is reproducible: files are written sorted and `npm pack` fixes archive timestamps.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="$("$ROOT/tests/peers/fetch-packages.sh")"
OUT="$ROOT/conformance/packages"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
for spec in "hl7.fhir.r4.examples#4.0.1" "hl7.terminology.r4#7.0.1" "hl7.fhir.uv.extensions.r4#5.3.0-ballot-tc1" "hl7.fhir.uv.ips#2.0.0"; do
  python3 "$HERE/trim-package.py" "$CACHE/$spec/package" "$WORK/$spec/package"
  (cd "$WORK/$spec/package" && npm pack --silent --pack-destination "$WORK" >/dev/null)
  name="${spec%%#*}"; version="${spec##*#}"
  mv "$WORK/$name-$version.tgz" "$OUT/$name-$version.tgz"
done
(cd "$OUT" && sha256sum ./*.tgz)
