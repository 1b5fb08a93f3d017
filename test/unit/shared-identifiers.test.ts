/**
 * The client-auth method list and the server-id rule have one source each in shared/; every layer that validates
 * them (config schema, control contract, dashboard) must accept exactly what that source says.
 */
import { describe, expect, it } from 'vitest';
import { AsClientAuthMethodSchema, IdpClientAuthSchema, ServerConfigSchema } from '../../electron/broker/config/schema';
import { CLIENT_AUTH_METHODS, isClientAuthMethod, usesClientSecret } from '../../shared/auth-methods';
import { AddServerInputSchema, SettingsSchema } from '../../shared/contract';
import { isServerId, SERVER_ID_PATTERN } from '../../shared/server-id';
import { CLIENT_AUTH_CHOICES } from '../../renderer/src/model/settings';
import { serverIdFor } from '../../renderer/src/model/add-server';

describe('client-auth methods', () => {
  it('every layer accepts exactly the shared list', () => {
    expect(AsClientAuthMethodSchema.options).toEqual([...CLIENT_AUTH_METHODS]);
    expect(CLIENT_AUTH_CHOICES.map((c) => c.id)).toEqual([...CLIENT_AUTH_METHODS]);
    for (const method of CLIENT_AUTH_METHODS) {
      expect(IdpClientAuthSchema.safeParse({ method }).success).toBe(true);
      expect(AddServerInputSchema.safeParse({ url: 'https://x.example', clientAuthMethod: method }).success).toBe(true);
      expect(
        SettingsSchema.shape.idp.unwrap().shape.clientAuthMethod.safeParse(method).success,
        `contract Settings accepts ${method}`,
      ).toBe(true);
    }
    expect(IdpClientAuthSchema.safeParse({ method: 'tls_client_auth' }).success).toBe(false);
    expect(AddServerInputSchema.safeParse({ url: 'https://x.example', clientAuthMethod: 'tls_client_auth' }).success).toBe(false);
    expect(isClientAuthMethod('tls_client_auth')).toBe(false);
  });

  it('only the two client_secret methods need a secret', () => {
    expect(CLIENT_AUTH_METHODS.filter(usesClientSecret)).toEqual(['client_secret_basic', 'client_secret_post']);
  });
});

describe('server ids', () => {
  const config = (id: string) => ServerConfigSchema.safeParse({ id, name: 'X', url: 'https://x.example/mcp' }).success;

  it.each(['a', 'linear', 'acme-wiki', '0day', 'a'.repeat(32)])('%s is an id everywhere', (id) => {
    expect(isServerId(id)).toBe(true);
    expect(config(id)).toBe(true);
  });

  it.each(['', '-a', 'A', 'acme_wiki', 'a b', 'a'.repeat(33), 'ü'])('%j is an id nowhere', (id) => {
    expect(isServerId(id)).toBe(false);
    expect(SERVER_ID_PATTERN.test(id)).toBe(false);
    expect(config(id)).toBe(false);
  });

  it('the dashboard only suggests ids the config accepts', () => {
    for (const name of ['Acme Wiki', '--Linear--', 'Ünïcode Sërver', 'x'.repeat(60)]) {
      const id = serverIdFor(name, 'fallback', []);
      if (id !== undefined) expect(config(id), `${name} → ${id}`).toBe(true);
    }
  });
});
