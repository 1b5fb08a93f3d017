import { usesClientSecret, type ClientAuthMethod } from '../../../shared/auth-methods';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, customFetch as joseCustomFetch, decodeJwt, jwtVerify, type JWK } from 'jose';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';
import {
  describeParty,
  readBoundCredential,
  secretKeys,
  type BoundCredentialRead,
  type CredentialParty,
  type SecretStore,
} from '../secrets/secret-store';
import { openidClientAuth } from '../util/client-auth';
import { policyFetch } from '../util/policy-fetch';
import { isLoopbackHost } from '../util/url';
import { safeOrigin } from '../util/url-policy';
import { idpConfigError, idpUnreachable } from './identity-errors';
import { classifyOAuthError } from './oauth-errors';

export type IdpClientAuthMethod = ClientAuthMethod;

/** The part of Lanyard's config the identity session needs (see config/schema.ts). */
export interface IdpSettings {
  issuer: string;
  clientId: string;
  clientAuth: { method: IdpClientAuthMethod; keyId?: string | undefined };
  scopes: string[];
  redirectPort?: number | undefined;
  tokenExchangeEndpoint?: string | undefined;
}

/** Keychain entries the identity session reads; client credentials are provisioned by setup (secretKeys). */
export const IDP_SECRET_KEYS = {
  session: secretKeys.idpSession,
  clientSecret: secretKeys.idpClientSecret,
  privateKey: secretKeys.idpPrivateKey,
} as const;

/** The claims of a verified ID token that the session keeps. */
export type IdTokenClaims = { sub: string; exp?: number | undefined; iat?: number | undefined; email?: unknown; name?: unknown };

/**
 * Lanyard as a client of the enterprise IdP: the IdP's discovered metadata, the openid-client `Configuration` every
 * request goes through, Lanyard's client authentication (the one place that reads the IdP client secret or private
 * key from the keychain), the token-exchange endpoint when it differs from the token endpoint, and ID-token signature
 * checks against the IdP's keys. It holds no user tokens; the identity session does.
 */
export class IdpClient {
  private configPromise: Promise<oidc.Configuration> | undefined;
  private exchangeConfig: oidc.Configuration | undefined;
  private jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  private guardedFetch: oidc.CustomFetch | undefined;

  constructor(
    private readonly settings: IdpSettings,
    private readonly secrets: SecretStore,
    /** openid-client's customFetch is called as fetch(url, init); the platform fetch accepts that shape. */
    private readonly fetchFn: oidc.CustomFetch,
    private readonly timeoutSeconds: number,
  ) {}

  /** The discovered configuration; a failed discovery is retried on the next call. */
  config(): Promise<oidc.Configuration> {
    this.configPromise ??= this.discover().catch((e: unknown) => {
      this.configPromise = undefined;
      throw e;
    });
    return this.configPromise;
  }

  /** The configuration for the RFC 8693 exchange: the discovered one, or a copy aimed at the configured endpoint. */
  async exchangeConfiguration(): Promise<oidc.Configuration> {
    const config = await this.config();
    if (!this.settings.tokenExchangeEndpoint) return config;
    if (!this.exchangeConfig) {
      const metadata: oidc.ServerMetadata = {
        ...(config.serverMetadata() as oidc.ServerMetadata),
        token_endpoint: this.settings.tokenExchangeEndpoint,
      };
      this.exchangeConfig = new oidc.Configuration(metadata, this.settings.clientId, undefined, await this.clientAuthentication());
      if (new URL(this.settings.tokenExchangeEndpoint).protocol === 'http:') oidc.allowInsecureRequests(this.exchangeConfig);
      this.exchangeConfig.timeout = this.timeoutSeconds;
      this.exchangeConfig[oidc.customFetch] = this.fetchUnderPolicy();
    }
    return this.exchangeConfig;
  }

  /**
   * Checks an ID token's signature against the IdP's published keys (openid-client checks iss/aud/exp/nonce on the
   * responses it processes; the signature is ours). Without a jwks_uri the claims are only decoded.
   */
  async verifyIdToken(idToken: string): Promise<IdTokenClaims> {
    const config = await this.config();
    const jwksUri = config.serverMetadata().jwks_uri;
    if (!jwksUri) return decodeJwt(idToken) as IdTokenClaims;
    this.jwks ??= createRemoteJWKSet(new URL(jwksUri), {
      timeoutDuration: this.timeoutSeconds * 1000,
      [joseCustomFetch]: (url, init) => this.fetchUnderPolicy()(url, init as unknown as oidc.CustomFetchOptions),
    });
    const { payload } = await jwtVerify(idToken, this.jwks, {
      issuer: config.serverMetadata().issuer,
      audience: this.settings.clientId,
      // Validity is judged on the real clock; the injectable `now` only drives scheduling (when to refresh).
      clockTolerance: 60,
    });
    if (typeof payload.sub !== 'string')
      throw new LanyardError(ErrorCodes.SIGN_IN_FAILED, 'The ID token has no subject.', 'Contact your IdP admin.');
    return payload as typeof payload & { sub: string };
  }

  private async discover(): Promise<oidc.Configuration> {
    const issuer = new URL(this.settings.issuer);
    const clientAuth = await this.clientAuthentication();
    const insecure = issuer.protocol === 'http:' && isLoopbackHost(issuer.hostname);
    try {
      const config = await oidc.discovery(issuer, this.settings.clientId, undefined, clientAuth, {
        execute: insecure ? [oidc.allowInsecureRequests] : [],
        [oidc.customFetch]: this.fetchUnderPolicy(),
        timeout: this.timeoutSeconds,
      });
      config.timeout = this.timeoutSeconds;
      config[oidc.customFetch] = this.fetchUnderPolicy();
      return config;
    } catch (e) {
      // openid-client wraps what the fetch throws; a refusal by the URL policy is already the error to report.
      if (e instanceof oidc.ClientError && e.cause instanceof LanyardError) throw e.cause;
      const failure = classifyOAuthError(e);
      if (failure.kind === 'network' || failure.kind === 'server') throw idpUnreachable(this.settings.issuer, failure, e);
      throw idpConfigError(this.settings.issuer, failure, e);
    }
  }

  /**
   * The IdP's fetch under the URL policy (util/url-policy.ts), judged against the configured issuer: the discovery
   * document cannot send Lanyard's requests (token, exchange, keys) to link-local, private or other loopback addresses
   * unless the issuer is there, nor to plain http off this machine, and no request follows a redirect to another origin.
   */
  private fetchUnderPolicy(): oidc.CustomFetch {
    this.guardedFetch ??= ((): oidc.CustomFetch => {
      const issuer = this.settings.issuer;
      const guarded = policyFetch((url, init) => this.fetchFn(String(url), init as oidc.CustomFetchOptions), {
        anchor: issuer,
        refuse: (target, reason) =>
          new LanyardError(
            ErrorCodes.CONFIG_INVALID,
            `The identity provider ${issuer} sends Lanyard to ${safeOrigin(target)}, which Lanyard will not contact: ${reason}.`,
            'Ask your IdP admin to check the issuer\'s metadata (its endpoints must be https on the IdP\'s own network), and check "idp.issuer" in the settings.',
          ),
      });
      return (url, init) => guarded(url, init as RequestInit);
    })();
    return this.guardedFetch;
  }

  /**
   * Lanyard's client authentication at the IdP, with the credential read from the keychain at the moment it is needed.
   * The credential is handed out only for the IdP and client it was stored for (secrets/secret-store.ts
   * `readBoundCredential`): a secret entered for another issuer or client id is never sent to this one.
   */
  private async clientAuthentication(): Promise<oidc.ClientAuth> {
    const method = this.settings.clientAuth.method;
    const party = { issuer: this.settings.issuer, clientId: this.settings.clientId };
    if (usesClientSecret(method)) {
      const read = await readBoundCredential(this.secrets, IDP_SECRET_KEYS.clientSecret, party);
      return openidClientAuth(method, { secret: credentialOrThrow(read, 'client secret', party) });
    }
    if (method === 'private_key_jwt') {
      const read = await readBoundCredential(this.secrets, IDP_SECRET_KEYS.privateKey, party);
      const privateJwk = JSON.parse(credentialOrThrow(read, 'private key', party)) as JWK;
      return openidClientAuth(method, { privateJwk, keyId: this.settings.clientAuth.keyId });
    }
    return openidClientAuth(method, {});
  }
}

/** The credential's value, or why Lanyard will not use it: missing, or stored for another IdP or client (never the value). */
function credentialOrThrow(read: BoundCredentialRead, what: 'client secret' | 'private key', party: CredentialParty): string {
  if (read.state === 'ok') return read.value;
  const where = `${party.issuer} (client id ${party.clientId})`;
  const fix =
    what === 'client secret'
      ? `Enter the client secret for ${where} in Settings → Identity provider (your IT team has it).`
      : `Store Lanyard's private key for ${where} in the keychain again (your IT team has it), or change the client authentication in Settings.`;
  if (read.state === 'missing') {
    return fail(`The identity provider ${party.issuer} needs Lanyard's ${what}, and none is in the keychain.`, fix);
  }
  return fail(
    `The stored ${what} belongs to ${describeParty(read.boundTo)}, not to ${where}; Lanyard does not send it to another identity provider or client.`,
    fix,
  );
}

function fail(message: string, fix: string): never {
  throw new LanyardError(ErrorCodes.CONFIG_INVALID, message, fix);
}
