import {
  controlMethodNames,
  type ControlApi,
  type ControlEventName,
  type ControlEventPayload,
  type IdentityProfile,
  type Status,
} from '../../../shared/contract';
import { Emitter } from '../../../shared/emitter';
import type { ControlService } from '../control/control-service';
import type { Logger } from '../util/log';
import type { IdentityProfiles } from './identity-profiles';

type Listener = <E extends ControlEventName>(event: E, payload: ControlEventPayload<E>) => void;
type Event = { [E in ControlEventName]: { name: E; payload: ControlEventPayload<E> } }[ControlEventName];

/** The control contract with events, as the desktop shell takes it (electron/main/shell.ts ShellControl). */
export type SwitchableControl = ControlApi & { onEvent(listener: Listener): () => void };

/**
 * The desktop app's control facade over every identity profile: the dashboard (over IPC) and the tray act on one
 * profile at a time — the default one until `selectIdentityProfile` picks another — and see every profile's sign-in
 * state in `status.identities`. Events reach the surface from the current profile only, plus a fresh status whenever
 * any profile's changes (the tray shows each). The CLI and the browser dashboard never go through this: they address
 * a profile by its path (`/p/<name>/api`), so one surface's choice never redirects another's commands.
 */
export function createSwitchingControl(root: ControlService, identities: IdentityProfiles, log: Logger): SwitchableControl {
  let current: string | null = null;
  const events = new Emitter<Event>((e) => log.warn('control listener failed', { error: e }));
  const watched = new Map<string, () => void>();
  const target = async (): Promise<ControlService> => (current === null ? root : (await identities.broker(current)).control);

  let pushing: NodeJS.Timeout | undefined;
  /** One status push for a burst of changes in any profile (sign-in elsewhere changes the tray's list). */
  const pushStatus = (): void => {
    if (pushing || events.size === 0) return;
    pushing = setTimeout(() => {
      pushing = undefined;
      status().then(
        (s) => events.emit({ name: 'status', payload: s }),
        (e: unknown) => log.warn('status push failed', { error: e }),
      );
    }, 50);
    pushing.unref();
  };
  /** Follows a profile's events: its activity while it is current, its status changes always (as a fresh status). */
  const watch = (name: string | null, control: ControlService): void => {
    const key = name ?? '';
    if (watched.has(key)) return;
    watched.set(
      key,
      control.onEvent((event, payload) => {
        if (event === 'status') pushStatus();
        else if (name === current) events.emit({ name: event, payload } as Event);
      }),
    );
  };
  watch(null, root);

  const list = async (selected: string | null): Promise<IdentityProfile[]> => {
    const profiles = await identities.list(selected, () => root.status());
    for (const p of profiles)
      if (p.name !== null)
        void identities.broker(p.name).then(
          (b) => watch(p.name, b.control),
          () => undefined,
        );
    return profiles;
  };
  const status = async (): Promise<Status> => {
    const [own, profiles] = await Promise.all([target().then((c) => c.status()), list(current)]);
    return profiles.length > 1 ? { ...own, identities: profiles } : own;
  };

  const api = Object.fromEntries(
    controlMethodNames.map((method) => [method, async (input: never) => ((await target())[method] as (i: never) => unknown)(input)]),
  ) as unknown as ControlApi;
  return {
    ...api,
    status,
    listIdentityProfiles: () => list(current),
    async selectIdentityProfile(input) {
      const profiles = await root.selectIdentityProfile(input);
      current = input.name;
      pushStatus();
      return profiles.map((p) => ({ ...p, current: p.name === current }));
    },
    onEvent(listener) {
      return events.on(({ name, payload }) => listener(name, payload));
    },
  };
}
