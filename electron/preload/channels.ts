/**
 * The IPC channel names, in one place both sides import (main registers them, the preload invokes them), so a name
 * can never drift between the two. Pure and zod-free: main's unit tests load it under plain Node, and the sandboxed
 * preload stays small (it imports only types from the contract).
 *
 * One channel per control method (`lanyard:<method>`): main can refuse an unknown channel outright, and each handler
 * parses exactly one input schema. Events travel on one channel as `{ name, payload }`.
 */
import type { ControlMethodName } from '../../shared/contract';

/** Main → renderer: every pushed event (`status`, `activity`, and the shell's `navigate`). */
export const EVENT_CHANNEL = 'lanyard:event';

/** Every control method, as a literal list the preload can use without loading zod. */
export const CONTROL_METHODS = [
  'status',
  'signIn',
  'signOut',
  'beginSignIn',
  'completeSignIn',
  'awaitSignIn',
  'listServers',
  'addServer',
  'removeServer',
  'setServerEnabled',
  'probeUrl',
  'testServer',
  'listTools',
  'connectIde',
  'disconnectIde',
  'rotateLocalToken',
  'authorizeServer',
  'setServerKey',
  'recentActivity',
  'getSettings',
  'updateSettings',
  'auditLog',
  'toolReviews',
  'approveTools',
  'rejectTools',
  'getProfiles',
  'setProfile',
  'listIdentityProfiles',
  'selectIdentityProfile',
  'listRemoteDevices',
  'approvePairing',
  'revokeRemoteDevice',
] as const satisfies readonly ControlMethodName[];

// Fails to compile when the contract gains a method this list lacks (the reverse is caught by `satisfies` above).
type Missing = Exclude<ControlMethodName, (typeof CONTROL_METHODS)[number]>;
const _allMethodsListed: [Missing] extends [never] ? true : Missing = true;
void _allMethodsListed;

export function controlChannel(method: ControlMethodName): `lanyard:${ControlMethodName}` {
  return `lanyard:${method}`;
}
