import { existsSync } from 'node:fs';
import path from 'node:path';
import { Broker, type GatewayTimeouts, type RunningGateway } from './broker';
import { systemBrowserOpener } from './util/open-browser';
import { createLogger, type Logger } from './util/log';

export interface HeadlessOptions {
  version: string;
  home?: string;
  env?: NodeJS.ProcessEnv;
  /** Overrides gateway.port from the config (0 = any free port). */
  port?: number;
  log?: Logger;
  openUrl?: (url: string) => Promise<void> | void;
  fetch?: typeof fetch;
  /** Upstream time bounds of the gateway (defaults are the product's; tests shorten them). */
  timeouts?: GatewayTimeouts;
  /** The built dashboard (electron-vite's out/renderer); found next to the CLI bundle or the sources by default. */
  rendererDir?: string;
}

export interface HeadlessBroker {
  broker: Broker;
  gateway: RunningGateway;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** The aggregated MCP endpoint IDEs point at. */
  mcpUrl: string;
  /** A one-time link that opens the dashboard in a browser (no token stays in the URL or history). */
  dashboardLink(): string;
  stop(): Promise<void>;
}

/**
 * `lanyard serve` and `npm run demo`: the broker with its gateway, control API and dashboard, without Electron — for
 * WSL, SSH sessions and Linux servers. The Electron shell builds the same Broker and adds the tray and IPC.
 */
export async function startHeadless(options: HeadlessOptions): Promise<HeadlessBroker> {
  const log = options.log ?? createLogger();
  const broker = await Broker.create({
    version: options.version,
    openUrl: options.openUrl ?? systemBrowserOpener((url) => process.stderr.write(`\nOpen this link to sign in:\n  ${url}\n\n`)),
    ...(options.env ? { env: options.env } : {}),
    ...(options.home ? { home: options.home } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    log,
  });
  let gateway: RunningGateway;
  try {
    gateway = await broker.startGateway({
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...(options.timeouts ? { timeouts: options.timeouts } : {}),
      dashboard: { rendererDir: options.rendererDir ?? findRendererDir() },
    });
  } catch (e) {
    await broker.close();
    throw e;
  }
  return {
    broker,
    gateway,
    url: gateway.server.url,
    mcpUrl: gateway.server.mcpUrl,
    dashboardLink: () => gateway.dashboard?.oneTimeLink() ?? `${gateway.server.url}/`,
    async stop() {
      await gateway.stop();
      await broker.close();
    },
  };
}

/** out/renderer, seen from the bundled CLI (out/cli or a chunk in out/cli/chunks) or from the sources (electron/broker). */
function findRendererDir(): string {
  const candidates = ['../renderer', '../../renderer', '../../out/renderer'].map((p) => path.resolve(import.meta.dirname, p));
  return candidates.find((dir) => existsSync(path.join(dir, 'index.html'))) ?? candidates[0]!;
}
