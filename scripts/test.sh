#!/usr/bin/env bash
# `npm test`: every tier of Lanyard's tests, with the real services they need.
#
# It installs what is missing from Debian (when run as root; otherwise it names the exact command), starts a private
# D-Bus session with an unlocked gnome-keyring (the OS keychain the integration tests use), and runs
# scripts/test-inner.sh inside it. Nothing here touches the user's own keyring: the session bus, XDG_DATA_HOME and
# LANYARD_HOME are all temporary.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-system-deps.sh gnome-keyring libsecret-1-0 dbus dbus-x11 chromium fonts-liberation

[[ -d node_modules ]] || npm ci

export LANYARD_TEST_ROOT
LANYARD_TEST_ROOT=$(mktemp -d -t lanyard-test.XXXXXX)
trap 'rm -rf "$LANYARD_TEST_ROOT"' EXIT
bash scripts/keyring-session.sh bash scripts/test-inner.sh "$@"
