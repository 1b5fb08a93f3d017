import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Client, StreamableHTTPClientTransport, type Transport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

/**
 * The ways to reach the same upstream tool that the benchmark compares (plus the stdio bridge on the relay, and `/mcp`
 * through an IDE profile's endpoint).
 */
export type PathName =
  'direct' | 'floor' | 'relay' | 'aggregated' | 'profile' | 'stdio' | 'stdio-relay' | 'mcp-remote' | 'lean-stdio' | 'lean-stdio-relay';

export interface PathClient {
  path: PathName;
  /** The row label: the path, or `<path>+<experiment>` for a patched broker. */
  label: string;
  /** The broker process this path goes through, if any. */
  brokerPid: number | undefined;
  /** One tools/call of the upstream `echo` tool; rejects on an error result. */
  call(): Promise<void>;
  /** The process in the middle (stdio bridge or mcp-remote), when there is one. */
  proxyPid: number | undefined;
  close(): Promise<void>;
}

export interface PathTargets {
  root: string;
  /** The sandbox todo server's MCP URL and a token Lanyard's engine minted for it. */
  serverUrl: string;
  serverToken: string;
  serverId: string;
  /** The running broker. */
  brokerUrl: string;
  brokerPid: number;
  localToken: string;
  home: string;
  cli: string;
  /** A private directory for mcp-remote's state and its header file. */
  scratch: string;
  /** Node options for the stdio processes (the bridge, mcp-remote), e.g. --cpu-prof. */
  stdioNodeArgs?: string[] | undefined;
}

const ARGS = { text: 'hello from the benchmark' };

async function connect(
  path: PathName,
  transport: Transport,
  tool: string,
  proxyPid: () => number | undefined,
  meta: { label: string; brokerPid: number | undefined },
): Promise<PathClient> {
  const client = new Client({ name: `lanyard-bench-${path}`, version: '1.0.0' }, { capabilities: {} });
  try {
    await client.connect(transport);
  } catch (e) {
    const tail = stderrTails.get(transport)?.();
    throw new Error(
      `${path}: could not connect: ${e instanceof Error ? e.message : String(e)}${tail ? `\n  stderr: ${tail.trim()}` : ''}`,
      { cause: e },
    );
  }
  // As an IDE does: list first (the SDK client also caches output schemas from the list).
  const tools = await client.listTools();
  if (!tools.tools.some((t) => t.name === tool))
    throw new Error(
      `${path}: tool ${tool} is not listed (got ${tools.tools
        .slice(0, 5)
        .map((t) => t.name)
        .join(', ')}…)`,
    );
  return {
    path,
    ...meta,
    get proxyPid() {
      return proxyPid();
    },
    async call() {
      const result = await client.callTool({ name: tool, arguments: ARGS });
      if (result.isError) throw new Error(`${path}: ${JSON.stringify(result.content).slice(0, 200)}`);
    },
    async close() {
      await client.close().catch(() => undefined);
    },
  };
}

function http(url: string, token: string): StreamableHTTPClientTransport {
  return new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
}

function stdio(command: string, args: string[], env: Record<string, string>): StdioClientTransport {
  const transport = new StdioClientTransport({
    command,
    args,
    env: { ...(process.env as Record<string, string>), ...env },
    stderr: 'pipe',
  });
  // Drained (an unread pipe would eventually block the child); the tail is kept for error messages.
  let tail = '';
  transport.stderr?.on('data', (d: Buffer) => {
    tail = (tail + d.toString()).slice(-4_000);
  });
  stderrTails.set(transport, () => tail);
  return transport;
}

const stderrTails = new WeakMap<Transport, () => string>();

/** mcp-remote's arguments for a server behind a bearer header: no OAuth, Streamable HTTP only, quiet. */
export async function mcpRemoteArgs(t: Pick<PathTargets, 'root' | 'serverUrl' | 'serverToken' | 'scratch'>): Promise<string[]> {
  // A header file keeps the token out of the process list (mcp-remote's README recommends it).
  const headerFile = path.join(t.scratch, 'mcp-remote-headers.txt');
  await writeFile(headerFile, `Authorization: Bearer ${t.serverToken}\n`, { mode: 0o600 });
  return [
    path.join(t.root, 'node_modules/mcp-remote/dist/proxy.js'),
    t.serverUrl,
    '--header-file',
    headerFile,
    '--allow-http',
    '--transport',
    'http-only',
    '--silent',
  ];
}

export function mcpRemoteEnv(t: Pick<PathTargets, 'scratch'>): Record<string, string> {
  return { MCP_REMOTE_CONFIG_DIR: path.join(t.scratch, 'mcp-auth') };
}

async function startFloorProxy(root: string, serverUrl: string): Promise<{ url: string; pid: number; child: ChildProcess }> {
  const child = spawn(process.execPath, [path.join(root, 'bench/floor-proxy.mjs'), serverUrl], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`floor proxy exited with ${code}`)));
    child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
  });
  const url = new URL(serverUrl);
  return { url: `http://127.0.0.1:${port}${url.pathname}`, pid: child.pid!, child };
}

export async function openPath(name: PathName, t: PathTargets, label: string = name): Promise<PathClient> {
  const viaBroker = { label, brokerPid: t.brokerPid };
  const notViaBroker = { label, brokerPid: undefined };
  switch (name) {
    case 'direct':
      return connect(name, http(t.serverUrl, t.serverToken), 'echo', () => undefined, notViaBroker);
    case 'floor': {
      // A bare node:http byte pipe in front of the server (bench/floor-proxy.mjs): what any Node HTTP hop costs here.
      const proxy = await startFloorProxy(t.root, t.serverUrl);
      const client = await connect(name, http(proxy.url, t.serverToken), 'echo', () => undefined, { label, brokerPid: proxy.pid });
      return {
        ...client,
        proxyPid: undefined,
        async close() {
          await client.close();
          proxy.child.kill();
        },
      };
    }
    case 'relay':
      return connect(name, http(`${t.brokerUrl}/mcp/${t.serverId}`, t.localToken), 'echo', () => undefined, viaBroker);
    case 'aggregated':
      return connect(name, http(`${t.brokerUrl}/mcp`, t.localToken), `${t.serverId}__echo`, () => undefined, viaBroker);
    case 'profile':
      // The endpoint `lanyard connect` writes for Cursor: its profile (defaults: a 40-tool budget, 59-character names)
      // shapes the list and resolves the names; the sandbox server's few tools stay within the budget.
      return connect(name, http(`${t.brokerUrl}/ide/cursor/mcp`, t.localToken), `${t.serverId}__echo`, () => undefined, viaBroker);
    case 'stdio': {
      const transport = stdio(process.execPath, [...(t.stdioNodeArgs ?? []), t.cli, 'stdio'], { LANYARD_HOME: t.home });
      return connect(name, transport, `${t.serverId}__echo`, () => transport.pid ?? undefined, viaBroker);
    }
    case 'stdio-relay': {
      const transport = stdio(process.execPath, [...(t.stdioNodeArgs ?? []), t.cli, 'stdio', '--server', t.serverId], {
        LANYARD_HOME: t.home,
      });
      return connect(name, transport, 'echo', () => transport.pid ?? undefined, viaBroker);
    }
    case 'lean-stdio':
    case 'lean-stdio-relay': {
      // The byte-pipe prototype (bench/lean-bridge.ts), run under tsx: for per-call cost, not cold start.
      const relay = name === 'lean-stdio-relay';
      const args = [
        '--import',
        'tsx',
        ...(t.stdioNodeArgs ?? []),
        path.join(t.root, 'bench/lean-bridge.ts'),
        ...(relay ? ['--server', t.serverId] : []),
      ];
      const transport = stdio(process.execPath, args, { LANYARD_HOME: t.home });
      return connect(name, transport, relay ? 'echo' : `${t.serverId}__echo`, () => transport.pid ?? undefined, viaBroker);
    }
    case 'mcp-remote': {
      const transport = stdio(process.execPath, [...(t.stdioNodeArgs ?? []), ...(await mcpRemoteArgs(t))], mcpRemoteEnv(t));
      return connect(name, transport, 'echo', () => transport.pid ?? undefined, notViaBroker);
    }
  }
}
