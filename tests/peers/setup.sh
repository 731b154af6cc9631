#!/usr/bin/env bash
# Prepare the peer validators: install the pinned node dependencies of tests/peers/medplum
# (npm ci, only when missing or not matching package-lock.json) and fetch the FHIR packages into
# the cache (fetch-packages.sh). Idempotent, safe to run concurrently, silent on success
# (pass -v to print what it does). Needs Node.js >= 20.19 with npm, and the npm registry
# the first time only.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MEDPLUM="$HERE/medplum"
VERBOSE=0
[ "${1:-}" = "-v" ] && VERBOSE=1

say() { [ "$VERBOSE" = 1 ] && echo "setup.sh: $*" >&2 || true; }
die() { echo "tests/peers/setup.sh: error: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || die "node not found on PATH (need Node.js >= 20.19, e.g. v20.20)"
command -v npm >/dev/null 2>&1 || die "npm not found on PATH"
node -e '
  const [a, b] = process.versions.node.split(".").map(Number);
  if (a < 20 || (a === 20 && b < 19)) { console.error("node " + process.version + " is too old: @medplum/core 4.5.2 needs ^20.19.0 || >=22.12.0"); process.exit(1); }
' || die "unsupported node version"

CACHE_ROOT="${MHG_CACHE:-${HOME:?set HOME or MHG_CACHE}/.cache/mhg}"
mkdir -p "$CACHE_ROOT" || die "cannot create $CACHE_ROOT"

# True when node_modules holds exactly the versions package-lock.json pins.
deps_ok() {
  (cd "$MEDPLUM" && node -e '
    const fs = require("fs");
    const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
    for (const [p, v] of Object.entries(lock.packages)) {
      if (!p) continue;
      let got;
      try { got = JSON.parse(fs.readFileSync(p + "/package.json", "utf8")).version; } catch { process.exit(1); }
      if (got !== v.version) process.exit(1);
    }
  ') 2>/dev/null
}

install_deps() {
  if deps_ok; then
    say "node dependencies already installed"
    return 0
  fi
  say "npm ci in $MEDPLUM"
  local log
  log="$(mktemp)"
  if ! (cd "$MEDPLUM" && npm ci --no-audit --no-fund --loglevel=error >"$log" 2>&1); then
    cat "$log" >&2
    rm -f "$log"
    die "npm ci failed in $MEDPLUM (is the npm registry reachable?)"
  fi
  rm -f "$log"
  deps_ok || die "npm ci finished but node_modules does not match package-lock.json"
}

# Serialise concurrent runs (several test binaries may call this at once): npm ci deletes
# node_modules first, so two at once would break each other.
exec 9>"$CACHE_ROOT/.setup.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9 || die "cannot lock $CACHE_ROOT/.setup.lock"
fi

install_deps

PKGS="$("$HERE/fetch-packages.sh")" || die "fetching FHIR packages failed"
say "FHIR packages in $PKGS"

# Build validate.mjs's canonical-URL index once, so that parallel test runs do not each build it,
# and prove the validator starts.
if ! node "$MEDPLUM/validate.mjs" --packages "$PKGS" </dev/null >/dev/null; then
  die "validate.mjs does not start"
fi
say "ready"
