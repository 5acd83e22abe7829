#!/bin/sh
# Refresh the two npm packages jukinet vendors (issue 19, ADR 0043). Run from the repository root:
#
#   scripts/refresh_design_tokens.sh                 # the versions pinned below
#   DESIGN_TOKENS_VERSION=1.2.0 scripts/refresh_design_tokens.sh
#
# - @digital-go-jp/design-tokens (MIT, デジタル庁デザインシステム): its built CSS
#   (dist/tokens.css) → src/jukinet/web/static/design-tokens/, served to the operator screens.
# - axe-core (MPL-2.0): axe.min.js → tests/browser/vendor/, injected by the browser tests only
#   (never served by the application).
#
# Only `npm pack` is used (the ordinary client, one package each, no install scripts run); each
# package's licence and a VERSION file (name, version, integrity) are copied next to it. Review the
# diff, run tests/browser, commit.
set -eu
DESIGN_TOKENS_VERSION="${DESIGN_TOKENS_VERSION:-1.1.9}"
AXE_VERSION="${AXE_VERSION:-4.14.1}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

fetch() {   # fetch <package@version> <dir>: npm pack into $TMP, unpack into <dir>
  ( cd "$TMP" && npm pack --silent "$1" --json > "$2.json" )
  mkdir -p "$TMP/$2"
  tar -xzf "$TMP/$(sed -n 's/.*"filename": *"\([^"]*\)".*/\1/p' "$TMP/$2.json" | head -1)" -C "$TMP/$2"
  sed -n 's/.*"integrity": *"\([^"]*\)".*/\1/p' "$TMP/$2.json" | head -1
}

dt="$ROOT/src/jukinet/web/static/design-tokens"
integrity="$(fetch "@digital-go-jp/design-tokens@$DESIGN_TOKENS_VERSION" dt)"
mkdir -p "$dt"
cp "$TMP/dt/package/dist/tokens.css" "$dt/tokens.css"
cp "$TMP/dt/package/LICENSE" "$dt/LICENSE"
printf '@digital-go-jp/design-tokens %s\nintegrity %s\nsource https://www.npmjs.com/package/@digital-go-jp/design-tokens\n' \
  "$DESIGN_TOKENS_VERSION" "$integrity" > "$dt/VERSION"

axe="$ROOT/tests/browser/vendor"
integrity="$(fetch "axe-core@$AXE_VERSION" axe)"
mkdir -p "$axe"
cp "$TMP/axe/package/axe.min.js" "$axe/axe.min.js"
cp "$TMP/axe/package/LICENSE" "$axe/axe-core.LICENSE"
printf 'axe-core %s\nintegrity %s\nsource https://www.npmjs.com/package/axe-core\n' \
  "$AXE_VERSION" "$integrity" > "$axe/axe-core.VERSION"
echo "refreshed: @digital-go-jp/design-tokens $DESIGN_TOKENS_VERSION, axe-core $AXE_VERSION"
