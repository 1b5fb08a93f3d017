/**
 * The preload script: runs sandboxed (CommonJS, only 'electron' and a few built-ins can be required) in an isolated
 * world, and exposes a narrow, frozen API as `window.lanyard`. Nothing else crosses into the page.
 */
import { contextBridge } from 'electron';
import { version } from '../../package.json';
import type { LanyardApi } from './lanyard-api';

const api: LanyardApi = Object.freeze({ version });

contextBridge.exposeInMainWorld('lanyard', api);
