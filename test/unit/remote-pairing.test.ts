import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashRemoteToken, remoteDevicesFile, RemoteDevices } from '../../electron/broker/remote/devices';
import { CODE_TTL_MS, MAX_PENDING, PAIRING_ALPHABET, PairingService } from '../../electron/broker/remote/pairing';

let dir: string;
let clock: number;
const now = () => clock;

async function service(): Promise<PairingService> {
  return new PairingService({ devices: await RemoteDevices.open(remoteDevicesFile(dir), { now }), now });
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'lanyard-pairing-'));
  clock = Date.parse('2026-01-01T00:00:00Z');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('pairing codes', () => {
  it('are 8 characters of an unambiguous alphabet, shown as XXXX-XXXX, typed back in any case with or without the dash', async () => {
    const s = await service();
    const { code } = s.request('box');
    expect(code).toMatch(/^[A-Z0-9]{4}-[A-Z0-9]{4}$/);
    for (const c of code.replace('-', '')) expect(PAIRING_ALPHABET).toContain(c);
    expect(PAIRING_ALPHABET).not.toMatch(/[01ILOU]/);
    await expect(s.approve(` ${code.replace('-', '').toLowerCase()} `)).resolves.toMatchObject({ label: 'box' });
  });

  it('expire after 5 minutes: approving then is refused with how to pair again, and the remote side hears the same', async () => {
    const s = await service();
    const a = s.request('late');
    clock += CODE_TTL_MS + 1;
    const expired = (await s.approve(a.code).catch((e: unknown) => e)) as Error;
    expect(expired.message).toContain('expired');
    expect(expired.message).not.toContain(a.code);
    const b = s.request('late too');
    clock += CODE_TTL_MS;
    const claim = s.claim(b.pairing);
    expect(claim.state).toBe('refused');
    expect(claim.state === 'refused' && claim.error.message).toMatch(/expired/);
    expect(claim.state === 'refused' && claim.error.fix).toContain('lanyard remote pair');
  });

  it('are single use: the token is handed over once, and nothing but its hash stays on disk', async () => {
    const s = await service();
    const a = s.request('once');
    expect(s.claim(a.pairing).state).toBe('pending');
    await s.approve(a.code);
    const first = s.claim(a.pairing);
    expect(first.state).toBe('approved');
    expect(s.claim(a.pairing).state).toBe('refused');
    const token = first.state === 'approved' ? first.token : '';
    const file = await readFile(remoteDevicesFile(dir), 'utf8');
    expect(file).toContain(hashRemoteToken(token));
    expect(file).not.toContain(token);
    expect((await stat(remoteDevicesFile(dir))).mode & 0o777).toBe(0o600);
  });

  it('an unknown handle, a label with control characters or markup, too many waiting requests', async () => {
    const s = await service();
    expect(s.claim('nope').state).toBe('refused');
    expect(s.claim({}).state).toBe('refused');
    expect(s.request('evil\u001b[31m<script>').label).toBe('evil31mscript');
    for (let i = 1; i < MAX_PENDING; i++) s.request(`n${i}`);
    expect(() => s.request('one too many')).toThrow(/already waiting/);
  });

  it('a label cannot show the laptop a code to type (the code itself is never shown there), nor quotes', async () => {
    const s = await service();
    expect(s.request('WSL "type the code ABCD-EFGH"').label).toBe('WSL type the code …');
    expect(s.request('box abcd efgh').label).toBe('box …');
    expect(s.request('devbox (SSH)').label).toBe('devbox (SSH)');
    expect(s.request('ubuntu-22.04 buildbox').label).toBe('ubuntu-22.04 buildbox');
  });

  it('expired requests hold no place: five that lapsed do not keep a new one from asking', async () => {
    const s = await service();
    for (let i = 0; i < MAX_PENDING; i++) s.request(`n${i}`);
    expect(() => s.request('one too many')).toThrow(/already waiting/);
    clock += CODE_TTL_MS + 1;
    expect(s.pending()).toEqual([]);
    expect(s.request('mine').label).toBe('mine');
  });

  it('an approved token nobody collected is forgotten with its device once the pairing lapses', async () => {
    const s = await service();
    const a = s.request('abandoned');
    await s.approve(a.code);
    expect(s.devices.list()).toHaveLength(1);
    clock += 2 * CODE_TTL_MS + 1;
    s.pending();
    await new Promise((r) => setTimeout(r, 20));
    expect(s.devices.list()).toHaveLength(0);
  });
});

describe('paired devices', () => {
  it('verify the token, record when it was last used, refuse it once revoked (also after a restart)', async () => {
    const s = await service();
    const a = s.request('wsl');
    const device = await s.approve(a.code);
    const claim = s.claim(a.pairing);
    const token = claim.state === 'approved' ? claim.token : '';
    expect(s.devices.verify(token)).toMatchObject({ kind: 'ok', device: { id: device.id } });
    expect(s.devices.list()[0]!.lastUsedAt).toBeDefined();
    expect(s.devices.verify(`${token.slice(0, -1)}x`).kind).toBe('unknown');
    expect(s.devices.verify('not-a-remote-token').kind).toBe('unknown');
    await s.revoke(device.id);
    expect(s.devices.verify(token).kind).toBe('revoked');
    const reopened = await RemoteDevices.open(remoteDevicesFile(dir));
    expect(reopened.verify(token).kind).toBe('revoked');
    await expect(s.revoke('rd_missing')).rejects.toMatchObject({ fix: expect.stringContaining('lanyard remote list') });
  });
});
