# Shared helpers for run.sh and test.sh: install what is missing, nothing more.
# shellcheck shell=bash

CARGO_LEPTOS_VERSION=0.3.10   # 0.3.11's lock file needs rustc >= 1.96

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

export PATH="$HOME/.cargo/bin:$PATH"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_wasm_target() {
  rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown && return
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
}

ensure_cargo_leptos() {
  if cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then return; fi
  log "installing cargo-leptos $CARGO_LEPTOS_VERSION (a few minutes, once)"
  # A debug build of the tool is plenty fast for what it does and builds in a third of the time.
  cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --debug
}

# cargo-leptos and the wasm tests use whatever wasm-bindgen is on PATH, so it must be
# exactly the version in Cargo.lock.
ensure_wasm_bindgen() {
  local want
  want=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
  if wasm-bindgen --version 2>/dev/null | grep -q " $want\$" && command -v wasm-bindgen-test-runner >/dev/null; then return; fi
  log "installing wasm-bindgen-cli $want (a few minutes, once)"
  # Without --locked: its lock file names a crate version the registry here lacks.
  cargo install wasm-bindgen-cli --version "$want" --force
}

ensure_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  log "installing ${missing[*]} from Debian"
  as_root apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

# end2end/node_modules holds Playwright and wasm-opt (binaryen). Never Debian's binaryen:
# its old wasm-opt produces a module that fails to hydrate.
ensure_node_modules() {
  if [ ! -x end2end/node_modules/.bin/wasm-opt ] || [ ! -d end2end/node_modules/@playwright/test ] \
    || [ ! -f end2end/node_modules/@modelcontextprotocol/server-everything/dist/index.js ]; then
    log "installing end2end node packages"
    (cd end2end && npm ci --no-audit --no-fund --loglevel=error)
  fi
  export PATH="$PWD/end2end/node_modules/.bin:$PATH"
}

# end2end/.venv holds the official `openai` Python client, pinned; the end-to-end suite
# talks to Agentry's /v1 with it.
OPENAI_PY_VERSION=3.51.0
ensure_openai_client() {
  if ! end2end/.venv/bin/python -c "import openai, sys; sys.exit(openai.__version__ != '$OPENAI_PY_VERSION')" 2>/dev/null; then
    log "installing the openai Python client $OPENAI_PY_VERSION"
    python3 -m venv end2end/.venv
    end2end/.venv/bin/pip install -q --disable-pip-version-check "openai==$OPENAI_PY_VERSION"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Release build of the server and the hydrated WASM into target/site.
build_release() {
  log "building the release server and WASM, split per page (cargo leptos build --release --split)"
  cargo leptos build --release --split
}
