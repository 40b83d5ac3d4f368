#!/usr/bin/env bash
# Builds and serves Agentry: SQLite and files under ./data, no other service.
# Settings come from agentry.toml and AGENTRY_* variables (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_wasm_target
# The sandbox for what agents run (bubblewrap; prlimit is in util-linux).
ensure_apt bubblewrap util-linux
ensure_cargo_leptos
ensure_wasm_bindgen
ensure_node_modules
build_release

export LEPTOS_OUTPUT_NAME=agentry LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg LEPTOS_ENV=PROD
log "starting Agentry on http://${AGENTRY_BIND:-127.0.0.1:3000}"
exec target/release/server
