/**
 * @typescript-eslint/parser, with every import and re-export presented as a value import.
 *
 * Used only by the cycle rule in eslint.config.js (as `import-x/parsers`, which parses the modules a file depends on):
 * import-x/no-cycle skips `import type` edges by design, but a type-only cycle still ties two modules together — neither
 * can be read, moved or tested without the other — so Lanyard counts it. Rewriting `importKind`/`exportKind` to
 * 'value' on the top-level statements is all the rule needs; nothing else reads this parser's output.
 */
'use strict';
const tsParser = require('@typescript-eslint/parser');

/** Marks a top-level import/export statement (and its specifiers) as a value edge, in place. */
function asValueEdge(node) {
  if ('importKind' in node) node.importKind = 'value';
  if ('exportKind' in node) node.exportKind = 'value';
  for (const s of node.specifiers ?? []) {
    if ('importKind' in s) s.importKind = 'value';
    if ('exportKind' in s) s.exportKind = 'value';
  }
  return node;
}

const EDGES = new Set(['ImportDeclaration', 'ExportNamedDeclaration', 'ExportAllDeclaration', 'TSImportEqualsDeclaration']);

function parseForESLint(code, options) {
  const result = tsParser.parseForESLint(code, options);
  for (const node of result.ast.body) if (EDGES.has(node.type)) asValueEdge(node);
  return result;
}

module.exports = { meta: { name: 'value-imports-parser' }, parseForESLint, asValueEdge, EDGES };
