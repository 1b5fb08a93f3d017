import type { Sandbox } from '../../test/fixtures/sandbox';

/** What the sandbox process tells the benchmark once it listens. */
export interface SandboxReady {
  config: ReturnType<Sandbox['lanyardConfig']>;
  secrets: Record<string, string>;
  servers: Array<{ id: string; url: string }>;
  idpIssuer: string;
}

/** What the parties counted so far (cumulative; the benchmark takes differences). */
export interface SandboxCounters {
  logins: number;
  refreshes: number;
  exchanges: number;
  exchangeRejections: number;
  /** Access tokens issued by all authorization servers (ID-JAGs redeemed). */
  grants: number;
  toolCalls: number;
  sessions: number;
}

export type SandboxRequest =
  | { id: number; cmd: 'counters' }
  | { id: number; cmd: 'completeLogin'; url: string; user?: string }
  | { id: number; cmd: 'dropSessions' }
  | { id: number; cmd: 'stop' };

export type SandboxResponse = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };
