import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

/**
 * `lanyard stdio` from the built CLI as an IDE starts it: a stdio transport for an SDK client, on the given Lanyard
 * home, with the bridge's stderr collected (what a user would see in the IDE's MCP log).
 */
export function stdioBridge(
  cli: string,
  options: { home?: string; args?: string[]; env?: Record<string, string | undefined> },
): { transport: StdioClientTransport; stderr: () => string } {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [cli, 'stdio', ...(options.args ?? [])],
    env: { ...process.env, ...(options.home ? { LANYARD_HOME: options.home } : {}), ...options.env } as Record<string, string>,
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return { transport, stderr: () => stderr };
}
