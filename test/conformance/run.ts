/**
 * Runs the official MCP conformance suite against Lanyard and prints one summary line per group:
 *   client-auth: N passed, M failed        (client scenarios, Lanyard's engine as the client)
 * Later groups (server-direct, server-via-gateway) are added by the gateway. Exits non-zero when a check fails.
 *
 * Which client auth scenarios run, and why the others do not apply (yet): Lanyard's upstream client never runs an
 * interactive OAuth flow at an MCP server's authorization server — the EMA extension tells clients not to redirect
 * users there, and every token comes from cross-app access. The scenarios built on the authorization-code flow
 * (auth/metadata-*, auth/basic-cimd, auth/scope-*, auth/token-endpoint-auth-*, auth/pre-registration,
 * auth/2025-03-26-*, auth/resource-mismatch, auth/offline-access-*) and the client-credentials extensions therefore
 * test code Lanyard deliberately does not have.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

const node22 = process.env.LANYARD_CONFORMANCE_NODE22;
const cli = process.env.LANYARD_CONFORMANCE_CLI;
if (!node22 || !cli) {
  console.error('conformance: run through `npm run conformance` (scripts/conformance.sh installs the suite and Node 22).');
  process.exit(2);
}

interface Check {
  id: string;
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | string;
  description?: string;
}

interface GroupResult {
  passed: number;
  failed: number;
  failures: string[];
}

const root = path.resolve(import.meta.dirname, '../..');
const tsx = path.join(root, 'node_modules/tsx/dist/cli.mjs');

const CLIENT_AUTH_SCENARIOS = ['auth/cross-app-access-complete-flow'];

async function runConformance(args: string[], timeoutMs: number): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(node22!, [cli!, ...args], { cwd: root, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, output });
    });
  });
}

async function readChecks(dir: string): Promise<Check[]> {
  const checks: Check[] = [];
  const walk = async (d: string) => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else if (entry.name === 'checks.json') checks.push(...(JSON.parse(await readFile(p, 'utf8')) as Check[]));
    }
  };
  await walk(dir);
  return checks;
}

function tally(checks: Check[], label: string, into: GroupResult): void {
  for (const check of checks) {
    if (check.status === 'SUCCESS') into.passed++;
    else if (check.status === 'FAILURE' || check.status === 'WARNING') {
      into.failed++;
      into.failures.push(`${label}: ${check.id} ${check.status}${check.description ? ` — ${check.description}` : ''}`);
    }
  }
}

async function clientAuth(): Promise<GroupResult> {
  const result: GroupResult = { passed: 0, failed: 0, failures: [] };
  for (const scenario of CLIENT_AUTH_SCENARIOS) {
    const out = await mkdtemp(path.join(tmpdir(), 'lanyard-conf-'));
    try {
      const command = `${process.execPath} ${tsx} ${path.join(root, 'test/conformance/xaa-client.ts')}`;
      const run = await runConformance(['client', '--scenario', scenario, '--command', command, '-o', out], 120_000);
      const checks = await readChecks(out);
      if (checks.length === 0) {
        result.failed++;
        result.failures.push(`${scenario}: no checks recorded (exit ${run.code})\n${run.output.slice(-2000)}`);
      }
      tally(checks, scenario, result);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }
  return result;
}

async function main(): Promise<void> {
  const groups: Array<[string, GroupResult]> = [];
  groups.push(['client-auth', await clientAuth()]);
  let failed = 0;
  for (const [name, result] of groups) {
    for (const failure of result.failures) console.log(`  ✗ ${failure}`);
    console.log(`${name}: ${result.passed} passed, ${result.failed} failed`);
    failed += result.failed;
  }
  process.exit(failed > 0 ? 1 : 0);
}

await main();
