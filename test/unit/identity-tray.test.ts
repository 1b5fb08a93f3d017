/**
 * The tray with more than one identity profile (electron/main/tray-presenter.ts): a line per profile with its state,
 * the current one checked; picking another switches to it. With one identity the menu is as before.
 */
import { describe, expect, it } from 'vitest';
import type { IdentityProfile } from '../../shared/contract';
import { presentTray, type TrayMenuItem } from '../../electron/main/tray-presenter';
import { status } from './renderer-fixtures';

type Item = Extract<TrayMenuItem, { type: 'item' }>;
const items = (view: ReturnType<typeof presentTray>) => view.items.filter((i): i is Item => i.type === 'item');

const profiles: IdentityProfile[] = [
  { name: null, status: 'signed_in', user: 'alice@example.com', managed: false, current: true },
  { name: 'contractor', status: 'signed_in', user: 'carol@contractor.example', managed: false, current: false },
  { name: 'lab', status: 'expired', user: 'alice@lab.example', managed: true, current: false },
  { name: 'new', status: 'signed_out', managed: false, current: false },
];

describe('presentTray with identity profiles', () => {
  it('lists each profile with its state; the current one is checked and the others switch to theirs', () => {
    const view = presentTray(status({ identities: profiles }));
    const lines = items(view).filter((i) => i.id.startsWith('identity:'));
    expect(lines.map((i) => [i.label, i.dot, i.enabled])).toEqual([
      ['✓ Default — alice@example.com', 'ok', false],
      ['contractor — carol@contractor.example', 'ok', true],
      ['lab — alice@lab.example', 'error', true],
      ['new — Not Signed In', 'off', true],
    ]);
    expect(lines[1]!.action).toEqual({ type: 'identity', name: 'contractor' });
    expect(lines[0]!.action).toEqual({ type: 'identity', name: null });
  });

  it('shows nothing extra with only the default identity', () => {
    expect(items(presentTray(status({ identities: [profiles[0]!] }))).some((i) => i.id.startsWith('identity:'))).toBe(false);
    expect(items(presentTray(status())).some((i) => i.id.startsWith('identity:'))).toBe(false);
  });
});
