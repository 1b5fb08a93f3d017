import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { ErrorCodes, type ErrorInfo } from '../../../shared/errors';
import type { TestResult } from '../../../shared/contract';
import type { AuthPath } from '../../../shared/auth-paths';
import type { ServerConfig } from '../config/schema';
import { LanyardError, toErrorInfo } from '../errors';
import type { FetchLike } from '../util/http';
import { describe, err, fail, pass, type DoctorCheck } from './types';

/**
 * The last hop of every path: the MCP server accepts what the path sends. An MCP `initialize` (and the session closed
 * again) through the path's authenticated fetch; no tool is listed or called. The credential travels only in the
 * request to the server; the line says what answered, never what was sent.
 */
export async function checkMcp(server: ServerConfig, path: AuthPath, fetchFn: FetchLike): Promise<DoctorCheck> {
  const id = `server.${server.id}.mcp`;
  const hop = `${server.id}: MCP`;
  let lastStatus: number | undefined;
  const recording: FetchLike = async (input, init) => {
    const response = await fetchFn(input, init);
    lastStatus = response.status;
    return response;
  };
  const client = new Client({ name: 'lanyard-doctor', version: '0' }, { capabilities: {} });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(server.url), { fetch: recording }));
    const version = client.getServerVersion();
    const name = version ? `${version.name}${version.version ? ` ${version.version}` : ''}` : 'the server';
    return pass(id, hop, `${name} answered initialize ${ACCEPTED[path]}`);
  } catch (e) {
    return fail(id, hop, mcpFailure(server, path, e, lastStatus));
  } finally {
    await client.close().catch(() => undefined);
  }
}

const ACCEPTED: Record<AuthPath, string> = {
  xaa: 'with the Cross-App Access token',
  oauth: 'with the OAuth access token',
  header: 'with the stored key',
  none: 'without credentials',
};

function mcpFailure(server: ServerConfig, path: AuthPath, e: unknown, status: number | undefined): ErrorInfo {
  // The path's own errors (key required, authorization required, blocked) already say what to do.
  if (e instanceof LanyardError) return e.toInfo();
  if (status === 401 || status === 403) {
    switch (path) {
      case 'header':
        return err(
          ErrorCodes.KEY_REQUIRED,
          `${server.url} rejected the stored key (HTTP ${status}).`,
          `Set the current key with \`lanyard servers set-key ${server.id} --value-stdin\` (or Set key in the dashboard).`,
          server.id,
        );
      case 'none':
        return err(
          ErrorCodes.CONFIG_INVALID,
          `${server.url} now asks for credentials (HTTP ${status}), but Lanyard sends it none.`,
          `Remove the server and add it again (\`lanyard servers remove ${server.id}\`, then \`lanyard servers add ${server.url}\`) so the probe picks its path.`,
          server.id,
        );
      case 'oauth':
        return err(
          ErrorCodes.AUTHORIZATION_REQUIRED,
          `${server.url} refused the OAuth access token (HTTP ${status}).`,
          `Run \`lanyard servers authorize ${server.id}\` to authorize it again.`,
          server.id,
        );
      case 'xaa':
        return err(
          ErrorCodes.AS_GRANT_REJECTED,
          `${server.url} refused the access token from its authorization server (HTTP ${status}).`,
          "Check the server's scopes and audience with its owner; `lanyard servers list` shows its last error.",
          server.id,
        );
    }
  }
  const info = toErrorInfo(e);
  if (info.code !== ErrorCodes.INTERNAL) return info;
  return err(
    ErrorCodes.SERVER_UNREACHABLE,
    `${server.url} did not complete an MCP initialize (${status ? `HTTP ${status}: ` : ''}${describe(e)}).`,
    'Check the URL (the MCP endpoint, often ending in /mcp), your network or VPN; if it persists, contact the server’s owner.',
    server.id,
  );
}

/** The MCP line from the running broker's own test of the server (its MCP connection step). */
export function mcpFromBroker(server: ServerConfig, result: TestResult): DoctorCheck {
  const id = `server.${server.id}.mcp`;
  const hop = `${server.id}: MCP`;
  const step = result.steps.find((s) => s.name === 'MCP connection');
  if (!step) {
    const failed = result.steps.find((s) => !s.ok);
    return fail(
      id,
      hop,
      failed?.error ??
        err(ErrorCodes.INTERNAL, 'The running broker did not test the connection.', 'Run `lanyard doctor` again.', server.id),
    );
  }
  if (!step.ok)
    return fail(id, hop, step.error ?? err(ErrorCodes.SERVER_UNREACHABLE, step.detail, 'Run `lanyard doctor` again.', server.id));
  return pass(id, hop, `${step.detail} (through the running broker)`);
}
