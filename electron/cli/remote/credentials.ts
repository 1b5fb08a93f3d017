import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writePrivateFile } from '../../broker/paths';

/**
 * The remote side's credentials: one remote token per laptop endpoint, in `<home>/remote/credentials.json` (0600,
 * directory 0700). A file rather than the keychain: a WSL distribution, an SSH host or a dev container rarely has a
 * keychain (no desktop session, no Secret Service). The token opens the laptop's MCP endpoints only, and the laptop
 * can revoke it at any time (`lanyard remote revoke`).
 */
export interface RemoteCredential {
  token: string;
  deviceId: string;
  label: string;
  pairedAt: string;
}

export function remoteCredentialsFile(home: string): string {
  return path.join(home, 'remote', 'credentials.json');
}

export async function readRemoteCredentials(home: string): Promise<Record<string, RemoteCredential>> {
  try {
    const parsed = JSON.parse(await readFile(remoteCredentialsFile(home), 'utf8')) as { endpoints?: unknown };
    const endpoints = parsed.endpoints;
    return typeof endpoints === 'object' && endpoints !== null ? (endpoints as Record<string, RemoteCredential>) : {};
  } catch {
    return {};
  }
}

export async function readRemoteCredential(home: string, origin: string): Promise<RemoteCredential | undefined> {
  const found = (await readRemoteCredentials(home))[origin];
  return found && typeof found.token === 'string' ? found : undefined;
}

export async function saveRemoteCredential(home: string, origin: string, credential: RemoteCredential): Promise<string> {
  const all = await readRemoteCredentials(home);
  all[origin] = credential;
  const file = remoteCredentialsFile(home);
  await writePrivateFile(file, `${JSON.stringify({ version: 1, endpoints: all }, null, 2)}\n`);
  return file;
}
