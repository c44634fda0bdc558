#!/usr/bin/env bash
# Re-fetches the console's front-end libraries from the npm registry at the
# pinned versions below, into console/static/vendor/<package>/, with their
# licence files. Each tarball's URL is read from the package version's
# registry metadata, and the tarball is checked against that metadata's
# dist.integrity (sha512) before anything is unpacked. The files are
# committed and embedded with go:embed: nothing is fetched at build or run
# time, and the console works with no internet.
#
# To move to another version, change the pin, run this script, and commit
# what changed under console/static/vendor/.
set -euo pipefail

cd "$(dirname "$0")/.."
vendor=console/static/vendor
registry=https://registry.npmjs.org

# package@version, then the files to keep from the tarball's package/ folder.
pins=(
  "htmx.org@2.0.4 dist/htmx.min.js LICENSE"
  # The parser editor: CodeMirror 5 runs as plain scripts (no bundler, no
  # ES modules), its Go mode included; see docs/console.md.
  "codemirror@5.65.18 lib/codemirror.js lib/codemirror.css mode/go/go.js LICENSE"
  # The asset detail's chart of messages and lag: uPlot's IIFE build is a
  # plain script (window.uPlot), drawn on a canvas, styled by its own CSS.
  "uplot@1.6.32 dist/uPlot.iife.min.js dist/uPlot.min.css LICENSE"
)

log() { printf 'fetch-console-assets: %s\n' "$*" >&2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for pin in "${pins[@]}"; do
  read -r spec files <<<"$pin"
  pkg=${spec%@*} ver=${spec##*@}
  log "$pkg $ver"
  curl -fsSL "$registry/$pkg/$ver" -o "$tmp/meta.json"
  read -r tarball integrity < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["dist"]
print(d["tarball"], d["integrity"])' "$tmp/meta.json")
  case "$integrity" in
    sha512-*) ;;
    *) log "$pkg $ver: registry gives no sha512 integrity ($integrity)"; exit 1 ;;
  esac
  case "$tarball" in
    "$registry"/*) ;;
    *) log "$pkg $ver: tarball $tarball is not on $registry"; exit 1 ;;
  esac
  curl -fsSL "$tarball" -o "$tmp/pkg.tgz"
  got="sha512-$(openssl dgst -sha512 -binary "$tmp/pkg.tgz" | base64 -w0)"
  if [ "$got" != "$integrity" ]; then
    log "$pkg $ver: tarball integrity $got does not match the registry's $integrity"
    exit 1
  fi
  rm -rf "$tmp/package" "$vendor/$pkg"
  tar -xzf "$tmp/pkg.tgz" -C "$tmp"
  mkdir -p "$vendor/$pkg"
  for f in $files; do
    cp "$tmp/package/$f" "$vendor/$pkg/$(basename "$f")"
  done
  printf '%s %s\n%s\n%s\n' "$pkg" "$ver" "$tarball" "$integrity" >"$vendor/$pkg/VERSION"
done
log "done; commit console/static/vendor/"
