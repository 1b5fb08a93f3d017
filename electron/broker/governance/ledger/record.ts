import { hash as oneShotHash } from 'node:crypto';

/**
 * One audit record (docs/architecture.md, "Audit ledger"). Names, ids, codes, hashes and durations only: never a
 * token, never tool arguments or results (at most a salted hash of the arguments, off by default).
 *
 * On disk each record is one JSON line whose first fields are `seq` and `prev`, and whose last field is `hash`:
 *   hash = SHA-256( the line up to, not including, `,"hash":"` )
 * and `prev` is the hash of the record before it (GENESIS for the first), across file rotations. Editing, removing or
 * reordering any record breaks the chain at that record; `lanyard audit verify` names it.
 */

export const GENESIS = '0'.repeat(64);
export const LEDGER_VERSION = 1;

export type TokenEventKind = 'sign_in' | 'refresh' | 'sign_out' | 'id_jag' | 'access_token' | 'step_up' | 'revoke' | 'denial';

/** The signed-in IdP user a record is made under. */
export interface LedgerUser {
  iss: string;
  sub: string;
  email?: string | undefined;
}

/** What the callers give; the ledger adds seq, time, chain and user. */
export interface CallRecordInput {
  type: 'call';
  ide: string;
  ideVersion?: string | undefined;
  /** The paired remote device's label, when the call came from one (WSL, SSH host, dev container). */
  remote?: string | undefined;
  endpoint: string;
  profile?: string | undefined;
  server: string;
  url?: string | undefined;
  method: string;
  name?: string | undefined;
  authPath?: string | undefined;
  grant?: string | undefined;
  outcome: 'ok' | 'error' | 'denied';
  code?: string | undefined;
  ms: number;
  /** Secret kinds and argument paths the scan found (never the values), and what the policy did. */
  secrets?: { action: 'warned' | 'blocked'; findings: Array<{ kind: string; path: string }> } | undefined;
  /** The scan could not cover everything (size or depth caps): what it skipped. */
  unscanned?: string | undefined;
  /** Salted SHA-256 of the arguments (only with `audit.hashArguments`). */
  argsHash?: string | undefined;
}

export interface TokenRecordInput {
  type: 'token';
  event: TokenEventKind;
  server?: string | undefined;
  authPath?: string | undefined;
  grant?: string | undefined;
  scopes?: string | undefined;
  outcome: 'ok' | 'error' | 'denied';
  code?: string | undefined;
  ms?: number | undefined;
}

/** A marker the ledger writes about itself (a start after its files were found damaged, records it could not keep). */
export interface NoteRecordInput {
  type: 'note';
  note: 'started' | 'damaged' | 'lost';
  detail: string;
}

export type RecordInput = CallRecordInput | TokenRecordInput | NoteRecordInput;

export type LedgerRecord = RecordInput & {
  seq: number;
  prev: string;
  v: number;
  at: string;
  user?: LedgerUser | undefined;
  hash: string;
};

const HASH_FIELD = ',"hash":"';

/** The line of a record (newline excluded) and its hash. */
export function sealRecord(
  seq: number,
  prev: string,
  at: string,
  user: LedgerUser | undefined,
  input: RecordInput,
): { line: string; hash: string } {
  // seq and prev first (verify reads them cheaply), then the fixed fields, then the record's own.
  const head = JSON.stringify({ seq, prev, v: LEDGER_VERSION, at, ...(user ? { user } : {}), ...input }).slice(0, -1);
  const hash = hashBody(head);
  return { line: `${head}${HASH_FIELD}${hash}"}`, hash };
}

/** Splits a stored line into the part its hash covers and its claimed hash; undefined when it has no hash field. */
export function unsealLine(line: string): { body: string; hash: string } | undefined {
  const at = line.lastIndexOf(HASH_FIELD);
  if (at < 0 || !line.endsWith('"}') || line.length - at !== HASH_FIELD.length + 64 + 2) return undefined;
  return { body: line.slice(0, at), hash: line.slice(at + HASH_FIELD.length, -2) };
}

export const HASH_FIELD_BYTES = Buffer.from(HASH_FIELD);

/** SHA-256, hex (the one-shot form: a million records are verified in seconds). */
export function hashBody(body: string | Buffer): string {
  return oneShotHash('sha256', body, 'hex');
}
