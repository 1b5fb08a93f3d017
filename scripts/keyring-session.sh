#!/usr/bin/env bash
# Runs a command inside a private D-Bus session with an unlocked gnome-keyring (the OS keychain on Linux), so tests
# use the real Secret Service without touching the user's own keyring. Usage: scripts/keyring-session.sh <cmd> [args]
set -euo pipefail
ROOT=$(mktemp -d -t lanyard-keyring.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
export XDG_DATA_HOME="$ROOT/data" XDG_RUNTIME_DIR="$ROOT/run"
mkdir -p "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
# A DISPLAY would make a locked keyring pop a prompt and hang the call; the session must be headless.
unset DISPLAY WAYLAND_DISPLAY
KEYRING_PASSWORD=$(head -c 18 /dev/urandom | base64)
export KEYRING_PASSWORD
# The environment must be set before the bus starts (daemons inherit the bus's environment), and the password must
# be non-empty or no login collection is created.
dbus-run-session -- sh -c 'printf %s "$KEYRING_PASSWORD" | gnome-keyring-daemon --replace --unlock --daemonize --components=secrets >/dev/null; unset KEYRING_PASSWORD; exec "$@"' keyring-session "$@"
