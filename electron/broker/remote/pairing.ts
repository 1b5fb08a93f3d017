import { createHash, randomBytes, randomInt } from 'node:crypto';
import { Emitter } from '../../../shared/emitter';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';
import { silentLogger, type Logger } from '../util/log';
import type { RemoteDevice, RemoteDevices } from './devices';

/**
 * Pairing a remote side (docs/architecture.md, "Remote development"):
 *   1. the remote side asks (`POST /remote/pair`, no credential) and gets a short code and a pairing handle;
 *   2. the developer types that code on the laptop (`lanyard remote approve <code>`, or the dashboard's Remote view),
 *      which proves the approver sees the remote's terminal: a request someone else made on a shared SSH host has
 *      another code;
 *   3. the remote side collects its token once with the handle (`POST /remote/pair/claim`).
 *
 * Faults, each a clear state: a wrong code counts against a small budget (after MAX_WRONG_CODES every waiting request
 * is voided, so guessing needs a new request from the remote, which its user would notice); a code is good for
 * CODE_TTL_MS; approving twice or collecting twice is refused (single use); too many waiting requests are refused.
 * The handle is a 256-bit secret kept here only as a hash; the token exists in memory only between approval and
 * collection. No code, handle or token goes into an error, a log line or Activity (codes are typed back by a person,
 * so errors name the request by its label).
 */

/** Unambiguous characters: no 0/O, 1/I/L, U (read aloud or copied by hand from another terminal). */
export const PAIRING_ALPHABET = 'ABCDEFGHJKMNPQRSTVWXYZ23456789';
export const CODE_LENGTH = 8;
export const CODE_TTL_MS = 5 * 60_000;
export const MAX_WRONG_CODES = 5;
export const MAX_PENDING = 5;
const MAX_LABEL = 60;
/** Anything a person could read as a pairing code: a word of four and four characters of the code alphabet, any case. */
const CODE_LOOKALIKE = new RegExp(`(?<![\\p{L}\\p{N}])[${PAIRING_ALPHABET}]{4}[-\\s]?[${PAIRING_ALPHABET}]{4}(?![\\p{L}\\p{N}])`, 'giu');

type PairingState = 'pending' | 'approved' | 'collected' | 'void';

interface Pairing {
  handleHash: string;
  code: string;
  label: string;
  createdAt: number;
  expiresAt: number;
  state: PairingState;
  device?: RemoteDevice;
  /** Between approval and collection only. */
  token?: string | undefined;
}

export interface PendingPairing {
  label: string;
  createdAt: string;
  expiresAt: string;
}

export type ClaimResult =
  | { state: 'pending'; expiresAt: string }
  | { state: 'approved'; token: string; device: RemoteDevice }
  | { state: 'refused'; error: LanyardError };

export type PairingEvent =
  | { type: 'requested'; label: string }
  | { type: 'approved'; device: RemoteDevice }
  | { type: 'voided'; reason: string }
  | { type: 'revoked'; device: RemoteDevice }
  | { type: 'wrong_code' };

export interface PairingServiceOptions {
  devices: RemoteDevices;
  log?: Logger;
  now?: () => number;
}

/** `ABCD-EFGH`: how a code is shown; typed back with or without the dash, in any case. */
export function formatCode(code: string): string {
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

export function normalizeCode(input: string): string {
  return input.toUpperCase().replace(/[\s-]/g, '');
}

/** A label from the remote side: printable, short, never mistaken for markup. */
export function cleanLabel(input: unknown): string {
  const text = typeof input === 'string' ? input : '';
  const clean = [...text]
    // Letters, digits and a few separators only: no quotes or markup that could dress the label up as an instruction.
    .filter((c) => /[\p{L}\p{N} ._()@:/-]/u.test(c))
    .join('')
    // The label is chosen by whoever asks and shown on the laptop, where the code is deliberately not shown: a label
    // must not carry something that looks like a pairing code ("type ABCD-EFGH") for the developer to type.
    .replace(CODE_LOOKALIKE, '…')
    .trim()
    .slice(0, MAX_LABEL);
  return clean || 'remote device';
}

export class PairingService {
  readonly devices: RemoteDevices;
  private readonly pairings = new Map<string, Pairing>();
  private wrongCodes = 0;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly events: Emitter<PairingEvent>;

  constructor(options: PairingServiceOptions) {
    this.devices = options.devices;
    this.now = options.now ?? Date.now;
    this.log = (options.log ?? silentLogger).child('pairing');
    this.events = new Emitter((e) => this.log.warn('pairing listener failed', { error: e }));
  }

  onEvent(listener: (event: PairingEvent) => void): () => void {
    return this.events.on(listener);
  }

  /** The remote side asks. Returns the handle (its secret for collecting) and the code its user sees. */
  request(labelInput: unknown): { pairing: string; code: string; label: string; expiresAt: string } {
    this.sweep();
    // An expired request no longer waits, even before the sweep forgets it: it cannot hold a place another one needs.
    const now = this.now();
    const waiting = [...this.pairings.values()].filter((p) => p.state === 'pending' && now < p.expiresAt).length;
    if (waiting >= MAX_PENDING) {
      throw new LanyardError(
        ErrorCodes.REMOTE_PAIRING_FAILED,
        `${waiting} pairing requests are already waiting for approval on the laptop.`,
        'Approve yours on the laptop (`lanyard remote approve <code>`), or wait five minutes for the others to expire, then run `lanyard remote pair` again.',
      );
    }
    const pairing = randomBytes(32).toString('base64url');
    let code: string;
    do code = newCode();
    while ([...this.pairings.values()].some((p) => p.code === code));
    const label = cleanLabel(labelInput);
    const createdAt = this.now();
    this.pairings.set(hashHandle(pairing), {
      handleHash: hashHandle(pairing),
      code,
      label,
      createdAt,
      expiresAt: createdAt + CODE_TTL_MS,
      state: 'pending',
    });
    this.events.emit({ type: 'requested', label });
    return { pairing, code: formatCode(code), label, expiresAt: new Date(createdAt + CODE_TTL_MS).toISOString() };
  }

  /** The requests waiting for a code on the laptop (never their codes: the approver types the one the remote shows). */
  pending(): PendingPairing[] {
    this.sweep();
    const now = this.now();
    return [...this.pairings.values()]
      .filter((p) => p.state === 'pending' && now < p.expiresAt)
      .map((p) => ({ label: p.label, createdAt: new Date(p.createdAt).toISOString(), expiresAt: new Date(p.expiresAt).toISOString() }));
  }

  /** The developer on the laptop approves the request showing `codeInput`. */
  async approve(codeInput: string): Promise<RemoteDevice> {
    this.sweep();
    const code = normalizeCode(codeInput);
    const pairing = [...this.pairings.values()].find((p) => p.code === code);
    if (!pairing) return this.wrongCode();
    const again = 'Run `lanyard remote pair <laptop endpoint>` on the remote side again and approve the new code.';
    if (pairing.state === 'approved' || pairing.state === 'collected')
      throw new LanyardError(
        ErrorCodes.REMOTE_PAIRING_FAILED,
        `That pairing code was already approved (a code is single use); its device is "${pairing.label}".`,
        'Nothing to do: the remote side has (or is collecting) its token. To pair another device, run `lanyard remote pair` there.',
      );
    if (pairing.state === 'void')
      throw new LanyardError(
        ErrorCodes.REMOTE_PAIRING_FAILED,
        `The pairing request with that code ("${pairing.label}") was voided after too many wrong codes.`,
        again,
      );
    if (this.now() >= pairing.expiresAt) {
      pairing.state = 'void';
      throw new LanyardError(
        ErrorCodes.REMOTE_PAIRING_FAILED,
        `That pairing code ("${pairing.label}") expired: codes are good for 5 minutes.`,
        again,
      );
    }
    const { device, token } = await this.devices.issue(pairing.label);
    pairing.state = 'approved';
    pairing.device = device;
    pairing.token = token;
    this.wrongCodes = 0;
    this.events.emit({ type: 'approved', device });
    return device;
  }

  /** The remote side collects its token with its handle: once. */
  claim(handle: unknown): ClaimResult {
    this.sweep();
    const again = 'Run `lanyard remote pair <laptop endpoint>` again.';
    const pairing = typeof handle === 'string' && handle.length < 200 ? this.pairings.get(hashHandle(handle)) : undefined;
    if (!pairing)
      return {
        state: 'refused',
        error: new LanyardError(ErrorCodes.REMOTE_PAIRING_FAILED, 'This pairing request is unknown or has expired.', again),
      };
    switch (pairing.state) {
      case 'pending':
        if (this.now() < pairing.expiresAt) return { state: 'pending', expiresAt: new Date(pairing.expiresAt).toISOString() };
        pairing.state = 'void';
        return {
          state: 'refused',
          error: new LanyardError(
            ErrorCodes.REMOTE_PAIRING_FAILED,
            'The pairing code expired before it was approved on the laptop (codes are good for 5 minutes).',
            again,
          ),
        };
      case 'void':
        return {
          state: 'refused',
          error: new LanyardError(
            ErrorCodes.REMOTE_PAIRING_FAILED,
            'This pairing request was voided on the laptop after too many wrong codes, or it expired.',
            again,
          ),
        };
      case 'collected':
        return {
          state: 'refused',
          error: new LanyardError(
            ErrorCodes.REMOTE_PAIRING_FAILED,
            'This pairing was already collected (a pairing is single use).',
            `If this side lost its token, revoke the old device on the laptop (\`lanyard remote revoke ${pairing.device?.id ?? '<id>'}\`) and ${again.charAt(0).toLowerCase()}${again.slice(1)}`,
          ),
        };
      case 'approved': {
        const token = pairing.token!;
        pairing.token = undefined;
        pairing.state = 'collected';
        return { state: 'approved', token, device: pairing.device! };
      }
    }
  }

  async revoke(id: string): Promise<RemoteDevice> {
    const device = await this.devices.revoke(id);
    this.events.emit({ type: 'revoked', device });
    return device;
  }

  private wrongCode(): never {
    this.wrongCodes++;
    if (this.wrongCodes >= MAX_WRONG_CODES) {
      this.wrongCodes = 0;
      let voided = 0;
      for (const p of this.pairings.values()) {
        if (p.state === 'pending') {
          p.state = 'void';
          voided++;
        }
      }
      this.events.emit({ type: 'voided', reason: `${MAX_WRONG_CODES} wrong pairing codes` });
      throw new LanyardError(
        ErrorCodes.REMOTE_PAIRING_FAILED,
        `${MAX_WRONG_CODES} wrong pairing codes in a row: ${voided === 1 ? 'the waiting pairing request was' : `all ${voided} waiting pairing requests were`} voided.`,
        'Run `lanyard remote pair <laptop endpoint>` on the remote side again and type the code it shows exactly.',
      );
    }
    this.events.emit({ type: 'wrong_code' });
    const left = MAX_WRONG_CODES - this.wrongCodes;
    throw new LanyardError(
      ErrorCodes.REMOTE_PAIRING_FAILED,
      `No waiting pairing request has that code (${left} more wrong ${left === 1 ? 'code voids' : 'codes void'} every waiting request).`,
      'Type the code `lanyard remote pair` shows on the remote side (letters and digits, the dash is optional); it is good for 5 minutes.',
    );
  }

  /** Drops finished requests; an approved token nobody collected in time is forgotten with its device. */
  private sweep(): void {
    const now = this.now();
    for (const [key, p] of this.pairings) {
      // Kept a while past expiry so a late claim or a second approval gets its own clear answer.
      if (now < p.expiresAt + CODE_TTL_MS) continue;
      this.pairings.delete(key);
      if (p.state === 'approved' && p.device) {
        p.token = undefined;
        void this.devices.forget(p.device.id).catch(() => undefined);
      }
    }
  }
}

function newCode(): string {
  let code = '';
  for (let i = 0; i < CODE_LENGTH; i++) code += PAIRING_ALPHABET[randomInt(PAIRING_ALPHABET.length)];
  return code;
}

function hashHandle(handle: string): string {
  return createHash('sha256').update(handle, 'utf8').digest('hex');
}
