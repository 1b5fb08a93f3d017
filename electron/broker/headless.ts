import { Broker, type RunningGateway } from './broker';
import { createControlHttpHandler } from './control/http-api';
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
  const controlHttp = createControlHttpHandler(broker.control);
  let gateway: RunningGateway;
  try {
    gateway = await broker.startGateway({
      ...(options.port !== undefined ? { port: options.port } : {}),
      routes: () => [{ prefix: '/api', auth: 'cookie-or-token', handler: controlHttp }],
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
    dashboardLink: () => `${gateway.server.url}/`,
    async stop() {
      await gateway.stop();
      await broker.close();
    },
  };
}
