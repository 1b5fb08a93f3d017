import { checkIdentityProfileName } from '../broker/identities/names';

/**
 * Takes the global `--profile <name>` (or `--profile=<name>`) out of a command's arguments: every command runs against
 * that identity profile (its home under `identities/`, its endpoint `/p/<name>/` of the running broker). Arguments after
 * `--` are left alone. Throws the name's LanyardError when it is not allowed.
 */
export function takeProfileOption(args: readonly string[]): { profile: string | undefined; rest: string[] } {
  const rest: string[] = [];
  let profile: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      rest.push(...args.slice(i));
      break;
    }
    if (arg === '--profile' || arg.startsWith('--profile=')) {
      const value = arg === '--profile' ? args[++i] : arg.slice('--profile='.length);
      profile = checkIdentityProfileName(value ?? '');
      continue;
    }
    rest.push(arg);
  }
  return { profile, rest };
}
