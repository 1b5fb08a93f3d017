/** renderer/src/model/snippets.ts: the exact config each IDE needs, never with the local token in it. */
import { describe, expect, it } from 'vitest';
import { IdeNameSchema } from '../../shared/contract';
import { defaultTransport, IDES, ideSnippet, isIdeConnected, TOKEN_PLACEHOLDER } from '../../renderer/src/model/snippets';

const url = 'http://127.0.0.1:47821/mcp';

/** Each IDE's own endpoint: it names the IDE, so its tool profile applies. */
const ideUrl = (ide: string) => url.replace(/\/mcp$/, `/ide/${ide}/mcp`);

describe('ideSnippet', () => {
  it('covers every IDE of the contract', () => {
    expect(IDES.map((i) => i.ide).sort()).toEqual([...IdeNameSchema.options].sort());
  });

  it('Cursor over HTTP: url + Authorization header with the placeholder', () => {
    expect(JSON.parse(ideSnippet('cursor', 'http', url))).toEqual({
      mcpServers: { lanyard: { url: ideUrl('cursor'), headers: { Authorization: `Bearer ${TOKEN_PLACEHOLDER}` } } },
    });
  });

  it('VS Code uses its own "servers" shape with a type', () => {
    expect(JSON.parse(ideSnippet('vscode', 'http', url))).toEqual({
      servers: { lanyard: { type: 'http', url: ideUrl('vscode'), headers: { Authorization: 'Bearer ${LANYARD_TOKEN}' } } },
    });
    expect(JSON.parse(ideSnippet('vscode', 'stdio', url))).toEqual({
      servers: { lanyard: { type: 'stdio', command: 'lanyard', args: ['stdio', '--ide', 'vscode'] } },
    });
  });

  it('Windsurf calls the URL serverUrl', () => {
    expect(JSON.parse(ideSnippet('windsurf', 'http', url)).mcpServers.lanyard.serverUrl).toBe(ideUrl('windsurf'));
  });

  it('stdio snippets run `lanyard stdio` and carry no token', () => {
    for (const ide of ['cursor', 'windsurf', 'claude-desktop'] as const) {
      const text = ideSnippet(ide, 'stdio', url);
      expect(JSON.parse(text).mcpServers.lanyard).toEqual({ command: 'lanyard', args: ['stdio', '--ide', ide] });
      expect(text).not.toContain('Bearer');
    }
  });

  it('Claude Code gets a command line; Claude Desktop only stdio', () => {
    expect(ideSnippet('claude-code', 'http', url)).toBe(
      `claude mcp add --transport http lanyard ${ideUrl('claude-code')} --header "Authorization: Bearer \${LANYARD_TOKEN}"`,
    );
    expect(ideSnippet('claude-code', 'stdio', url)).toBe('claude mcp add lanyard -- lanyard stdio --ide claude-code');
    expect(defaultTransport('claude-desktop')).toBe('stdio');
    expect(defaultTransport('cursor')).toBe('stdio');
  });

  it('recognizes connected IDEs from the client names the gateway saw', () => {
    const sessions = [{ clientName: 'cursor-vscode' }, { clientName: 'claude-code' }];
    expect(isIdeConnected('cursor', sessions)).toBe(true);
    expect(isIdeConnected('claude-code', sessions)).toBe(true);
    expect(isIdeConnected('claude-desktop', sessions)).toBe(false);
    expect(isIdeConnected('claude-desktop', [{ clientName: 'claude-ai' }])).toBe(true);
    expect(isIdeConnected('windsurf', [])).toBe(false);
  });
});
