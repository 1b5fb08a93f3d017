import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';
import { keychainNamespace, lanyardPaths } from '../paths';
import { FileSecretStore } from './file-store';
import { KeychainSecretStore } from './keychain-store';
import type { SecretStore } from './secret-store';

export { FileSecretStore, FILE_STORE_DESCRIPTION } from './file-store';
export { KeychainSecretStore, describeKeychain, napiKeyring, type KeyringBinding, type KeychainSecretStoreOptions } from './keychain-store';
export { classifyKeychainFailure, toKeychainError, type KeychainFailure } from './keychain-errors';
export { MemorySecretStore } from './memory-store';
export {
  assertValidSecretKey,
  probeSecretStore,
  secretKeys,
  type SecretStore,
  type SecretStoreKind,
  type SecretStoreProbe,
} from './secret-store';

/** The values `LANYARD_SECRET_STORE` accepts. */
export type SecretStoreChoice = 'os-keychain' | 'file';

export interface CreateSecretStoreOptions {
  /** The instance's home (`resolveLanyardHome()`): names the keychain namespace and holds the opt-in file. */
  home: string;
  env?: Record<string, string | undefined>;
  platform?: NodeJS.Platform;
}

/**
 * The secret store for the instance at `home`: the OS keychain, unless the user explicitly opted in to the plaintext
 * file with `LANYARD_SECRET_STORE=file`.
 *
 * There is deliberately no automatic fallback: a keychain that fails must surface as a keychain error the user can
 * fix (`lanyard doctor` says how), never as tokens quietly written to disk.
 */
export function createSecretStore(options: CreateSecretStoreOptions): SecretStore {
  const env = options.env ?? process.env;
  const platform = options.platform ?? process.platform;
  const choice = parseSecretStoreChoice(env.LANYARD_SECRET_STORE);
  if (choice === 'file') return new FileSecretStore({ file: lanyardPaths(options.home, platform).secretsFile, platform });
  return new KeychainSecretStore({ service: keychainNamespace(options.home, env, platform), platform });
}

/** `LANYARD_SECRET_STORE`: unset/empty or `os-keychain`/`keychain` → keychain, `file` → file; anything else is an error. */
export function parseSecretStoreChoice(raw: string | undefined): SecretStoreChoice {
  const value = raw?.trim().toLowerCase() ?? '';
  if (value === '' || value === 'os-keychain' || value === 'keychain') return 'os-keychain';
  if (value === 'file') return 'file';
  throw new LanyardError(
    ErrorCodes.CONFIG_INVALID,
    `LANYARD_SECRET_STORE must be "os-keychain" or "file" (got "${raw}").`,
    'Unset LANYARD_SECRET_STORE to use the OS keychain, or set it to "file" to opt in to the plaintext 0600 file on a headless machine.',
  );
}
