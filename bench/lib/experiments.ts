/**
 * Hypotheses about where the broker's time goes, as source patches applied only to the benchmark's own CLI bundle
 * (`npm run bench -- --experiment <name>[,<name>]`): the working tree is never touched, so an experiment cannot leak
 * into the product and needs no revert. Each patch names the exact text it replaces and fails the build when that
 * text is gone (the code moved on: re-check the hypothesis).
 *
 * These are measurements, not fixes: some trade away behaviour the product needs (see `caveat`).
 */

export interface SourcePatch {
  /** Path from the repository root. */
  file: string;
  find: string;
  replace: string;
}

export interface Experiment {
  description: string;
  caveat?: string;
  patches: SourcePatch[];
}

export const EXPERIMENTS: Record<string, Experiment> = {
  'config-cache': {
    description:
      'ConfigStore.loadUser() returns the last validated config while the file is unchanged (stat: inode, size, mtime) instead of reading, JSON-parsing and zod-validating config.json on every call. The gateway calls it 2-4 times per tools/call (LocalAuth.check → allowedOrigins, relay getServer, TokenService.getToken → requireServer, discover → requireServer).',
    patches: [
      {
        file: 'electron/broker/config/store.ts',
        find: "import { chmodSync, mkdirSync, watch, type FSWatcher } from 'node:fs';",
        replace: "import { chmodSync, mkdirSync, statSync, watch, type FSWatcher } from 'node:fs';",
      },
      {
        file: 'electron/broker/config/store.ts',
        find: '  loadUser(): LanyardConfig {\n    let raw: unknown;',
        replace: [
          '  private benchCache: { key: string; config: LanyardConfig } | undefined;',
          '  loadUser(): LanyardConfig {',
          '    let key = "";',
          '    try { const s = statSync(this.path); key = `${s.ino}:${s.size}:${s.mtimeMs}`; } catch { key = "missing"; }',
          '    if (this.benchCache?.key === key) return this.benchCache.config;',
          '    const config = this.loadUserUncached();',
          '    this.benchCache = { key, config };',
          '    return config;',
          '  }',
          '  private loadUserUncached(): LanyardConfig {',
          '    let raw: unknown;',
        ].join('\n'),
      },
    ],
  },
  'json-response': {
    description:
      "The aggregator's IDE-facing NodeStreamableHTTPServerTransport answers POSTs with one JSON body (enableJsonResponse) instead of an SSE stream.",
    caveat:
      "As it stands this breaks progress, logging and server→client requests during a call (they ride the POST's SSE stream); a real fix would choose per request (SSE only when the request carries a progressToken or the IDE declared elicitation/sampling/roots).",
    patches: [
      {
        file: 'electron/broker/gateway/aggregate/ide-sessions.ts',
        find: '      sessionIdGenerator: () => randomUUID(),',
        replace: '      sessionIdGenerator: () => randomUUID(),\n      enableJsonResponse: true,',
      },
    ],
  },
  'no-activity-file': {
    description: 'ActivityLog.persist() does nothing: no stat + appendFile (open, write, close on the thread pool) per tools/call on /mcp.',
    caveat: 'Measures the cost only; the fix is to batch: buffer events and append them in one write every ~250 ms or on flush().',
    patches: [
      {
        file: 'electron/broker/activity/activity-log.ts',
        find: '  private persist(event: ActivityEvent): void {\n',
        replace: '  private persist(event: ActivityEvent): void {\n    if (event) return;\n',
      },
    ],
  },
  'skip-upstream-result-validation': {
    description:
      "The broker's upstream SDK Client passes a pass-through result schema to client.request() for forwarded calls, so it does not zod-validate results it only relays (the IDE's own client validates them).",
    patches: [
      {
        file: 'electron/broker/gateway/upstream/pool.ts',
        find: '            client.request({ method, params }, {',
        replace:
          "            client.request({ method, params }, { '~standard': { version: 1, vendor: 'lanyard-bench', validate: (value: unknown) => ({ value }) } } as never, {",
      },
    ],
  },
  'node-http-upstream': {
    description:
      "The upstream sessions' fetch is node:http with a keep-alive agent (as the relay already does) instead of undici fetch: no undici Request per call, and no abort listener piling up on the SDK transport's session-wide AbortSignal (undici removes those only on GC; Node's EventTarget walks the list on every add).",
    patches: [
      {
        file: 'electron/broker/gateway/upstream/pool.ts',
        find: '      fetch: this.options.tokens.authorizedFetch(serverId, this.options.fetch),',
        replace: '      fetch: this.options.tokens.authorizedFetch(serverId, this.options.fetch ?? benchNodeHttpFetch),',
      },
      {
        file: 'electron/broker/gateway/upstream/pool.ts',
        find: "import type { FetchLike } from '../../util/http';",
        replace: [
          "import type { FetchLike } from '../../util/http';",
          "import { Agent as BenchAgent, request as benchRequest } from 'node:http';",
          "import { Readable as BenchReadable } from 'node:stream';",
          'const benchAgent = new BenchAgent({ keepAlive: true });',
          'const benchNodeHttpFetch: FetchLike = (input, init) =>',
          '  new Promise<Response>((resolve, reject) => {',
          "    const url = typeof input === 'string' ? new URL(input) : input instanceof URL ? input : new URL((input as Request).url);",
          '    const headers: Record<string, string> = {};',
          '    new Headers(init?.headers).forEach((v, k) => { headers[k] = v; });',
          "    const body = typeof init?.body === 'string' ? Buffer.from(init.body) : undefined;",
          "    if (body) headers['content-length'] = String(body.length);",
          '    const signal = init?.signal ?? undefined;',
          "    const req = benchRequest(url, { method: init?.method ?? 'GET', headers, agent: benchAgent }, (res) => {",
          '      const h = new Headers();',
          '      for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) h.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);',
          '      const status = res.statusCode ?? 502;',
          '      const nobody = status === 204 || status === 304 || init?.method === "HEAD";',
          '      if (nobody) res.resume();',
          '      res.once("close", () => signal?.removeEventListener("abort", onAbort));',
          '      resolve(new Response(nobody ? null : (BenchReadable.toWeb(res) as ReadableStream<Uint8Array>), { status, headers: h }));',
          '    });',
          '    const onAbort = () => req.destroy(signal?.reason instanceof Error ? signal.reason : new Error("aborted"));',
          '    if (signal?.aborted) { onAbort(); } else signal?.addEventListener("abort", onAbort, { once: true });',
          "    req.on('error', (e) => { signal?.removeEventListener('abort', onAbort); reject(e); });",
          '    req.end(body);',
          '  });',
        ].join('\n'),
      },
    ],
  },
  'list-fast-path': {
    description:
      'tools/list on an initialized /mcp session is answered by the aggregator itself with the merged list serialized once per catalog version (a JSON body, not an SSE event), instead of going through the SDK Server, which re-serializes and SSE-frames the whole list on every call.',
    caveat: 'Skips the SDK transport for that one request (its protocol-version header check; pagination is not offered either way).',
    patches: [
      {
        file: 'electron/broker/gateway/aggregate/ide-sessions.ts',
        find: '      session.lastSeenAt = this.core.now();\n      await session.transport.handleRequest(req, res, body);',
        replace: [
          '      session.lastSeenAt = this.core.now();',
          '      const m = body as { id?: unknown; method?: unknown; params?: { cursor?: unknown } } | undefined;',
          "      if (req.method === 'POST' && m && !Array.isArray(m) && m.method === 'tools/list' && m.id !== undefined && m.params?.cursor === undefined) {",
          '        const result = await this.core.listToolsForIde();',
          '        session.listed.tools = this.core.versions().tools;',
          '        let json = benchListJson.get(result.tools);',
          '        if (json === undefined) { json = JSON.stringify(result); benchListJson.set(result.tools, json); }',
          '        const payload = Buffer.from(`{"jsonrpc":"2.0","id":${JSON.stringify(m.id)},"result":${json}}`);',
          "        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': payload.length, 'Mcp-Session-Id': session.id ?? '' });",
          '        res.end(payload);',
          '        return;',
          '      }',
          '      await session.transport.handleRequest(req, res, body);',
        ].join('\n'),
      },
      {
        file: 'electron/broker/gateway/aggregate/ide-sessions.ts',
        find: 'const HUMAN_TIMEOUT_MS = 10 * 60_000;',
        replace: 'const HUMAN_TIMEOUT_MS = 10 * 60_000;\nconst benchListJson = new WeakMap<object, string>();',
      },
    ],
  },
};

export function experimentPatches(names: string[]): SourcePatch[] {
  return names.flatMap((name) => {
    const experiment = EXPERIMENTS[name];
    if (!experiment) throw new Error(`unknown experiment "${name}" (known: ${Object.keys(EXPERIMENTS).join(', ')})`);
    return experiment.patches;
  });
}
