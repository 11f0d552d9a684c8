#!/usr/bin/env bash
# Installs what building, running and testing Palpal needs and is missing:
# Debian packages (as root; otherwise prints the apt-get line), the UI's npm packages,
# and tauri-driver for the end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  pkg-config libssl-dev libdbus-1-dev dbus
  libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libayatana-appindicator3-dev
  xvfb xauth fonts-noto-cjk webkit2gtk-driver imagemagick zbar-tools espeak-ng sox
  postgresql-15 chromium chromium-driver
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "palpal: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "palpal: these Debian packages are missing; install them and run this again:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

command -v npm >/dev/null || { echo "palpal: Node.js and npm are needed (apt-get install nodejs npm)" >&2; exit 1; }
if [[ ! -d ui/node_modules || ui/package-lock.json -nt ui/node_modules/.package-lock.json ]]; then
  echo "palpal: installing the UI's npm packages"
  (cd ui && npm ci --no-audit --no-fund --loglevel=error)
fi

export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v tauri-driver >/dev/null; then
  echo "palpal: installing tauri-driver (once, about a minute)"
  cargo install tauri-driver --locked --quiet
fi
