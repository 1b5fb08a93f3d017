/**
 * `lanyard stdio [--server <id>]`: bridges an MCP client that only speaks stdio to the running broker.
 *
 * stdin/stdout carry newline-delimited JSON-RPC (the MCP stdio transport); the other side is the broker's Streamable
 * HTTP endpoint on 127.0.0.1 (`/mcp`, or `/mcp/<id>` with --server), reached with the local token from the 0600
 * runtime file. Messages are piped both ways as bytes — requests, responses and notifications in either direction, so
 * server→client requests (sampling, elicitation, roots) reach the IDE and its answers go back (broker-link.ts).
 *
 * Started by an IDE for every session, so it must start fast: it loads node:http and a few hundred lines of its own,
 * never the MCP SDK (its schemas and module graph cost more than Node's own start-up). The only messages it writes
 * itself are JSON-RPC errors — a malformed line, a request the broker could not answer — which need no SDK. Nothing
 * here touches the keychain. stdout is the protocol channel: every diagnostic goes to stderr. Exit codes: 0 when stdin
 * closes, 1 when the broker cannot be reached or started.
 */
import type { Readable, Writable } from 'node:stream';
import { IDENTITY_PROFILE_PATTERN } from '../../broker/identities/names';
import { BrokerLink } from './broker-link';
import { BridgeError, findBroker } from './find-broker';
import { LineReader, type Envelope } from './line-guard';

export interface StdioBridgeOptions {
  /** Lanyard's home (resolveLanyardHome()): where the runtime file is. */
  home: string;
  /** Relay to one server (`/mcp/<id>`) instead of the aggregated endpoint. */
  server?: string;
  /** The IDE that started the bridge (`--ide`, written by `lanyard connect`): its own endpoint `/ide/<ide>/mcp` and profile. */
  ide?: string;
  /** The identity profile (`--profile`): the same endpoints under `/p/<profile>/`. */
  profile?: string;
  /** `--remote <laptop endpoint>`: the laptop's broker through a forwarded port, with the paired remote token (remote-link.ts). */
  remote?: string;
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  /** Starts the headless broker when none runs (the CLI spawns `lanyard serve` detached). */
  startBroker: () => Promise<void>;
  /** How long to wait for a broker that was just started. Default 15 s. */
  startTimeoutMs?: number;
  /** How often to look for the runtime file while waiting. Default 50 ms. */
  pollMs?: number;
}

const SERVER_ID = /^[a-z0-9][a-z0-9-]{0,31}$/;
/** The shape of an IDE name; the broker knows which exist (no SDK or schema is loaded here, for start-up time). */
const IDE_NAME = /^[a-z][a-z0-9-]{0,39}$/;
/** How long a restarting broker (tray app, `lanyard serve`) gets to come back before the bridge starts one itself. */
const RESTART_GRACE_MS = 3_000;

/**
 * Runs the bridge until stdin closes; resolves with the process exit code. Never writes anything but JSON-RPC
 * messages to stdout.
 */
export async function runStdioBridge(options: StdioBridgeOptions): Promise<number> {
  const say = (text: string) => {
    options.stderr.write(`lanyard stdio: ${text}\n`);
  };
  if (options.server !== undefined && !SERVER_ID.test(options.server)) {
    say(`"${options.server}" is not a server id. Fix: run \`lanyard servers\` to see the ids.`);
    return 1;
  }
  if (options.ide !== undefined && (!IDE_NAME.test(options.ide) || options.server !== undefined)) {
    say(`--ide "${options.ide.slice(0, 40)}" is not usable. Fix: run \`lanyard connect <ide>\` to rewrite the IDE's entry.`);
    return 1;
  }
  if (options.profile !== undefined && !IDENTITY_PROFILE_PATTERN.test(options.profile)) {
    say(
      `--profile "${options.profile.slice(0, 40)}" is not an identity profile name. Fix: use the name \`lanyard status --profile <name>\` knows.`,
    );
    return 1;
  }
  if (options.stdout === process.stdout) {
    // stdout is the protocol channel: a stray console.log anywhere in the process would corrupt it.
    const toStderr = (...args: unknown[]) => say(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
    Object.assign(console, { log: toStderr, info: toStderr, debug: toStderr });
  }
  const write = (line: string) => options.stdout.write(`${line}\n`);

  // Lines are read (and malformed ones answered) from the start; valid ones wait here until the broker is known.
  const reader = new LineReader();
  reader.onInvalid = (code, message, id) => write(JSON.stringify({ jsonrpc: '2.0', id: id ?? null, error: { code, message } }));
  const early: Array<[string, Envelope]> = [];
  reader.onMessage = (line, message) => early.push([line, message]);
  let stdinEnded = false;
  const ended = new Promise<void>((resolve) => {
    const end = () => {
      if (stdinEnded) return;
      stdinEnded = true;
      reader.end();
      resolve();
    };
    options.stdin.on('end', end);
    options.stdin.on('close', end);
    options.stdin.on('error', end);
  });
  const onData = (chunk: Buffer) => reader.push(chunk);
  options.stdin.on('data', onData);

  let link: BrokerLink;
  try {
    // --remote: the laptop's broker, nothing to find or start here; an unreachable laptop is answered request by request.
    const remote =
      options.remote === undefined ? undefined : await (await import('./remote-link')).remoteBridgeSetup(options.home, options.remote);
    const broker = remote ? remote.broker : await findBroker(options);
    link = new BrokerLink({
      home: options.home,
      path: `${options.profile !== undefined ? `/p/${options.profile}` : ''}${options.server ? `/mcp/${options.server}` : options.ide ? `/ide/${options.ide}/mcp` : '/mcp'}`,
      broker,
      write,
      say,
      findAgain: remote ? remote.findAgain : () => findBroker(options, RESTART_GRACE_MS),
      ...(remote ? { remote: remote.target } : {}),
    });
  } catch (e) {
    if (e instanceof BridgeError) say(`${e.message} Fix: ${e.fix}`);
    else say(`cannot reach the Lanyard broker: ${e instanceof Error ? e.message : String(e)}`);
    // Stop reading stdin, or an open pipe would keep the process alive after the failure.
    options.stdin.off('data', onData);
    options.stdin.pause();
    return 1;
  }
  reader.onMessage = (line, message) => link.send(line, message);
  for (const [line, message] of early.splice(0)) link.send(line, message);

  await ended;
  await link.close();
  return 0;
}
