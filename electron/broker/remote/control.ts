import type { RemoteAccess, RemoteDevice } from '../../../shared/contract';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';
import type { PairingService } from './pairing';

/** The control contract's remote-development methods (listRemoteDevices, approvePairing, revokeRemoteDevice). */
export class RemoteControl {
  constructor(private readonly remote: (() => Promise<PairingService>) | undefined) {}

  async list(): Promise<RemoteAccess> {
    const service = await this.service();
    return { pending: service.pending(), devices: service.devices.list() };
  }

  async approve(code: string): Promise<RemoteDevice> {
    return (await this.service()).approve(code);
  }

  async revoke(id: string): Promise<RemoteDevice> {
    return (await this.service()).revoke(id);
  }

  private async service(): Promise<PairingService> {
    if (!this.remote)
      throw new LanyardError(
        ErrorCodes.INTERNAL,
        'Remote development is not available in this Lanyard.',
        'Use the tray app or `lanyard serve`.',
      );
    return this.remote();
  }
}
