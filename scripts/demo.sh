#!/usr/bin/env bash
# Starts the demo: the reference central server, a sign-up kiosk and a pharmacy counter on a
# seeded demo data set.
# With a display the windows open on it; without one each runs under its own Xvfb and the
# script says where the screenshots are. Ctrl-C stops everything.
# PALPAL_DEMO_EXIT=1 stops after the screenshots (make test uses it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
demo="$root/.demo"
bin="${CARGO_TARGET_DIR:-$root/target}/debug"
mkdir -p "$demo/screens"

cat >"$demo/kiosk.toml" <<TOML
role = "kiosk"
site = "jongno-cc"
site_name = "종로구 보건소"
database = "kiosk.sqlite"
TOML
cat >"$demo/counter.toml" <<TOML
role = "counter"
site = "onnuri-pharmacy"
site_name = "온누리약국"
database = "counter.sqlite"
demo = true
TOML

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# Finds a free X display number for Xvfb.
free_display() {
  local n=90
  while [[ -e /tmp/.X11-unix/X$n || -e /tmp/.X$n-lock ]]; do n=$((n + 1)); done
  echo "$n"
}

start_app() { # role
  local role=$1
  if [[ -n "${DISPLAY:-}" && -z "${PALPAL_DEMO_EXIT:-}" ]]; then
    "$bin/palpal-app" --config "$demo/$role.toml" &
    pids+=($!)
    echo "palpal: the $role window is open"
  else
    local n
    n=$(free_display)
    Xvfb ":$n" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do [[ -e /tmp/.X11-unix/X$n ]] && break; sleep 0.1; done
    DISPLAY=":$n" "$bin/palpal-app" --config "$demo/$role.toml" >"$demo/$role.log" 2>&1 &
    pids+=($!)
    sleep 6
    DISPLAY=":$n" import -window root "$demo/screens/$role.png"
    echo "palpal: the $role runs on Xvfb display :$n; screenshot: $demo/screens/$role.png"
  fi
}

# Simulated watches: a private D-Bus bus (config in .demo/) with watch-sim serving them as
# BlueZ would, so the apps' real Bluetooth code finds watches to pair and sync.
cat >"$demo/bus.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$demo/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
XML
cat >"$demo/watches.toml" <<TOML
[[watch]]
serial = "PW-0042"
rssi = -45
[[watch]]
serial = "PW-0007"
rssi = -60
seed = 7
[[watch]]
serial = "PW-0100"
rssi = -70
battery = 12
seed = 100
[[watch]]
serial = "PW-0318"
rssi = -80
clock_drift_seconds = -7500
seed = 318
TOML
rm -f "$demo/bus"
dbus-daemon --nofork --config-file="$demo/bus.conf" >"$demo/bus.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [[ -S "$demo/bus" ]] && break; sleep 0.1; done
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$demo/bus"
"$bin/watch-sim" --bus "$DBUS_SYSTEM_BUS_ADDRESS" --config "$demo/watches.toml" >"$demo/watch-sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "watch-sim ready" "$demo/watch-sim.log" 2>/dev/null && break; sleep 0.1; done
if ! grep -q "watch-sim ready" "$demo/watch-sim.log"; then
  echo "palpal: the watch simulator did not start; see $demo/watch-sim.log" >&2
  exit 1
fi
echo "palpal: simulated watches 0042, 0007, 0100 (low battery) and 0318 (clock 2 h slow) on $DBUS_SYSTEM_BUS_ADDRESS"

# The reference central server on a local SQLite file, fresh each run: a key that signs
# member cards, today open for sign-ups with 200 places at the kiosk's site. The kiosk starts
# fresh too and is provisioned against it below; the counter keeps its seeded demo members
# (PP-0001 to PP-0016, which the server does not know) and stays a stand-alone terminal.
# (kiosk.sqlite.secrets is the kiosk's folder of keys; server*.pem the server's TLS certificate.)
rm -rf "$demo"/central.sqlite* "$demo"/kiosk.sqlite* "$demo/card-key.hex" "$demo"/server*.pem
"$bin/palpal-central" tls generate --cert-out "$demo/server.pem" --key-out "$demo/server-key.pem" \
  --name 127.0.0.1 --name localhost >/dev/null
today=$(TZ=Asia/Seoul date +%F)
"$bin/palpal-central" key add --db "$demo/central.sqlite" --secret-out "$demo/card-key.hex" >/dev/null
# The simulated watches are certified by the demonstration authority: trusting it, the
# server credits only steps a watch paired to the member signed.
"$bin/palpal-central" watch-ca add --db "$demo/central.sqlite" --demo >/dev/null
"$bin/palpal-central" schedule set --db "$demo/central.sqlite" --day "$today" --rule open >/dev/null
"$bin/palpal-central" quota set --db "$demo/central.sqlite" --day "$today" --site jongno-cc \
  --places 200 >/dev/null
"$bin/palpal-central" serve --db "$demo/central.sqlite" --listen 127.0.0.1:0 \
  --tls-cert "$demo/server.pem" --tls-key "$demo/server-key.pem" \
  --metrics-listen 127.0.0.1:0 --console-listen 127.0.0.1:0 \
  --card-key "$demo/card-key.hex" >"$demo/central.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "^listening on" "$demo/central.log" 2>/dev/null && break; sleep 0.1; done
central=$(sed -n 's/^listening on //p' "$demo/central.log" | head -n 1)
if [[ -z "$central" ]]; then
  echo "palpal: the central server did not start; see $demo/central.log" >&2
  exit 1
fi
metrics=$(sed -n 's/^metrics on //p' "$demo/central.log" | head -n 1)
console=$(sed -n 's/^console on //p' "$demo/central.log" | head -n 1)
echo "palpal: central server at $central (database $demo/central.sqlite, metrics $metrics)"
# The operator console, with a demo administrator who sets a password with the setup code.
operator=$("$bin/palpal-central" operator add --db "$demo/central.sqlite" --name demo-admin \
  --role admin 2>/dev/null)
setup_code=$(sed -n 's/^code: //p' <<<"$operator")
if [[ -z "$console" || -z "$setup_code" ]]; then
  echo "palpal: the operator console did not start; see $demo/central.log" >&2
  exit 1
fi
echo "palpal: operator console at $console (the demo's own TLS certificate: $demo/server.pem)"
echo "palpal:   first visit ${console}setup as demo-admin with the one-time code $setup_code"
added=$("$bin/palpal-central" terminal add --db "$demo/central.sqlite" --site jongno-cc --role kiosk \
  --tls-cert "$demo/server.pem" 2>/dev/null)
code=$(sed -n 's/^code: //p' <<<"$added")
server_key=$(sed -n 's/^server_key: //p' <<<"$added")
"$bin/palpal" provision --db "$demo/kiosk.sqlite" --server "$central" --code "$code" \
  --server-key "$server_key" >/dev/null
echo "palpal: the kiosk is provisioned against it over TLS (server key $server_key); today ($today) is open with 200 places"

start_app kiosk
start_app counter
# The console's sign-in page as a desktop browser shows it (headless Chromium; as root it
# needs --no-sandbox).
browser_flags=(--headless=new --ignore-certificate-errors --window-size=1280,900 --lang=ko-KR)
[[ $(id -u) -eq 0 ]] && browser_flags+=(--no-sandbox)
if chromium "${browser_flags[@]}" --screenshot="$demo/screens/console.png" "${console}login" \
  >"$demo/console-shot.log" 2>&1; then
  echo "palpal: the console's sign-in page: $demo/screens/console.png"
else
  echo "palpal: could not photograph the console's sign-in page; see $demo/console-shot.log" >&2
fi
echo "palpal: demo member numbers at the counter: PP-0001 to PP-0016"

if [[ -n "${PALPAL_DEMO_EXIT:-}" ]]; then
  exit 0
fi
echo "palpal: running; press Ctrl-C to stop"
wait
