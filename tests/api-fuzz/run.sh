#!/usr/bin/env bash
# Fuzzes the real palpal-central with schemathesis from docs/sync-api.yaml, every request
# signed by a real enrolled kiosk and counter (hooks.py), and fails on any 5xx or any answer
# that breaks the documented schema.
#
#   tests/api-fuzz/run.sh [MAX_EXAMPLES]      (default 100 per operation and phase)
#
# Needs the debug build of palpal-central (`cargo build --workspace --bins`) and installs
# schemathesis from PyPI into a virtual environment under target/ if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
max_examples=${1:-100}
target=${CARGO_TARGET_DIR:-$root/target}
central=$target/debug/palpal-central
[[ -x $central ]] || { echo "api-fuzz: build palpal-central first (cargo build --workspace --bins)" >&2; exit 1; }

venv=$target/api-fuzz-venv
if [[ ! -x $venv/bin/st ]]; then
  echo "api-fuzz: installing schemathesis (once)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'schemathesis>=4.3,<5' 'cryptography>=42'
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  local rc=$?
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# A card-signing key, so that member cards (POST /v1/cards) are fuzzed past the key check.
"$central" key add --db "$work/central.db" --secret-out "$work/card-key.hex" >/dev/null
# /metrics behind a bearer token, as an operator may serve it; fuzzed without it (404).
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/metrics-token"
"$central" serve --db "$work/central.db" --listen "127.0.0.1:$port" \
  --card-key "$work/card-key.hex" --metrics-token-file "$work/metrics-token" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/v1/health" >/dev/null 2>&1 && break
  sleep 0.1
done

# Enroll a kiosk and a counter with keys made here; pass them to hooks.py.
terminals=""
for role in kiosk counter; do
  code=$("$central" terminal add --db "$work/central.db" --site 성북구 --role "$role" 2>/dev/null \
    | sed -n 's/^code: //p')
  entry=$("$venv/bin/python" - "$port" "$code" "$role" <<'PY'
import json, sys, urllib.request
from base64 import b64encode
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization
port, code, role = sys.argv[1:]
key = Ed25519PrivateKey.generate()
seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                         serialization.NoEncryption())
public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
body = json.dumps({"code": code, "public_key": b64encode(public).decode(),
                   "name": f"fuzz {role}"}).encode()
request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/terminals/enroll", data=body,
                                 headers={"content-type": "application/json"})
answer = json.load(urllib.request.urlopen(request))
print(f"{answer['terminal_id']}:{seed.hex()}")
PY
)
  terminals+="${terminals:+,}$entry"
done

cd "$root/tests/api-fuzz"
PALPAL_FUZZ_TERMINALS=$terminals SCHEMATHESIS_HOOKS=hooks "$venv/bin/st" run \
  "$root/docs/sync-api.yaml" --url "http://127.0.0.1:$port" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "$max_examples" --seed 20261125 --no-color
curl -fs -H "Authorization: Bearer $(cat "$work/metrics-token")" "http://127.0.0.1:$port/metrics" | grep -E "^palpal_http_responses_total|^palpal_requests_total|status" | head -30 || true
if grep -qi 'panic' "$work/server.log"; then
  echo "api-fuzz: the server panicked:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
