#!/usr/bin/env bash
# `npm test`: every tier of Lanyard's tests, with the real services they need.
#
# It installs what is missing from Debian (when run as root; otherwise it names the exact command), starts a private
# D-Bus session with an unlocked gnome-keyring (the OS keychain the integration tests use), and runs
# scripts/test-inner.sh inside it. Nothing here touches the user's own keyring: the session bus, XDG_DATA_HOME and
# LANYARD_HOME are all temporary.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(gnome-keyring libsecret-1-0 dbus dbus-x11 chromium fonts-liberation)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "test: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "test: missing Debian packages. Install them with:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

[[ -d node_modules ]] || npm ci

export LANYARD_TEST_ROOT
LANYARD_TEST_ROOT=$(mktemp -d -t lanyard-test.XXXXXX)
trap 'rm -rf "$LANYARD_TEST_ROOT"' EXIT
bash scripts/keyring-session.sh bash scripts/test-inner.sh "$@"
