import { ErrorCodes } from '../../../shared/errors';
import { LanyardError, redactText } from '../errors';

/** What went wrong with the OS keychain, in the terms the user can act on. */
export type KeychainFailure =
  | 'no-session-bus'
  | 'no-provider'
  | 'no-default-collection'
  | 'locked'
  | 'access-denied'
  | 'timeout'
  | 'too-long'
  | 'ambiguous'
  | 'unknown';

export type KeychainOperation = 'read' | 'save' | 'delete' | 'list';

export interface KeychainErrorContext {
  /** The store's description, named in the generic message. */
  backend: string;
  operation: KeychainOperation;
  platform?: NodeJS.Platform;
  /** The values being written, if any: scrubbed from any text that reaches the message. */
  secret?: string | readonly string[];
}

/**
 * The strings @napi-rs/keyring 2.1.2 (keyring-rs + zbus) produces, matched in this order. The first group was
 * observed on Debian 12 with gnome-keyring 42 (see test/integration/keychain.test.ts, which reproduces each one);
 * the macOS and Windows ones are the OS's documented error texts (errSecInteractionNotAllowed, errSecAuthFailed,
 * ERROR_ACCESS_DENIED).
 */
const PATTERNS: ReadonlyArray<[KeychainFailure, RegExp]> = [
  // Entry ops: "Platform failure: DBus error: Failed to connect to socket /x: No such file or directory", or with no
  // DBUS_SESSION_BUS_ADDRESS at all "... autolaunch was disabled at compile time, set your DBUS_SESSION_BUS_ADDRESS
  // instead". findCredentials (zbus): "zbus error: Failed to connect to address `unix:path=/x`: ...".
  [
    'no-session-bus',
    /DBUS_SESSION_BUS_ADDRESS|Failed to connect to (socket|address)|autolaunch|org\.freedesktop\.DBus\.Error\.(NoServer|FileNotFound|Disconnected)|Connection refused/i,
  ],
  // keyring-rs: "Attribute 'password' is longer than platform limit of 2560 chars" (Windows credential blob).
  ['too-long', /longer than platform limit|TooLong/i],
  // keyring-rs: "Entry is matched by N credentials: [...]" (a third-party app wrote a duplicate).
  // Checked early: the list it prints could contain any word.
  ['ambiguous', /matched by \d+ credentials|Ambiguous/i],
  // The bus is up but nothing owns org.freedesktop.secrets and no .service file can activate it.
  ['no-provider', /ServiceUnknown|org\.freedesktop\.secrets was not provided|not provided by any \.service files/i],
  // Locked: "Couldn't access platform storage: Secret Service: unlock prompt was dismissed" (no DISPLAY for the
  // prompter), findCredentials: "org.freedesktop.Secret.Error.IsLocked"; macOS: "User interaction is not allowed".
  [
    'locked',
    /unlock prompt was dismissed|IsLocked|is locked|keychain.*locked|User interaction is not allowed|errSecInteractionNotAllowed|-25308/i,
  ],
  // A write with no default ("login") collection: "Couldn't access platform storage: Secret Service: no result found".
  ['no-default-collection', /no result found|NoSuchObject|No such (object|collection)|no default collection/i],
  [
    'access-denied',
    /AccessDenied|PermissionDenied|Access is denied|permission denied|not permitted|errSecAuthFailed|-25293|passphrase you entered is not correct/i,
  ],
];

export function classifyKeychainFailure(raw: unknown): KeychainFailure {
  const text = rawText(raw);
  if (isTimeout(raw)) return 'timeout';
  for (const [failure, pattern] of PATTERNS) if (pattern.test(text)) return failure;
  return 'unknown';
}

/** The message of the error and of its causes, which is where keyring-rs puts the platform's own words. */
function rawText(raw: unknown): string {
  const parts: string[] = [];
  let current: unknown = raw;
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    if (current instanceof Error) {
      parts.push(current.message);
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(' | ');
}

export class KeychainTimeoutError extends Error {
  override readonly name = 'KeychainTimeoutError';
}

function isTimeout(raw: unknown): boolean {
  return raw instanceof KeychainTimeoutError;
}

const VERB: Record<KeychainOperation, string> = {
  read: 'reading a secret',
  save: 'saving a secret',
  delete: 'deleting a secret',
  list: 'listing secrets',
};

const HEADLESS_FIX =
  "Run Lanyard inside a desktop session, or start one with dbus-run-session and gnome-keyring-daemon; see README 'Headless Linux'";

/**
 * Turns whatever @napi-rs/keyring threw into the `LanyardError` the user sees. The message is one of a fixed set of
 * sentences; only the unknown case quotes the platform's text, redacted and with the value being written removed,
 * because keyring-rs puts item attributes (never values, but we do not rely on that) into some messages.
 */
export function toKeychainError(raw: unknown, context: KeychainErrorContext): LanyardError {
  if (raw instanceof LanyardError) return raw;
  const platform = context.platform ?? process.platform;
  const failure = classifyKeychainFailure(raw);
  const make = (message: string, fix: string) =>
    new LanyardError(ErrorCodes.KEYCHAIN_UNAVAILABLE, message, fix, {
      cause: raw,
      transient: failure === 'locked' || failure === 'timeout',
    });
  switch (failure) {
    case 'no-session-bus':
      return make('No D-Bus session: the Secret Service cannot be reached.', HEADLESS_FIX);
    case 'no-provider':
      return make(
        'No Secret Service is running on the D-Bus session (nothing provides org.freedesktop.secrets).',
        `Install and start gnome-keyring (or enable the Secret Service in KeePassXC or KWallet). ${HEADLESS_FIX}.`,
      );
    case 'no-default-collection':
      return make(
        'The keyring has no default collection, so Lanyard has nowhere to save secrets.',
        "Create a default keyring: log in to a desktop session once (or create a 'login' keyring in Seahorse), or on a headless box start gnome-keyring-daemon with --unlock and a non-empty password; see README 'Headless Linux'.",
      );
    case 'locked':
      return make(
        platform === 'darwin' ? 'The keychain is locked.' : 'The keyring is locked.',
        platform === 'darwin'
          ? 'Unlock your login keychain (log in to macOS or open Keychain Access) and retry.'
          : 'Unlock your login keyring (log in to the desktop) and retry.',
      );
    case 'access-denied':
      return make(
        `Access to the ${context.backend} was denied while ${VERB[context.operation]}.`,
        platform === 'darwin'
          ? "Allow Lanyard when macOS asks for keychain access (or in Keychain Access, add Lanyard to the item's Access Control), then retry."
          : 'Allow Lanyard to use the keychain (check your keyring manager or security policy), then retry.',
      );
    case 'timeout':
      return make(
        `The ${context.backend} did not answer while ${VERB[context.operation]}; it may be waiting for an unlock prompt.`,
        'Unlock your keychain if a prompt is open, then retry; run `lanyard doctor` if it keeps happening.',
      );
    case 'too-long':
      return make(
        `The ${context.backend} refused a secret because it is longer than the platform allows.`,
        'Report this with the output of `lanyard doctor`; as a workaround use LANYARD_SECRET_STORE=file (less safe).',
      );
    case 'ambiguous':
      return make(
        `More than one item in the ${context.backend} matches a Lanyard entry (another application wrote a duplicate).`,
        "Open your keychain manager, delete the duplicate items whose service starts with 'lanyard', then sign in again.",
      );
    case 'unknown': {
      let detail = rawText(raw);
      const secrets = typeof context.secret === 'string' ? [context.secret] : (context.secret ?? []);
      // Longest first, so a value that contains another is scrubbed whole.
      for (const secret of [...secrets].sort((a, b) => b.length - a.length)) if (secret) detail = detail.split(secret).join('[redacted]');
      detail = redactText(detail).slice(0, 300);
      return make(
        `The ${context.backend} failed while ${VERB[context.operation]}: ${detail}`,
        'Run `lanyard doctor`. If the keychain cannot be fixed on this machine, opt in to file storage with LANYARD_SECRET_STORE=file (less safe).',
      );
    }
  }
}
