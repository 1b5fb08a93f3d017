import path from 'node:path';
import { ErrorCodes } from '../../../../shared/errors';
import { LanyardError } from '../../errors';
import type { ToolGate } from './gate';

/** `<home>/tool-pins.json`: the pins, rejections and pending reviews of one Lanyard instance (store.ts). */
export function toolPinsFile(home: string): string {
  return path.join(home, 'tool-pins.json');
}

/** The review methods where no gate runs (a control service built for the CLI's own process, tests). */
export const noToolGate: Pick<ToolGate, 'reviews' | 'approve' | 'reject' | 'pendingCount'> = {
  reviews: () => [],
  pendingCount: () => 0,
  approve: (serverId) => {
    throw nothingPending(serverId);
  },
  reject: (serverId) => {
    throw nothingPending(serverId);
  },
};

function nothingPending(serverId: string): LanyardError {
  return new LanyardError(
    ErrorCodes.SERVER_UNKNOWN,
    `Server "${serverId}" has no tools waiting for review.`,
    'Run `lanyard tools review` to see what is waiting.',
    {
      serverId,
    },
  );
}
