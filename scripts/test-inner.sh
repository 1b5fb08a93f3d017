#!/usr/bin/env bash
# Runs inside the D-Bus + gnome-keyring session made by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s ==\n' "$*"; }

step "lint"
npm run -s lint
step "typecheck"
npm run -s typecheck
step "build"
npm run -s build
step "tests (unit, integration, e2e)"
npx vitest run "$@"
if [[ -f scripts/conformance.sh ]]; then
  step "conformance"
  bash scripts/conformance.sh
fi
