/**
 * Governance under bad input and faults: the ledger's files deleted, truncated or edited; a full disk; a collector
 * that hangs or is down; tool arguments of many megabytes or nested thousands deep. Each gives a clear state, and no
 * tool call is lost or slowed.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Admission } from '../../electron/broker/governance/call-guard';
import { Governance, type GovernanceDeps } from '../../electron/broker/governance/governance';
import { auditDir, ledgerFileName, listLedgerFiles } from '../../electron/broker/governance/ledger/files';
import { AuditLedger } from '../../electron/broker/governance/ledger/ledger';
import { verifyLedger } from '../../electron/broker/governance/ledger/verify';
import { createOtlpExport } from '../../electron/broker/governance/otlp/exporter';
import { silentLogger } from '../../electron/broker/util/log';

let home: string;
beforeEach(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'lanyard-gov-faults-'));
});
afterEach(async () => {
  await rm(home, { recursive: true, force: true });
});

function governance(extra: Partial<GovernanceDeps> = {}): Governance {
  return new Governance({
    home,
    userSettings: () => ({}),
    managedSettings: () => undefined,
    locked: () => [],
    serverUrl: () => 'https://mcp.example/mcp',
    auth: { pathOf: () => 'none', grantRef: () => undefined },
    user: () => undefined,
    heldTokens: () => [],
    activity: () => undefined,
    ...extra,
  });
}

const call = { ide: { name: 'Cursor' }, endpoint: '/mcp', serverId: 'gh', method: 'tools/call', name: 'search', arguments: { q: 'x' } };

async function oneCall(g: Governance): Promise<void> {
  const a = g.admit(call);
  g.settle('then' in a ? await a : (a as Admission), { kind: 'ok' });
}

describe('the ledger deleted, truncated or edited', () => {
  it('deleted while running: calls go on, the state says damaged, verify names the gap', async () => {
    const g = governance();
    await g.start();
    for (let i = 0; i < 5; i++) await oneCall(g);
    await g.flush();
    await rm(auditDir(home), { recursive: true, force: true });
    for (let i = 0; i < 3; i++) await oneCall(g);
    await g.flush();
    expect(g.status().ledger.state).toBe('damaged');
    expect(g.status().ledger.message).toMatch(/deleted|removed/);
    await g.stop();
    const result = await verifyLedger(home);
    expect(result.ok).toBe(false);
    expect(result.firstBreak).toMatchObject({ problem: 'removed', seq: 1 });
  });

  it('truncated while stopped: the next start reports the missing records', async () => {
    const g = governance();
    await g.start();
    for (let i = 0; i < 5; i++) await oneCall(g);
    await g.stop();
    const [file] = await listLedgerFiles(auditDir(home));
    const lines = (await readFile(file!.path, 'utf8')).split('\n');
    await writeFile(file!.path, `${lines.slice(0, 2).join('\n')}\n`);
    const again = governance();
    await again.start();
    expect(again.status().ledger).toMatchObject({ state: 'damaged' });
    expect(again.status().ledger.message).toMatch(/records 3–5 are missing/);
    await again.stop();
    expect((await verifyLedger(home)).firstBreak).toMatchObject({ problem: 'removed', seq: 3 });
  });

  it('edited: verify names the record', async () => {
    const g = governance();
    await g.start();
    for (let i = 0; i < 5; i++) await oneCall(g);
    await g.stop();
    const [file] = await listLedgerFiles(auditDir(home));
    const text = await readFile(file!.path, 'utf8');
    const lines = text.split('\n');
    lines[1] = lines[1]!.replace('"ide":"Cursor"', '"ide":"Windsurf"');
    await writeFile(file!.path, lines.join('\n'));
    expect((await verifyLedger(home)).firstBreak).toMatchObject({ problem: 'edited', seq: 2 });
  });
});

describe('a full disk', () => {
  it.skipIf(!existsSync('/dev/full'))(
    'records wait in memory with a clear state, and are written once space returns; calls never wait',
    async () => {
      const ledger = new AuditLedger({ home, log: silentLogger });
      await ledger.open();
      // The next file the ledger opens is /dev/full, where every write fails with ENOSPC.
      const month = new Date().toISOString().slice(0, 7);
      const target = path.join(auditDir(home), ledgerFileName(1, month));
      await symlink('/dev/full', target);
      const started = performance.now();
      for (let i = 0; i < 100; i++)
        ledger.append({ type: 'call', ide: 'Cursor', endpoint: '/mcp', server: 'gh', method: 'tools/call', outcome: 'ok', ms: 1 });
      expect(performance.now() - started).toBeLessThan(50);
      await ledger.flush();
      expect(ledger.status()).toMatchObject({ state: 'error', pending: 100 });
      expect(ledger.status().message).toMatch(/the disk is full/);
      await unlink(target);
      await new Promise((r) => setTimeout(r, 700));
      await ledger.flush();
      expect(ledger.status()).toMatchObject({ state: 'ok', pending: 0, lost: 0 });
      await ledger.close();
      expect(await verifyLedger(home)).toMatchObject({ ok: true, records: 100 });
    },
  );

  it('past the memory bound, the oldest records are dropped, counted, noted in the ledger, and the gap shows in verify', async () => {
    const ledger = new AuditLedger({ home, log: silentLogger, maxPending: 10 });
    await ledger.open();
    const month = new Date().toISOString().slice(0, 7);
    const target = path.join(auditDir(home), ledgerFileName(1, month));
    await symlink('/dev/full', target);
    for (let i = 0; i < 25; i++)
      ledger.append({ type: 'call', ide: 'Cursor', endpoint: '/mcp', server: 'gh', method: 'tools/call', outcome: 'ok', ms: 1 });
    await ledger.flush();
    expect(ledger.status()).toMatchObject({ state: 'error', pending: 10, lost: 15 });
    await unlink(target);
    await new Promise((r) => setTimeout(r, 700));
    await ledger.flush();
    await ledger.close();
    const result = await verifyLedger(home);
    expect(result.firstBreak).toMatchObject({ problem: 'removed', seq: 1 });
    expect(await readFile((await listLedgerFiles(auditDir(home))).at(-1)!.path, 'utf8')).toContain('15 audit records could not be written');
  });
});

describe('an OpenTelemetry collector that hangs or is down', () => {
  let hanging: Server;
  let hangingUrl: string;
  beforeEach(async () => {
    // Accepts every request and never answers.
    hanging = createServer(() => undefined);
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
    hangingUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/v1/logs`;
  });
  afterEach(async () => {
    hanging.closeAllConnections();
    await new Promise<void>((r) => hanging.close(() => r()));
  });

  it('hangs: exporting never blocks, the queue stays bounded, the state says failing, close does not hang', async () => {
    const otlp = await createOtlpExport({
      endpoint: hangingUrl,
      headers: {},
      log: silentLogger,
      timeoutMs: 300,
      delayMs: 20,
      maxQueueSize: 50,
    });
    const started = performance.now();
    for (let i = 0; i < 1_000; i++) otlp.export(i, { type: 'note', note: 'started', detail: 'x' }, undefined);
    expect(performance.now() - started).toBeLessThan(200);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(otlp.status()).toMatchObject({ state: 'failing', exported: 0 });
    expect(otlp.status().failed).toBeGreaterThan(0);
    const closing = performance.now();
    await otlp.close();
    expect(performance.now() - closing).toBeLessThan(3_000);
  });

  it('hangs, behind governance: tool calls are admitted and settled as fast as without a collector', async () => {
    const g = governance({
      managedSettings: () => ({ audit: { otlp: { endpoint: hangingUrl } } }),
      otlp: (o) => createOtlpExport({ ...o, timeoutMs: 300, delayMs: 20, maxQueueSize: 100 }),
    });
    await g.start();
    const started = performance.now();
    for (let i = 0; i < 500; i++) await oneCall(g);
    expect(performance.now() - started).toBeLessThan(500);
    await new Promise((r) => setTimeout(r, 800));
    expect(g.status().otlp).toMatchObject({ state: 'failing' });
    expect(g.status().ledger.state).toBe('ok');
    await g.stop();
    expect((await verifyLedger(home)).records).toBe(500);
  });

  it('up: records arrive as OTLP logs (OTLP/HTTP JSON from the SDK), with the configured headers', async () => {
    const bodies: Array<{ type: string | undefined; key: string | undefined; body: string }> = [];
    const collector = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        bodies.push({ type: req.headers['content-type'], key: req.headers['x-api-key'] as string | undefined, body });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/logs`;
    const g = governance({
      managedSettings: () => ({ audit: { otlp: { endpoint: url, headers: { 'x-api-key': 'collector-key' } } } }),
      otlp: (o) => createOtlpExport({ ...o, delayMs: 20 }),
    });
    await g.start();
    await oneCall(g);
    await new Promise((r) => setTimeout(r, 500));
    expect(g.status().otlp).toMatchObject({ state: 'ok', exported: 1 });
    await g.stop();
    collector.close();
    expect(bodies[0]).toMatchObject({ type: 'application/json', key: 'collector-key' });
    expect(bodies[0]!.body).toContain('lanyard.audit.seq');
    expect(bodies[0]!.body).toContain('"stringValue":"search"');
  });

  it('down (connection refused): failing, with the reason', async () => {
    const otlp = await createOtlpExport({
      endpoint: 'http://127.0.0.1:9/v1/logs',
      headers: {},
      log: silentLogger,
      timeoutMs: 300,
      delayMs: 20,
    });
    otlp.export(1, { type: 'note', note: 'started', detail: 'x' }, undefined);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(otlp.status().state).toBe('failing');
    await otlp.close();
  });
});

describe('arguments of many megabytes or nested deep', () => {
  it('the scan is bounded, says what it skipped, and the call is admitted without a crash', async () => {
    const g = governance({ userSettings: () => ({ secretScan: { policy: 'block' } }) });
    await g.start();
    let deep: unknown = 'leaf';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const huge = { blob: 'A'.repeat(30 * 1024 * 1024), deep };
    const started = performance.now();
    const admitted = g.admit({ ...call, arguments: huge });
    const admission = 'then' in admitted ? await admitted : admitted;
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(admission.notes?.unscanned).toMatch(/nested deeper than 64 levels/);
    expect(admission.notes?.unscanned).toMatch(/characters past the first/);
    g.settle(admission, { kind: 'ok' });
    await g.flush();
    expect(JSON.stringify((await verifyLedger(home)).ok)).toBe('true');
    await g.stop();
  });
});
