import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';
import { writePrivateFile } from '../paths';
import { silentLogger, type Logger } from '../util/log';

/**
 * The remote devices this laptop paired (docs/architecture.md, "Remote development"): a WSL distribution, an SSH
 * host, a dev container. Each holds one remote token; the broker keeps only its SHA-256 (with the label, when it was
 * created and last used, and when it was revoked), in `<home>/remote-devices.json` (0600). A revoked device stays
 * listed, so its token is refused with "revoked, pair again" rather than a bare 401.
 *
 * A remote token is 256 random bits: hashing it without a salt is enough (nothing to brute-force), and lets the hot
 * path look it up in a Map.
 */

/** Every remote token starts with this, so the front door can tell it from the local token and scanners can spot it. */
export const REMOTE_TOKEN_PREFIX = 'lnr_';
const REMOTE_TOKEN = /^lnr_[A-Za-z0-9_-]{43}$/;
/** How often "last used" reaches the disk at most (it is kept in memory between writes). */
const TOUCH_WRITE_MS = 60_000;

export interface RemoteDevice {
  id: string;
  label: string;
  createdAt: string;
  lastUsedAt?: string | undefined;
  revokedAt?: string | undefined;
}

interface StoredDevice extends RemoteDevice {
  /** SHA-256 of the token, hex. */
  hash: string;
}

export type RemoteTokenVerdict = { kind: 'ok'; device: RemoteDevice } | { kind: 'revoked'; device: RemoteDevice } | { kind: 'unknown' };

export function isRemoteToken(value: string): boolean {
  return REMOTE_TOKEN.test(value);
}

export function hashRemoteToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function remoteDevicesFile(home: string): string {
  return path.join(home, 'remote-devices.json');
}

export class RemoteDevices {
  private readonly byHash = new Map<string, StoredDevice>();
  private touchTimer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly file: string,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  /** Reads the file (a missing or unreadable one is an empty list: nothing is paired, nothing is let in). */
  static async open(file: string, options: { log?: Logger; now?: () => number } = {}): Promise<RemoteDevices> {
    const devices = new RemoteDevices(file, options.log ?? silentLogger, options.now ?? Date.now);
    try {
      const parsed = JSON.parse(await readFile(file, 'utf8')) as { devices?: unknown };
      for (const d of Array.isArray(parsed.devices) ? (parsed.devices as Array<Partial<StoredDevice>>) : []) {
        if (typeof d.id !== 'string' || typeof d.hash !== 'string' || typeof d.label !== 'string' || typeof d.createdAt !== 'string')
          continue;
        devices.byHash.set(d.hash, {
          id: d.id,
          hash: d.hash,
          label: d.label,
          createdAt: d.createdAt,
          ...(typeof d.lastUsedAt === 'string' ? { lastUsedAt: d.lastUsedAt } : {}),
          ...(typeof d.revokedAt === 'string' ? { revokedAt: d.revokedAt } : {}),
        });
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') devices.log.warn('remote devices file unreadable; starting empty', { error: e });
    }
    return devices;
  }

  /** Newest first; never the hash. */
  list(): RemoteDevice[] {
    return [...this.byHash.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt)).map(publicView);
  }

  /** A new device and its token: the only time the token exists on this side, handed to the pairing that asked. */
  async issue(label: string): Promise<{ device: RemoteDevice; token: string }> {
    const token = `${REMOTE_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const stored: StoredDevice = {
      id: `rd_${randomBytes(5).toString('hex')}`,
      hash: hashRemoteToken(token),
      label,
      createdAt: new Date(this.now()).toISOString(),
    };
    this.byHash.set(stored.hash, stored);
    await this.save();
    return { device: publicView(stored), token };
  }

  /** The front door's check (synchronous: a Map lookup of the token's hash). Records "last used" on success. */
  verify(token: string): RemoteTokenVerdict {
    if (!isRemoteToken(token)) return { kind: 'unknown' };
    const stored = this.byHash.get(hashRemoteToken(token));
    if (!stored) return { kind: 'unknown' };
    if (stored.revokedAt) return { kind: 'revoked', device: publicView(stored) };
    stored.lastUsedAt = new Date(this.now()).toISOString();
    this.scheduleTouch();
    return { kind: 'ok', device: publicView(stored) };
  }

  /** Revokes a device: its token is refused from the next request on. */
  async revoke(id: string): Promise<RemoteDevice> {
    const stored = [...this.byHash.values()].find((d) => d.id === id);
    if (!stored) {
      throw new LanyardError(
        ErrorCodes.REMOTE_TOKEN_REFUSED,
        `No paired remote device has the id "${id.slice(0, 40)}".`,
        'Run `lanyard remote list` to see the ids.',
      );
    }
    stored.revokedAt ??= new Date(this.now()).toISOString();
    await this.save();
    return publicView(stored);
  }

  /** Forgets a device that was approved but never collected its token (the pairing expired first). */
  async forget(id: string): Promise<void> {
    for (const [hash, d] of this.byHash) if (d.id === id) this.byHash.delete(hash);
    await this.save();
  }

  async flush(): Promise<void> {
    if (this.touchTimer) {
      clearTimeout(this.touchTimer);
      this.touchTimer = undefined;
      await this.save();
    }
    await this.writing;
  }

  private scheduleTouch(): void {
    if (this.touchTimer) return;
    this.touchTimer = setTimeout(() => {
      this.touchTimer = undefined;
      void this.save();
    }, TOUCH_WRITE_MS);
    this.touchTimer.unref();
  }

  private save(): Promise<void> {
    const body = `${JSON.stringify({ version: 1, devices: [...this.byHash.values()] }, null, 2)}\n`;
    this.writing = this.writing.then(
      () => writePrivateFile(this.file, body),
      () => writePrivateFile(this.file, body),
    );
    return this.writing.catch((e: unknown) => {
      this.log.warn('remote devices file not written', { error: e });
      throw e;
    });
  }
}

function publicView(d: StoredDevice): RemoteDevice {
  return {
    id: d.id,
    label: d.label,
    createdAt: d.createdAt,
    ...(d.lastUsedAt ? { lastUsedAt: d.lastUsedAt } : {}),
    ...(d.revokedAt ? { revokedAt: d.revokedAt } : {}),
  };
}
