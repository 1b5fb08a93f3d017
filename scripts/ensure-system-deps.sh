#!/usr/bin/env bash
# Makes sure the Debian packages Lanyard's tests and demo need are installed: installs them when run as root,
# otherwise names the exact command and fails. Usage: scripts/ensure-system-deps.sh <package>...
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
if ! command -v apt-get >/dev/null; then
  echo "lanyard: this needs $* (Debian/Ubuntu package names); install their equivalents with your package manager." >&2
  exit 1
fi
if [[ $(id -u) -eq 0 ]]; then
  echo "lanyard: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "lanyard: missing Debian packages. Install them with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
