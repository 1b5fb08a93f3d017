/**
 * Lanyard headless in a process of its own, for tests that must measure it (memory with `--expose-gc`) or treat it as
 * another program (local isolation). Started by broker-process.ts as
 *   node --expose-gc --import tsx test/reliability/broker-child.ts
 * with LANYARD_HOME prepared by the parent (config + keychain entries). It talks to its parent over the IPC channel:
 *   → ready {url, pid}            once the gateway listens and the runtime file is written
 *   → open {url}                  the "system browser" should open this sign-in URL (the parent drives the IdP page)
 *   ← signIn / → signInResult     sign in through the control service, as the tray or dashboard would
 *   ← memory / → memory {...}     process.memoryUsage() after two full garbage collections
 *   ← stop / exit 0               clean shutdown (the runtime file is removed)
 * Log lines go to stderr (JSON), so the parent can scan everything the process printed.
 */
import { startHeadless } from '../../electron/broker/headless';
import { createLogger } from '../../electron/broker/util/log';

type FromParent = { type: 'signIn' } | { type: 'memory' } | { type: 'stop' } | { type: 'opened' };

const send = (message: Record<string, unknown>) => process.send?.(message);
const gc = (globalThis as { gc?: () => void }).gc;

async function main(): Promise<void> {
  const home = process.env.LANYARD_HOME;
  if (!home) throw new Error('LANYARD_HOME is required');
  const relayResponseMs = Number(process.env.LANYARD_TEST_RELAY_TIMEOUT_MS ?? '5000');
  let opened: (() => void) | undefined;
  const headless = await startHeadless({
    version: 'test',
    home,
    // A fixed port (LANYARD_TEST_PORT) lets a test restart the broker where its clients already point.
    port: Number(process.env.LANYARD_TEST_PORT ?? '0'),
    log: createLogger({ level: 'info', sink: (line) => process.stderr.write(`${line}\n`) }),
    openUrl: (url) =>
      new Promise<void>((resolve) => {
        opened = resolve;
        send({ type: 'open', url });
      }),
    timeouts: { requestMs: 5_000, connectMs: 5_000, listBudgetMs: 2_000, relayResponseMs },
  });
  process.on('message', (message: FromParent) => {
    switch (message.type) {
      case 'opened':
        opened?.();
        return;
      case 'signIn':
        headless.broker.control.signIn().then(
          () => send({ type: 'signInResult', ok: true }),
          (e: unknown) => send({ type: 'signInResult', ok: false, message: e instanceof Error ? e.message : String(e) }),
        );
        return;
      case 'memory':
        gc?.();
        gc?.();
        send({ type: 'memory', gc: Boolean(gc), ...process.memoryUsage() });
        return;
      case 'stop':
        headless.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
        return;
    }
  });
  send({ type: 'ready', url: headless.url, pid: process.pid });
}

main().catch((e: unknown) => {
  process.stderr.write(`broker-child: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
