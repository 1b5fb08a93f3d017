import type { ActivityLog } from '../activity/activity-log';
import type { Logger } from '../util/log';
import { currentRemoteCaller } from './caller';
import { remoteDevicesFile, RemoteDevices } from './devices';
import { PairingService, type PairingEvent } from './pairing';

/**
 * The broker's remote-development service: the devices file, the pairing service, and their events in Activity (labels
 * and ids only — never a code, a handle or a token).
 */
export async function openRemoteAccess(deps: { home: string; activity: ActivityLog; log: Logger }): Promise<PairingService> {
  const devices = await RemoteDevices.open(remoteDevicesFile(deps.home), { log: deps.log.child('remote') });
  const pairing = new PairingService({ devices, log: deps.log });
  pairing.onEvent((event) => {
    const entry = activityOf(event);
    deps.activity.record({ kind: 'ide', ...entry });
  });
  return pairing;
}

function activityOf(event: PairingEvent): { summary: string; outcome: 'ok' | 'info' | 'error' } {
  switch (event.type) {
    case 'requested':
      return {
        summary: `Remote device "${event.label}" asks to pair: type the code it shows in Remote (or \`lanyard remote approve <code>\`)`,
        outcome: 'info',
      };
    case 'approved':
      return { summary: `Paired remote device "${event.device.label}" (${event.device.id})`, outcome: 'ok' };
    case 'revoked':
      return { summary: `Revoked remote device "${event.device.label}" (${event.device.id})`, outcome: 'info' };
    case 'wrong_code':
      return { summary: 'A wrong pairing code was typed', outcome: 'error' };
    case 'voided':
      return { summary: `Waiting pairing requests voided after ${event.reason}`, outcome: 'error' };
  }
}

/** An activity entry caused by a remote device's request says so (the laptop's own IDEs' entries are unchanged). */
export function withRemoteCaller<T extends { summary: string }>(event: T): T {
  const caller = currentRemoteCaller();
  return caller ? { ...event, summary: `${event.summary} (remote: ${caller.label})` } : event;
}
