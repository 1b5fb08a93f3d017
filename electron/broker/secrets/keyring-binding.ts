import { readdirSync } from 'node:fs';
import { AsyncEntry, findCredentialsAsync, type EntryOptions } from '@napi-rs/keyring';

/**
 * The few keychain calls the store needs, so unit tests can replay the platform's real failures without a keychain.
 * Resolves `null`/`false` for a missing entry; rejects only when the keychain itself failed.
 */
export interface KeyringBinding {
  getPassword(service: string, account: string): Promise<string | null>;
  setPassword(service: string, account: string, password: string): Promise<void>;
  /** Resolves `true` if an entry was removed, `false` if there was none. */
  deletePassword(service: string, account: string): Promise<boolean>;
  /** Every item stored under `service`, with its value: one call, whatever the number of items. */
  findCredentials(service: string): Promise<Array<{ account: string; password: string }>>;
  /** Prepares the entry for (service, account) now, so later calls on it need nothing new from the OS. */
  open?(service: string, account: string): void;
}

/**
 * Pins Linux to the Secret Service. Without it @napi-rs/keyring silently falls back to the kernel keyring
 * (keyutils), which loses everything at logout or reboot: the user would be asked to sign in again for no visible
 * reason. With the pin, a missing Secret Service is an error we can explain. Ignored on macOS and Windows.
 */
const ENTRY_OPTIONS: EntryOptions = { linux: { store: 'secret-service' } };

/**
 * Above this many open descriptors a new entry is not built (see `entry`): the constructor's connection would get a
 * descriptor number ≥ 1,024, which the library cannot handle.
 */
const SAFE_DESCRIPTORS = 900;

/**
 * One entry object per (service, account), reused. On Linux, constructing an `AsyncEntry` opens a D-Bus connection
 * synchronously (about 4–5 ms on the event loop) through a libdbus that waits on its socket with select(): once the
 * process holds ~1,024 descriptors the new socket's number is past select()'s fixed set and the constructor spins or
 * crashes (bench/keychain-probe.ts). An entry built earlier keeps working at any descriptor count — its connection
 * already has a low number — which is why the store goes through one entry built at start.
 */
const entries = new Map<string, AsyncEntry>();
function entry(service: string, account: string): AsyncEntry {
  const key = `${service}\u0000${account}`;
  let found = entries.get(key);
  if (!found) {
    found = new AsyncEntry(service, account, ENTRY_OPTIONS);
    entries.set(key, found);
  }
  return found;
}

/**
 * After a failure the cached entry is dropped so a keychain that comes back (daemon restarted) gets a fresh
 * connection — unless the process holds so many descriptors that building one would hang it: then the old entry stays,
 * and the next call tries it again.
 */
async function withEntry<T>(service: string, account: string, call: (e: AsyncEntry) => Promise<T>): Promise<T> {
  try {
    return await call(entry(service, account));
  } catch (e) {
    if (openDescriptors() < SAFE_DESCRIPTORS) entries.delete(`${service}\u0000${account}`);
    throw e;
  }
}

/** The process's open descriptors on Linux (0 elsewhere: only libdbus has the limit). */
function openDescriptors(): number {
  if (process.platform !== 'linux') return 0;
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/**
 * @napi-rs/keyring 2.1.2. A missing entry: `getPassword` resolves `null`, `deleteCredential` resolves `false`.
 *
 * `findCredentials` is the package's enumeration: on Linux it searches the Secret Service by the `service` attribute
 * over its own async D-Bus client (zbus, not libdbus: no descriptor limit), and it has no kernel-keyring path, so it
 * agrees with the pin above; on macOS/Windows it lists the generic passwords of the service.
 */
export const napiKeyring: KeyringBinding = {
  getPassword: (service, account) => withEntry(service, account, (e) => e.getPassword()),
  setPassword: (service, account, password) => withEntry(service, account, (e) => e.setPassword(password)),
  deletePassword: (service, account) => withEntry(service, account, (e) => e.deleteCredential()),
  findCredentials: async (service) => (await findCredentialsAsync(service)).map((c) => ({ account: c.account, password: c.password })),
  open: (service, account) => void entry(service, account),
};
