#!/usr/bin/env bash
# Fuzzes the real operator console with schemathesis from docs/console-api.yaml, signed in as
# an administrator (the session cookie and its CSRF token on every request), and fails on any
# 5xx or on a server panic.
#
#   tests/api-fuzz/console.sh [MAX_EXAMPLES]      (default 100 per operation and phase)
#
# Needs the debug build of palpal-central (`cargo build --workspace --bins`); the virtual
# environment with schemathesis is the one run.sh makes.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
max_examples=${1:-100}
target=${CARGO_TARGET_DIR:-$root/target}
central=$target/debug/palpal-central
[[ -x $central ]] || { echo "console-fuzz: build palpal-central first (cargo build --workspace --bins)" >&2; exit 1; }

venv=$target/api-fuzz-venv
if [[ ! -x $venv/bin/st ]]; then
  echo "console-fuzz: installing schemathesis (once)"
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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
console=http://127.0.0.1:$port
code=$("$central" operator add --db "$work/central.db" --name fuzz-admin --role admin 2>/dev/null \
  | sed -n 's/^code: //p')
"$central" serve --db "$work/central.db" --listen "127.0.0.1:$(free_port)" \
  --console-listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  curl -fs "$console/console/login" >/dev/null 2>&1 && break
  sleep 0.1
done

# The form token a page carries (before sign-in, also in the palpal_console_form cookie).
jar=$work/cookies
form_token() { curl -fs -c "$jar" -b "$jar" "$console$1" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -n 1; }
password='fuzz console password'
curl -fs -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf=$(form_token /console/setup)" \
  --data-urlencode name=fuzz-admin --data-urlencode "code=$code" \
  --data-urlencode "password=$password" --data-urlencode "password_again=$password" \
  "$console/console/setup"
curl -fs -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf=$(form_token /console/login)" \
  --data-urlencode name=fuzz-admin --data-urlencode "password=$password" "$console/console/login"
session=$(awk '$6 == "palpal_console" { print $7 }' "$jar")
csrf=$(form_token /console/)
[[ -n $session && -n $csrf ]] || { echo "console-fuzz: could not sign in" >&2; cat "$work/server.log" >&2; exit 1; }

# Signing out or disabling an operator would end the fuzzer's own session: left out.
cd "$root/tests/api-fuzz"
PALPAL_FUZZ_CSRF=$csrf SCHEMATHESIS_HOOKS=console_hooks "$venv/bin/st" run \
  "$root/docs/console-api.yaml" --url "$console" \
  -H "Cookie: palpal_console=$session" -H "X-CSRF-Token: $csrf" \
  --exclude-path /console/logout --exclude-path-regex 'disable$' \
  --checks not_a_server_error \
  --max-examples "$max_examples" --seed 20261204 --no-color
if grep -qi 'panic' "$work/server.log"; then
  echo "console-fuzz: the server panicked:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
# The session outlived the run: the fuzzer was signed in throughout.
curl -fs -o /dev/null -b "Cookie: palpal_console=$session" "$console/console/" \
  || { echo "console-fuzz: the session ended during the run" >&2; exit 1; }
