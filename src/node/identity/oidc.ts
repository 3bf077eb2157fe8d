/**
 * Signing the user in with their organisation's identity provider, through `openid-client`:
 * discovery; authorization code + PKCE (S256) in the system browser with a loopback redirect on
 * 127.0.0.1 and a port chosen at random (RFC 8252), state and nonce checked; the device flow
 * (RFC 8628) where no browser can open; refresh; revocation; RP-initiated logout.
 *
 * Every ID token is validated by openid-client (signature, issuer, audience, expiry and nonce,
 * within the configured clock tolerance); failures come back as `GatehouseError`s whose code and
 * message say which check failed. Tokens are held as `Redacted` values from the moment they
 * arrive: nothing here logs or prints one.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as Oidc from 'openid-client';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import { Redacted } from '../../core/secrets.js';
import type { IdentitySettings } from './settings.js';

/** Who signed in, from a validated ID token. */
export interface SignedInUser {
  /** `oidc:<issuer>#<sub>`: stable across name changes. */
  id: string;
  sub: string;
  issuer: string;
  displayName: string;
  groups: string[];
}

export interface TokenSet {
  accessToken: Redacted<string>;
  refreshToken: Redacted<string> | undefined;
  idToken: Redacted<string> | undefined;
  /** When the access token expires (epoch ms). */
  expiresAt: number;
  /** Present when the response carried an ID token (always at sign-in; usually at refresh). */
  user: SignedInUser | undefined;
}

export interface LoginIo {
  /** Opens the URL in the system browser; resolves false when no browser could be started. */
  openBrowser(url: string): Promise<boolean>;
  /** A line for the person (the CLI's stderr). */
  say(line: string): void;
}

export interface BrowserLoginOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * Finishes the sign-in on this side (keeps the tokens, tells the daemon) while the browser tab
   * waits, and says what to show there; a failure is shown in the tab too, so the page never says
   * "signed in" when the sign-in did not stick.
   */
  accept?(tokens: TokenSet): Promise<string>;
}

/**
 * The authorization request's extra parameters. OpenID Connect Core §11: a request for
 * `offline_access` must carry `prompt=consent` (providers such as oidc-provider and Ping grant no
 * refresh token otherwise), unless the settings choose their own `prompt`.
 */
export function authorizationParameters(settings: Pick<IdentitySettings, 'scopes' | 'authorizationParams'>): Record<string, string> {
  const params = { ...settings.authorizationParams };
  if (settings.scopes.includes('offline_access') && params.prompt === undefined) params.prompt = 'consent';
  return params;
}

/** The sign-in yielded no refresh token: nothing could be kept, and the settings say why. */
export function noRefreshToken(settings: Pick<IdentitySettings, 'scopes' | 'authorizationParams'>): GatehouseError {
  const asked = settings.scopes.includes('offline_access');
  const fix = asked
    ? `the scopes include "offline_access" and Gatehouse asked with prompt=${authorizationParameters(settings).prompt}; ` +
      'check that the provider allows refresh tokens for this client (Okta: the Refresh Token grant; Auth0: Allow Offline Access on the API)'
    : 'add "offline_access" to the scopes in identity.json (Google instead: authorizationParams access_type=offline and prompt=consent)';
  return new GatehouseError('no_refresh_token', `the identity provider returned no refresh token, so the sign-in could not be kept: ${fix}`);
}

const DEFAULT_ACCESS_TOKEN_SECONDS = 3600;

/** The response the loopback server received, and how to answer the browser tab that is waiting for the outcome. */
interface Delivered {
  url: URL;
  respond(status: number, text: string): void;
}

/** Which check failed, as a stable code, from an openid-client error. */
export function describeOidcError(error: unknown, issuer: string): GatehouseError {
  if (error instanceof GatehouseError) return error;
  const message = errorMessage(error);
  if (loaded !== undefined && error instanceof loaded.ResponseBodyError) {
    const what = `${error.error}${error.error_description ? `: ${error.error_description}` : ''}`;
    if (error.error === 'invalid_grant') {
      if (/pkce|code_verifier/i.test(error.error_description ?? '')) {
        return new GatehouseError('oidc_pkce_failed', `the identity provider refused the authorization code: PKCE verification failed (${what})`, {
          cause: error,
        });
      }
      return new GatehouseError(
        'oidc_invalid_grant',
        `the identity provider refused the grant (${what}): the code or refresh token is invalid, expired or revoked`,
        { cause: error },
      );
    }
    return new GatehouseError('oidc_refused', `the identity provider refused the request (${what})`, { cause: error });
  }
  if (loaded !== undefined && error instanceof loaded.AuthorizationResponseError) {
    return new GatehouseError(
      'oidc_denied',
      `the identity provider answered the sign-in with an error: ${error.error}${error.error_description ? `: ${error.error_description}` : ''}`,
      { cause: error },
    );
  }
  const code = (error as { code?: unknown }).code;
  // openid-client wraps oauth4webapi's error, whose own cause names the claim that failed.
  let claim: string | undefined;
  const messages: string[] = [message];
  for (let at: unknown = error, depth = 0; at && typeof at === 'object' && depth < 5; at = (at as { cause?: unknown }).cause, depth++) {
    const c = (at as { claim?: unknown }).claim;
    if (typeof c === 'string') claim ??= c;
    const m = (at as { message?: unknown }).message;
    if (typeof m === 'string') messages.push(m);
  }
  const detail = [...new Set(messages)].join(': ');
  if (
    code === 'OAUTH_JWT_CLAIM_COMPARISON_FAILED' ||
    code === 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED' ||
    code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED' ||
    /claim/.test(message)
  ) {
    const message = detail;
    if (claim === 'iss' || (claim === undefined && /"iss"|issuer/i.test(message))) {
      return new GatehouseError('oidc_wrong_issuer', `the identity provider's answer names the wrong issuer (expected ${issuer}): ${message}`, {
        cause: error,
      });
    }
    if (claim === 'aud' || claim === 'azp' || (claim === undefined && /"aud"|audience/.test(message))) {
      return new GatehouseError('oidc_wrong_audience', `the ID token was issued for another client (audience check failed): ${message}`, { cause: error });
    }
    if (claim === 'nonce' || (claim === undefined && /nonce/.test(message))) {
      return new GatehouseError('oidc_nonce_mismatch', `the ID token's nonce does not match this sign-in (a replayed or injected token): ${message}`, {
        cause: error,
      });
    }
    if (claim === 'exp' || (claim === undefined && /"exp"|expir/.test(message))) {
      return new GatehouseError('oidc_token_expired', `the ID token has expired (check the clock of this machine): ${message}`, { cause: error });
    }
    if (claim === 'iat' || claim === 'nbf') {
      return new GatehouseError('oidc_token_time', `the ID token is not valid yet, or too old (check the clock of this machine): ${message}`, { cause: error });
    }
    return new GatehouseError('oidc_invalid_token', `the ID token failed validation: ${message}`, { cause: error });
  }
  if (code === 'OAUTH_INVALID_RESPONSE' && /state/.test(message)) {
    return new GatehouseError('oidc_state_mismatch', `the sign-in response does not belong to this sign-in (state check failed): ${message}`, { cause: error });
  }
  if (error instanceof TypeError || /fetch failed|ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EAI_AGAIN|aborted|timeout/i.test(message) || code === 'ECONNREFUSED') {
    const why = (error as { cause?: unknown }).cause ? errorMessage((error as { cause: unknown }).cause) : message;
    return new GatehouseError('idp_unreachable', `cannot reach the identity provider at ${issuer}: ${why}`, { cause: error });
  }
  return new GatehouseError('oidc_failed', `sign-in failed: ${message}`, { cause: error });
}

function claimString(claims: Record<string, unknown>, names: readonly string[]): string | undefined {
  for (const name of names) {
    const v = claims[name];
    if (typeof v === 'string' && v !== '') return v;
  }
  return undefined;
}

/** The groups in the configured claim: a list of strings or one string; anything else is no groups. */
export function groupsFrom(claims: Record<string, unknown>, claim: string): string[] {
  const v = claims[claim];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return [...new Set(v.filter((g): g is string => typeof g === 'string' && g.length > 0 && g.length <= 256))].sort();
  return [];
}

type OpenIdClient = typeof Oidc;

/**
 * openid-client (and the parts of oauth4webapi and jose it uses) is loaded at the first discovery,
 * not when the daemon starts: a daemon rarely talks to the identity provider in a run (a refresh an
 * hour), and the modules hold about 1 MB of heap for the daemon's whole life (BENCHMARKS.md, daemon
 * memory). Its errors can only exist once it is loaded, which is what `describeOidcError` relies on.
 */
let loaded: OpenIdClient | undefined;

async function openIdClient(): Promise<OpenIdClient> {
  return (loaded ??= await import('openid-client'));
}

export class OidcClient {
  private constructor(
    readonly settings: IdentitySettings,
    readonly config: Oidc.Configuration,
    private readonly lib: OpenIdClient,
  ) {}

  /** Discovers the provider's metadata; the issuer in the document must be exactly the configured one. */
  static async discover(settings: IdentitySettings, options: { timeoutSeconds?: number } = {}): Promise<OidcClient> {
    const issuer = new URL(settings.issuer);
    const insecure = issuer.protocol === 'http:';
    const oidc = await openIdClient();
    try {
      const config = await oidc.discovery(
        issuer,
        settings.clientId,
        { [oidc.clockTolerance]: settings.clockToleranceSeconds },
        settings.clientSecret !== undefined ? oidc.ClientSecretPost(settings.clientSecret) : oidc.None(),
        { timeout: options.timeoutSeconds ?? 15, ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}) },
      );
      return new OidcClient(settings, config, oidc);
    } catch (error) {
      const described = describeOidcError(error, settings.issuer);
      if (described.code === 'oidc_failed' && /issuer/.test(errorMessage(error))) {
        throw new GatehouseError('oidc_wrong_issuer', `the discovery document at ${settings.issuer} names another issuer: ${errorMessage(error)}`, {
          cause: error,
        });
      }
      throw described;
    }
  }

  get issuer(): string {
    return this.config.serverMetadata().issuer;
  }

  get supportsDeviceFlow(): boolean {
    return typeof this.config.serverMetadata().device_authorization_endpoint === 'string';
  }

  private tokens(response: Oidc.TokenEndpointResponse & Oidc.TokenEndpointResponseHelpers, now = Date.now()): TokenSet {
    const claims = response.claims() as Record<string, unknown> | undefined;
    const expiresIn = response.expiresIn() ?? DEFAULT_ACCESS_TOKEN_SECONDS;
    return {
      accessToken: new Redacted(response.access_token),
      refreshToken: response.refresh_token ? new Redacted(response.refresh_token) : undefined,
      idToken: response.id_token ? new Redacted(response.id_token) : undefined,
      expiresAt: now + expiresIn * 1000,
      user: claims ? this.userFrom(claims) : undefined,
    };
  }

  userFrom(claims: Record<string, unknown>): SignedInUser {
    const sub = String(claims.sub);
    const issuer = String(claims.iss);
    return {
      id: `oidc:${issuer}#${sub}`,
      sub,
      issuer,
      displayName: claimString(claims, this.settings.userClaims) ?? sub,
      groups: groupsFrom(claims, this.settings.groupsClaim),
    };
  }

  /**
   * Authorization code + PKCE through the system browser. A one-shot HTTP server on 127.0.0.1
   * and a random port receives the redirect; it accepts exactly one response carrying this
   * sign-in's state, and refuses every other request.
   */
  async loginWithBrowser(io: LoginIo, options: BrowserLoginOptions = {}): Promise<TokenSet> {
    const verifier = this.lib.randomPKCECodeVerifier();
    const challenge = await this.lib.calculatePKCECodeChallenge(verifier);
    const state = this.lib.randomState();
    const nonce = this.lib.randomNonce();
    const timeoutMs = options.timeoutMs ?? 5 * 60_000;

    let settle!: { resolve: (delivered: Delivered) => void; reject: (error: Error) => void };
    const callback = new Promise<Delivered>((resolve, reject) => (settle = { resolve, reject }));
    let used = false;
    let port = 0;
    const server = createServer((req, res) => {
      const result = this.handleCallback(req, res, port, state, used);
      if (result.kind === 'ignore') return;
      used = true;
      if (result.kind === 'ok') settle.resolve(result);
      else settle.reject(result.error);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: this.settings.loopbackPort }, () => resolve());
    });
    port = (server.address() as AddressInfo).port;
    const redirectUri = `http://${this.settings.loopbackHost}:${port}/callback`;
    const timer = setTimeout(
      () =>
        settle.reject(
          new GatehouseError(
            'login_timeout',
            `no sign-in response within ${Math.round(timeoutMs / 1000)} s; ` +
              'run `gatehouse login` again (or `gatehouse login --device` where no browser can open)',
          ),
        ),
      timeoutMs,
    );
    const onAbort = (): void => settle.reject(new GatehouseError('login_cancelled', 'sign-in cancelled'));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let delivered: Delivered | undefined;
    try {
      const url = this.lib.buildAuthorizationUrl(this.config, {
        ...authorizationParameters(this.settings),
        redirect_uri: redirectUri,
        scope: this.settings.scopes.join(' '),
        code_challenge: challenge,
        code_challenge_method: 'S256',
        state,
        nonce,
      });
      const opened = await io.openBrowser(url.href);
      io.say(
        opened
          ? `Your browser was opened to sign in. If it did not open, visit:\n  ${url.href}`
          : `Open this address in a browser on this machine to sign in:\n  ${url.href}`,
      );
      delivered = await callback;
      const response = await this.lib.authorizationCodeGrant(this.config, delivered.url, {
        pkceCodeVerifier: verifier,
        expectedState: state,
        expectedNonce: nonce,
        idTokenExpected: true,
      });
      const tokens = this.tokens(response);
      // The tab waits until this side is done, and then tells the truth.
      const message = options.accept ? await options.accept(tokens) : 'Signed in to Gatehouse.';
      delivered.respond(200, `${message} You can close this tab.`);
      return tokens;
    } catch (error) {
      let described = describeOidcError(error, this.settings.issuer);
      if (described.code === 'oidc_invalid_grant') {
        // Providers do not say why a code was refused; at this step it is PKCE, a reused or expired code, or a redirect mismatch.
        const why =
          'the identity provider refused the authorization code (PKCE verification, a reused or expired code, or a redirect mismatch): ' + described.message;
        described = new GatehouseError('oidc_code_rejected', why, { cause: error });
      }
      delivered?.respond(
        400,
        `Sign-in failed: ${described.message}. Nothing was kept; run \`gatehouse login\` again once it is fixed. You can close this tab.`,
      );
      throw described;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      server.closeAllConnections();
      server.close();
    }
  }

  private handleCallback(
    req: IncomingMessage,
    res: ServerResponse,
    port: number,
    state: string,
    used: boolean,
  ): ({ kind: 'ok' } & Delivered) | { kind: 'error'; error: GatehouseError } | { kind: 'ignore' } {
    const page = (status: number, text: string): void => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
      res.end(text + '\n');
    };
    const host = (req.headers.host ?? '').toLowerCase();
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    if (req.method !== 'GET' || url.pathname !== '/callback' || (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`)) {
      page(404, 'Not found.');
      return { kind: 'ignore' };
    }
    if (used) {
      page(400, 'This sign-in response was already used. Run `gatehouse login` again.');
      return { kind: 'ignore' };
    }
    const got = url.searchParams.get('state');
    if (got === null) {
      page(400, 'Sign-in failed: the response carries no state. Run `gatehouse login` again.');
      return {
        kind: 'error',
        error: new GatehouseError(
          'oidc_state_missing',
          'the sign-in response carries no state parameter; it is not the answer to this sign-in, so it was refused',
        ),
      };
    }
    const a = Buffer.from(got);
    const b = Buffer.from(state);
    if (a.length !== b.length || !timingSafeEqual(a, b)) {
      page(400, 'Sign-in failed: this response belongs to another sign-in. Run `gatehouse login` again.');
      const forged = "the sign-in response carries another sign-in's state (a replayed or forged response); it was refused";
      return { kind: 'error', error: new GatehouseError('oidc_state_mismatch', forged) };
    }
    // Held open: the page is written once this side knows whether the sign-in stuck (loginWithBrowser).
    return { kind: 'ok', url, respond: page };
  }

  /** The device flow: shows a code to enter on another device, then polls until the person has signed in. */
  async loginWithDevice(io: LoginIo, options: { signal?: AbortSignal } = {}): Promise<TokenSet> {
    if (!this.supportsDeviceFlow) {
      throw new GatehouseError(
        'device_flow_unsupported',
        `the identity provider at ${this.settings.issuer} does not offer the device flow; sign in with a browser (gatehouse login)`,
      );
    }
    try {
      const started = await this.lib.initiateDeviceAuthorization(this.config, {
        ...authorizationParameters(this.settings),
        scope: this.settings.scopes.join(' '),
      });
      io.say(
        `To sign in, visit ${started.verification_uri} and enter the code ${started.user_code}` +
          (started.verification_uri_complete ? `\n  (or open ${started.verification_uri_complete})` : ''),
      );
      const response = await this.lib.pollDeviceAuthorizationGrant(this.config, started, undefined, options.signal ? { signal: options.signal } : {});
      const tokens = this.tokens(response);
      if (!tokens.user) throw new GatehouseError('oidc_no_id_token', 'the identity provider returned no ID token; add "openid" to the scopes');
      return tokens;
    } catch (error) {
      throw describeOidcError(error, this.settings.issuer);
    }
  }

  /** A new access token (and usually ID token) for a refresh token; the subject must not change. */
  async refresh(refreshToken: Redacted<string>, expectedSub: string | undefined): Promise<TokenSet> {
    let tokens: TokenSet;
    try {
      tokens = this.tokens(await this.lib.refreshTokenGrant(this.config, refreshToken.unwrap()));
    } catch (error) {
      throw describeOidcError(error, this.settings.issuer);
    }
    if (tokens.user && expectedSub !== undefined && tokens.user.sub !== expectedSub) {
      throw new GatehouseError('oidc_subject_changed', 'the refreshed ID token names another user than the one who signed in; sign in again');
    }
    return tokens;
  }

  /** Revokes a token where the provider offers revocation (RFC 7009); false when it does not. */
  async revoke(token: Redacted<string>, hint: 'refresh_token' | 'access_token'): Promise<boolean> {
    if (!this.config.serverMetadata().revocation_endpoint) return false;
    try {
      await this.lib.tokenRevocation(this.config, token.unwrap(), { token_type_hint: hint });
      return true;
    } catch (error) {
      throw describeOidcError(error, this.settings.issuer);
    }
  }

  /** The provider's end-session page (RP-initiated logout), where it offers one. */
  endSessionUrl(idToken: Redacted<string> | undefined): URL | undefined {
    if (!this.settings.rpInitiatedLogout || !this.config.serverMetadata().end_session_endpoint) return undefined;
    return this.lib.buildEndSessionUrl(this.config, { client_id: this.settings.clientId, ...(idToken ? { id_token_hint: idToken.unwrap() } : {}) });
  }
}
