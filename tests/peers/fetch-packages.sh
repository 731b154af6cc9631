#!/usr/bin/env bash
# Download the FHIR definition packages the peer validators need, with `npm pack`,
# into a cache directory outside the repository, unpacked:
#
#   ${MHG_CACHE:-$HOME/.cache/mhg}/packages/<name>#<version>/package/...
#
# Idempotent and fast when already cached (no network access then). Safe to run
# concurrently: each package is unpacked into a private temporary directory and
# moved into place with an atomic rename; a loser of the race just discards its copy.
#
# Prints the packages directory on stdout (and nothing else), so callers can do
#   PKGS="$(tests/peers/fetch-packages.sh)"
#
# Extra packages: pass NAME@VERSION arguments to fetch those instead of the defaults.
set -euo pipefail

DEFAULT_PACKAGES=(
  "hl7.fhir.uv.ips@2.0.0"
  "hl7.fhir.r4.examples@4.0.1"
  "hl7.terminology.r4@7.0.1"
  "hl7.fhir.uv.extensions.r4@5.3.0-ballot-tc1"
)

if [ "$#" -gt 0 ]; then
  PACKAGES=("$@")
else
  PACKAGES=("${DEFAULT_PACKAGES[@]}")
fi

CACHE_ROOT="${MHG_CACHE:-${HOME:?HOME is not set and MHG_CACHE is not set}/.cache/mhg}"
PKG_DIR="$CACHE_ROOT/packages"

die() { echo "fetch-packages.sh: error: $*" >&2; exit 1; }

command -v npm >/dev/null 2>&1 || die "npm not found on PATH (need Node.js 20 + npm)"
command -v tar >/dev/null 2>&1 || die "tar not found on PATH"
mkdir -p "$PKG_DIR" || die "cannot create $PKG_DIR"

fetch_one() {
  local spec="$1" name version dest tmp tgz
  name="${spec%@*}"
  version="${spec##*@}"
  [ -n "$name" ] && [ -n "$version" ] && [ "$name" != "$spec" ] || die "bad package spec '$spec' (want NAME@VERSION)"
  dest="$PKG_DIR/$name#$version"

  # Complete = the rename happened (the directory only ever appears fully populated).
  if [ -f "$dest/package/package.json" ]; then
    return 0
  fi

  tmp="$(mktemp -d "$PKG_DIR/.tmp.$name#$version.XXXXXX")"
  TMPS+=("$tmp")
  if ! (cd "$tmp" && npm pack --loglevel=error --pack-destination "$tmp" "$name@$version" >"$tmp/.npm-pack.out" 2>"$tmp/.npm-pack.err"); then
    cat "$tmp/.npm-pack.err" >&2 || true
    die "npm pack $name@$version failed (is the npm registry reachable? does the version exist? try: npm view $name versions)"
  fi
  tgz="$(find "$tmp" -maxdepth 1 -name '*.tgz' | head -n 1)"
  [ -n "$tgz" ] || die "npm pack $name@$version produced no tarball"
  mkdir -p "$tmp/unpacked"
  tar -xzf "$tgz" -C "$tmp/unpacked" || die "cannot unpack $tgz"
  [ -f "$tmp/unpacked/package/package.json" ] || die "$name@$version: tarball has no package/package.json"
  # Record provenance (tarball integrity) next to the content.
  (cd "$tmp" && sha512sum "$(basename "$tgz")") >"$tmp/unpacked/.tarball.sha512" 2>/dev/null || true

  # Atomic publish. If another process won the race, dest now exists and mv fails
  # (rename onto a non-empty directory); that is fine as long as it is complete.
  if [ -e "$dest" ] && [ ! -f "$dest/package/package.json" ]; then
    # A leftover from something that was not this script (we never create partial dests).
    rm -rf "$dest.stale.$$" && mv "$dest" "$dest.stale.$$" 2>/dev/null && rm -rf "$dest.stale.$$" || true
  fi
  if ! mv -T "$tmp/unpacked" "$dest" 2>/dev/null; then
    [ -f "$dest/package/package.json" ] || die "could not move $name@$version into $dest"
  fi
}

TMPS=()
cleanup() { local t; for t in "${TMPS[@]}"; do rm -rf "$t"; done; }
trap cleanup EXIT

# Clean up temp dirs from runs that were killed more than a day ago.
find "$PKG_DIR" -maxdepth 1 -name '.tmp.*' -mtime +1 -exec rm -rf {} + 2>/dev/null || true

for spec in "${PACKAGES[@]}"; do
  fetch_one "$spec"
done

echo "$PKG_DIR"
