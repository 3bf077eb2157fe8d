/**
 * The daemon's side of signing in to remote servers (docs/remote-servers.md): for each HTTP server
 * that is an OAuth-protected resource, the current user's tokens, kept in the key store per (user,
 * server) and nowhere else; renewed before they expire; put on that server's requests only (the
 * connector asks `provider(...)` for them per request); revoked at the authorization server when the
 * user signs out of the server or of Gatehouse.
 *
 * A server that answers 401 while Gatehouse holds no usable token makes its connection fail with
 * `sign_in_required`, which parks it in `needs-sign-in` (no retry loop) until a sign-in succeeds:
 * in the browser (`signIn`, from `gatehouse servers login NAME`, the console, or the human channel),
 * or, where the managed identity settings allow it, by exchanging the user's SSO identity (ID-JAG).
 */
import type { FetchLike } from '@modelcontextprotocol/client';
import type { HttpServerConfig, ServerConfig } from '../../common/config.js';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import type { UpstreamAuthStatus } from '../../common/status.js';
import type { AuditRecord, Logger, UpstreamIdentity } from '../../core/ports.js';
import { Redacted, type SecretStore } from '../../core/secrets.js';
import { bearerChallenge, type BearerChallenge } from '../../core/upstream-auth/challenge.js';
import { enterpriseEntryFor, idJagRequest, jwtBearerRequest, parseIdJagResponse, type EnterpriseUpstream } from '../../core/upstream-auth/id-jag.js';
import { canonicalResource } from '../../core/upstream-auth/metadata.js';
import { chooseRegistration, dynamicRegistrationMetadata, parseRegistration } from '../../core/upstream-auth/registration.js';
import { needsMoreScope, scopeToRequest } from '../../core/upstream-auth/scopes.js';
import { expired, expiresAtFrom, renewalDue } from '../../core/upstream-auth/timing.js';
import { clientItem, parseTokens, serializeTokens, signInCommand, tokenItem, tokensFrom, type UpstreamTokens } from '../../core/upstream-auth/tokens.js';
import { userSecretItem } from '../secrets/resolver.js';
import { startBrowserSignIn, type BrowserSignIn, type SignInClient } from './browser-flow.js';
import { authorizationServer, discover, type Discovered } from './discovery.js';
import { boundedFetch, clean, postForm } from './http.js';

/** What the connector needs for one server's requests. */
export interface UpstreamAuthProvider {
  /** The access token to send now (renewed first when due), or undefined when none is held. */
  token(): Promise<string | undefined>;
  /** The server answered 401: renew once, or fail with `sign_in_required` (the SDK retries the request after a renewal). */
  onUnauthorized(response: Response): Promise<void>;
  /** The server refused a token it accepted before, even after renewal: forget it and say to sign in again. */
  refused(): Promise<GatehouseError>;
  /** The server answered 403 insufficient_scope: the caller's error, naming the command that grants more. */
  insufficientScope(challenge: { scope?: string; description?: string }): GatehouseError;
  /** Whose sign-in the requests carry, for the audit log. */
  identity(): UpstreamIdentity | undefined;
}

export interface EnterpriseSource {
  /** The organisation's identity provider, as the managed identity.json names it. */
  idp: { issuer: string; clientId: string; clientSecret?: string };
  /** The remote servers it may vouch for (managed settings only). */
  upstreams: readonly EnterpriseUpstream[];
  /** The signed-in user's current ID token, if any. */
  idToken(): Redacted<string> | undefined;
}

export interface UpstreamAuthDeps {
  keychain: SecretStore;
  logger: Logger;
  record(entry: AuditRecord): void;
  /** Who calls are made as now; tokens are kept per user. `signedIn` is false while an organisation's sign-in is missing. */
  user(): { id: string; signedIn: boolean };
  config(server: string): ServerConfig | undefined;
  servers(): string[];
  /** Starts a server afresh (after a sign-in, a sign-out, or another user). */
  restart(server: string): Promise<void>;
  /** Known token values join the scrubber (replacing the ones of that name), so that nothing a server writes or answers carries them. */
  scrub?(name: string, values: readonly Redacted<string>[]): void;
  enterprise?(): EnterpriseSource | undefined;
  /** Something in `status` changed (the console refreshes). */
  changed?(): void;
  now?(): number;
  fetchFn?: FetchLike;
  signInTimeoutMs?: number;
}

interface ServerState {
  /** The user the cached tokens belong to; a cache for another user is never used. */
  user?: string;
  /** undefined: not read yet; null: none stored. */
  tokens?: UpstreamTokens | null;
  renewing?: Promise<UpstreamTokens | undefined>;
  challenge?: BearerChallenge;
  /** The server asked for a sign-in (a 401 with a Bearer challenge) at least once. */
  asked?: boolean;
  signIn?: { flow: BrowserSignIn; user: string };
  /** A scope a 403 asked for that the current token lacks. */
  required?: string;
  reason?: string;
  /** The last renewal failed for a passing reason (the authorization server unreachable): the sign-in is kept. */
  transient?: string;
  /** Token values the scrubber knows for this server (the current ones first). */
  scrubbed?: Redacted<string>[];
  discovered?: Discovered;
  lastSignIn?: { at: string; ok: boolean; reason?: string };
}

const DEFAULT_SIGN_IN_TIMEOUT_MS = 10 * 60_000;

/** An HTTP server whose requests may carry the user's OAuth token: not switched off, and not carrying an Authorization header of its own. */
export function usesOAuth(config: ServerConfig | undefined): config is HttpServerConfig {
  if (!config || config.type !== 'http' || config.oauth === false) return false;
  return !Object.keys(config.headers).some((h) => h.toLowerCase() === 'authorization');
}

export class UpstreamAuth {
  private readonly states = new Map<string, ServerState>();
  private readonly now: () => number;
  private readonly fetchFn: FetchLike;
  private lastUser: string | undefined;

  constructor(private readonly deps: UpstreamAuthDeps) {
    this.now = deps.now ?? Date.now;
    this.fetchFn = deps.fetchFn ?? boundedFetch();
  }

  private state(server: string): ServerState {
    let s = this.states.get(server);
    if (!s) this.states.set(server, (s = {}));
    return s;
  }

  // ---- for the connector ------------------------------------------------------------------------

  provider(server: string, config: ServerConfig): UpstreamAuthProvider | undefined {
    if (!usesOAuth(config)) return undefined;
    return {
      token: () => this.token(server, config),
      onUnauthorized: (response) => this.onUnauthorized(server, config, response),
      refused: () => this.refused(server, config),
      insufficientScope: (challenge) => this.insufficientScope(server, challenge),
      identity: () => {
        const t = this.state(server).tokens;
        return t ? { issuer: t.issuer, ...(t.subject ? { subject: t.subject } : {}) } : undefined;
      },
    };
  }

  private async token(server: string, config: HttpServerConfig): Promise<string | undefined> {
    let tokens = await this.current(server, config);
    if (!tokens) tokens = await this.tryEnterprise(server, config);
    if (!tokens) return undefined;
    if (renewalDue(tokens, this.now())) {
      const renewed = await this.renew(server, config, tokens);
      if (renewed) return renewed.accessToken.unwrap();
      if (expired(tokens, this.now())) return undefined;
    }
    return tokens.accessToken.unwrap();
  }

  private async onUnauthorized(server: string, config: HttpServerConfig, response: Response): Promise<void> {
    const s = this.state(server);
    const challenge = bearerChallenge(response.headers.get('www-authenticate'));
    if (challenge) {
      s.challenge = challenge;
      s.asked = true;
    }
    const held = await this.current(server, config);
    if (held) {
      // The server refused a token Gatehouse holds: renew it once; the SDK then retries the request.
      const renewed = await this.renew(server, config, held, { force: true });
      if (renewed && renewed.accessToken.unwrap() !== held.accessToken.unwrap()) return;
      // An authorization server that cannot be reached now does not end the sign-in: this request fails, a later one renews.
      if (!renewed && s.transient && s.tokens) {
        throw new GatehouseError(
          'upstream_auth_unavailable',
          `server "${server}" refused its token, and it could not be renewed just now (${s.transient}); Gatehouse tries again at the next call`,
        );
      }
      await this.forget(server, config, 'the server refused the stored sign-in (it was revoked or expired)');
    }
    if (await this.tryEnterprise(server, config)) return;
    this.deps.changed?.();
    throw this.signInRequired(server);
  }

  private async refused(server: string, config: HttpServerConfig): Promise<GatehouseError> {
    await this.forget(server, config, 'the server refused the stored sign-in even after it was renewed');
    return this.signInRequired(server);
  }

  private insufficientScope(server: string, challenge: { scope?: string; description?: string }): GatehouseError {
    const s = this.state(server);
    if (challenge.scope) s.required = challenge.scope;
    s.reason = `the server asked for more permission${challenge.scope ? ` (scope: ${clean(challenge.scope, 200)})` : ''}`;
    this.deps.changed?.();
    const what = challenge.scope ? ` (scope: ${clean(challenge.scope, 200)})` : '';
    return new GatehouseError(
      'sign_in_required',
      `server "${server}" needs more permission for this${what}; sign in again to grant it: run \`${signInCommand(server)}\` (or use Sign in on the console's Servers screen)`,
    );
  }

  private signInRequired(server: string): GatehouseError {
    const s = this.state(server);
    const why = s.reason ? ` (${s.reason})` : '';
    return new GatehouseError(
      'sign_in_required',
      `server "${server}" needs you to sign in${why}: run \`${signInCommand(server)}\` (or use Sign in on the console's Servers screen)`,
    );
  }

  // ---- the tokens --------------------------------------------------------------------------------

  /** The current user's stored tokens for this server, read once and cached (per user). */
  private async current(server: string, config: HttpServerConfig): Promise<UpstreamTokens | undefined> {
    const user = this.deps.user();
    const s = this.state(server);
    if (!user.signedIn) return undefined;
    if (s.user === user.id && s.tokens !== undefined) return s.tokens ?? undefined;
    const url = canonicalResource(config.url);
    let tokens: UpstreamTokens | null = null;
    try {
      const item = await this.deps.keychain.get(tokenItem(user.id, server, url));
      if (item) tokens = parseTokens(item.unwrap(), { server, url });
    } catch (error) {
      s.reason = errorMessage(error);
      this.deps.logger.log('warn', 'upstream_auth.load_failed', { server, error: s.reason });
      return undefined;
    }
    s.user = user.id;
    s.tokens = tokens;
    if (tokens) this.learn(server, tokens);
    return tokens ?? undefined;
  }

  /** The scrubber learns the server's current tokens, and keeps the previous ones (an access token outlives its renewal until it expires). */
  private learn(server: string, tokens: UpstreamTokens): void {
    const s = this.state(server);
    const fresh = [tokens.accessToken, ...(tokens.refreshToken ? [tokens.refreshToken] : [])];
    s.scrubbed = [...fresh, ...(s.scrubbed ?? []).filter((v) => !fresh.some((f) => f.unwrap() === v.unwrap()))].slice(0, 6);
    this.deps.scrub?.(`upstream ${server} token`, s.scrubbed);
  }

  private async keep(server: string, tokens: UpstreamTokens): Promise<void> {
    const user = this.deps.user();
    const s = this.state(server);
    await this.deps.keychain.set(tokenItem(user.id, server, tokens.url), serializeTokens(tokens));
    s.user = user.id;
    s.tokens = tokens;
    this.learn(server, tokens);
  }

  /** Deletes the stored tokens (the authorization server no longer honours them). */
  private async forget(server: string, config: HttpServerConfig, reason: string): Promise<void> {
    const user = this.deps.user();
    const s = this.state(server);
    s.tokens = null;
    s.user = user.id;
    s.reason = reason;
    await this.deps.keychain.delete(tokenItem(user.id, server, canonicalResource(config.url))).catch(() => false);
    this.deps.logger.log('info', 'upstream_auth.forgotten', { server, reason });
  }

  /** Renews with the refresh token (or the enterprise exchange), one renewal per server at a time. */
  private renew(server: string, config: HttpServerConfig, tokens: UpstreamTokens, options: { force?: boolean } = {}): Promise<UpstreamTokens | undefined> {
    const s = this.state(server);
    s.renewing ??= this.renewOnce(server, config, tokens, options).finally(() => (s.renewing = undefined));
    return s.renewing;
  }

  private async renewOnce(server: string, config: HttpServerConfig, tokens: UpstreamTokens, options: { force?: boolean }): Promise<UpstreamTokens | undefined> {
    const s = this.state(server);
    // Another caller renewed while this one waited.
    if (!options.force && s.tokens && s.tokens !== tokens && !renewalDue(s.tokens, this.now())) return s.tokens;
    s.transient = undefined;
    if (tokens.via === 'enterprise') return this.tryEnterprise(server, config, { again: true });
    if (!tokens.refreshToken) return undefined;
    try {
      const { server: as } = await authorizationServer(tokens.issuer, this.fetchFn);
      const client = await this.clientSecretFor(config, tokens);
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: tokens.refreshToken.unwrap(),
        resource: tokens.resource,
        client_id: tokens.clientId,
      });
      if (client) form.set('client_secret', client.unwrap());
      const answer = await postForm(this.fetchFn, as.tokenEndpoint, form, `renewing the sign-in to "${server}"`);
      const renewed = tokensFrom(
        answer,
        { ...tokens, ...(tokens.scope ? { requested: tokens.scope } : {}), previousRefresh: tokens.refreshToken, now: this.now() },
        expiresAtFrom,
      );
      if (!renewed.subject && tokens.subject) renewed.subject = tokens.subject;
      await this.keep(server, renewed);
      s.reason = undefined;
      s.transient = undefined;
      this.deps.logger.log('info', 'upstream_auth.renewed', { server, expiresAt: new Date(renewed.expiresAt).toISOString() });
      this.deps.changed?.();
      return renewed;
    } catch (error) {
      const code = error instanceof GatehouseError ? error.code : 'error';
      this.deps.logger.log('warn', 'upstream_auth.renew_failed', { server, code, error: errorMessage(error) });
      if (code === 'oauth_invalid_grant' || code === 'oauth_invalid_client' || code === 'oauth_unauthorized_client') {
        // The authorization server ended this sign-in (revoked, expired, or the client is gone): it is useless now.
        await this.forget(server, config, `the authorization server refused to renew the sign-in (${code.replace(/^oauth_/, '')})`);
      } else {
        s.reason = `the sign-in could not be renewed: ${errorMessage(error)}`;
        s.transient = errorMessage(error);
      }
      return undefined;
    }
  }

  /** The pre-registered client's secret (from the key store), or a dynamic registration's, when there is one. */
  private async clientSecretFor(
    config: HttpServerConfig,
    tokens: { clientId: string; issuer: string; registration: string },
  ): Promise<Redacted<string> | undefined> {
    const oauth = config.oauth || undefined;
    if (tokens.registration === 'pre-registered' && oauth?.clientSecret) {
      const name = /^\$\{secret:(.+)\}$/.exec(oauth.clientSecret)?.[1];
      const value = name ? await this.deps.keychain.get(userSecretItem(name)) : undefined;
      if (!value)
        throw new GatehouseError(
          'secret_missing',
          `the client secret "${name}" for signing in is not in the keychain; add it with \`gatehouse secrets set ${name}\``,
        );
      return value;
    }
    if (tokens.registration === 'dynamic') {
      const stored = await this.storedRegistration(tokens.issuer);
      if (stored?.clientId === tokens.clientId && stored.clientSecret) return new Redacted(stored.clientSecret);
    }
    return undefined;
  }

  private async storedRegistration(issuer: string): Promise<{ issuer: string; clientId: string; clientSecret?: string } | undefined> {
    const item = await this.deps.keychain.get(clientItem(issuer));
    if (!item) return undefined;
    try {
      const doc = JSON.parse(item.unwrap()) as { issuer?: unknown; clientId?: unknown; clientSecret?: unknown };
      if (doc.issuer !== issuer || typeof doc.clientId !== 'string') return undefined;
      return { issuer, clientId: doc.clientId, ...(typeof doc.clientSecret === 'string' ? { clientSecret: doc.clientSecret } : {}) };
    } catch {
      return undefined;
    }
  }

  // ---- enterprise-managed authorization (ID-JAG) -------------------------------------------------

  /**
   * Exchanges the user's SSO identity for a token, where the managed settings name this server and
   * the user is signed in with the organisation's IdP. Undefined (and a reason kept) otherwise.
   */
  private async tryEnterprise(server: string, config: HttpServerConfig, options: { again?: boolean } = {}): Promise<UpstreamTokens | undefined> {
    const source = this.deps.enterprise?.();
    if (!source || source.upstreams.length === 0) return undefined;
    const s = this.state(server);
    const user = this.deps.user();
    if (!user.signedIn) return undefined;
    const idToken = source.idToken();
    if (!idToken) return undefined;
    try {
      const discovered = await this.discovered(server, config, options.again === true);
      const entry = enterpriseEntryFor(source.upstreams, discovered.resource.resource);
      if (!entry) return undefined;
      const idp = await authorizationServer(source.idp.issuer, this.fetchFn);
      const scope = scopeToRequest({
        ...(s.challenge?.scope ? { challenged: s.challenge.scope } : {}),
        ...(discovered.resource.scopesSupported ? { resourceScopes: discovered.resource.scopesSupported } : {}),
        ...(config.oauth ? { configured: config.oauth.scopes } : {}),
      });
      const grant = parseIdJagResponse(
        await postForm(
          this.fetchFn,
          idp.server.tokenEndpoint,
          idJagRequest({
            idToken: idToken.unwrap(),
            audience: discovered.server.issuer,
            resource: discovered.resource.resource,
            ...(scope ? { scope } : {}),
            client: { clientId: source.idp.clientId, ...(source.idp.clientSecret ? { clientSecret: source.idp.clientSecret } : {}) },
          }),
          `exchanging your sign-in for access to "${server}" at ${source.idp.issuer}`,
        ),
      );
      const answer = await postForm(
        this.fetchFn,
        discovered.server.tokenEndpoint,
        jwtBearerRequest({
          assertion: grant.assertion,
          ...(scope ? { scope } : {}),
          resource: discovered.resource.resource,
          client: { clientId: entry.clientId },
        }),
        `redeeming your organisation's identity assertion at ${discovered.server.issuer}`,
      );
      const tokens = tokensFrom(
        answer,
        {
          server,
          url: canonicalResource(config.url),
          resource: discovered.resource.resource,
          issuer: discovered.server.issuer,
          clientId: entry.clientId,
          registration: 'pre-registered',
          via: 'enterprise',
          ...(scope ? { requested: scope } : {}),
          now: this.now(),
        },
        expiresAtFrom,
      );
      // The assertion names the user; the token answer may not.
      tokens.subject ??= subjectOfAssertion(grant.assertion);
      await this.keep(server, tokens);
      s.reason = undefined;
      if (!options.again) this.signedIn(server, tokens);
      return tokens;
    } catch (error) {
      s.reason = `your organisation's sign-in could not be exchanged for access: ${errorMessage(error)}`;
      this.deps.logger.log('warn', 'upstream_auth.enterprise_failed', { server, error: errorMessage(error) });
      return undefined;
    }
  }

  private async discovered(server: string, config: HttpServerConfig, fresh: boolean): Promise<Discovered> {
    const s = this.state(server);
    if (!fresh && s.discovered) return s.discovered;
    s.discovered = await discover(server, config.url, s.challenge, this.fetchFn);
    return s.discovered;
  }

  // ---- signing in and out -------------------------------------------------------------------------

  /**
   * Starts a sign-in in the browser (or joins the one under way) and answers with the authorization
   * server's address for the person to open. When it completes, the tokens are kept and the server
   * starts again.
   */
  async signIn(server: string): Promise<{ url: string; expiresAt: string }> {
    const config = this.deps.config(server);
    if (!config) throw new GatehouseError('unknown_server', `no server named "${server}" is configured`);
    if (config.type !== 'http') throw new GatehouseError('no_sign_in', `"${server}" runs on this machine; only remote (http) servers take a sign-in`);
    if (!usesOAuth(config)) {
      const why = (config as HttpServerConfig).oauth === false ? '"oauth": false' : 'an Authorization header of its own';
      throw new GatehouseError('no_sign_in', `"${server}" does not use sign-in: its config sets ${why}`);
    }
    const user = this.deps.user();
    if (!user.signedIn)
      throw new GatehouseError('unauthenticated', 'sign in to Gatehouse first (`gatehouse login`): sign-ins to remote servers are kept per user');
    const s = this.state(server);
    if (s.signIn && s.signIn.user === user.id && s.signIn.flow.expiresAt > this.now())
      return { url: s.signIn.flow.url, expiresAt: new Date(s.signIn.flow.expiresAt).toISOString() };
    const discovered = await this.discovered(server, config, true);
    const client = await this.registration(server, config, discovered);
    const held = await this.current(server, config);
    const scope = scopeToRequest({
      ...((s.required ?? s.challenge?.scope) ? { challenged: (s.required ?? s.challenge?.scope)! } : {}),
      ...(discovered.resource.scopesSupported ? { resourceScopes: discovered.resource.scopesSupported } : {}),
      ...(config.oauth ? { configured: config.oauth.scopes } : {}),
      ...(held?.scope ? { granted: held.scope } : {}),
      ...(discovered.server.scopesSupported ? { serverScopes: discovered.server.scopesSupported } : {}),
    });
    const flow = await startBrowserSignIn({
      server,
      url: canonicalResource(config.url),
      discovered,
      client,
      scope,
      redirectPort: config.oauth ? config.oauth.redirectPort : 0,
      timeoutMs: this.deps.signInTimeoutMs ?? DEFAULT_SIGN_IN_TIMEOUT_MS,
      fetchFn: this.fetchFn,
      now: this.now,
    });
    s.signIn?.flow.cancel('a new sign-in started');
    const pending = { flow, user: user.id };
    s.signIn = pending;
    this.deps.logger.log('info', 'upstream_auth.sign_in_started', { server, issuer: discovered.server.issuer, registration: client.registration });
    this.deps.changed?.();
    flow.done
      .then(
        async (tokens) => {
          if (s.signIn !== pending) return;
          s.signIn = undefined;
          if (this.deps.user().id !== pending.user) throw new GatehouseError('sign_in_cancelled', 'another user signed in to Gatehouse meanwhile');
          if (s.required && needsMoreScope(s.required, tokens.scope))
            this.deps.logger.log('warn', 'upstream_auth.scope_short', { server, granted: tokens.scope, required: s.required });
          else s.required = undefined;
          await this.keep(server, tokens);
          s.reason = undefined;
          s.lastSignIn = { at: new Date(this.now()).toISOString(), ok: true };
          this.signedIn(server, tokens);
          await this.deps.restart(server);
        },
        (error: unknown) => {
          if (s.signIn !== pending) return;
          s.signIn = undefined;
          s.reason = errorMessage(error);
          s.lastSignIn = { at: new Date(this.now()).toISOString(), ok: false, reason: s.reason };
          this.deps.logger.log('warn', 'upstream_auth.sign_in_failed', { server, error: s.reason });
          this.deps.changed?.();
        },
      )
      .catch((error: unknown) => {
        s.reason = errorMessage(error);
        s.lastSignIn = { at: new Date(this.now()).toISOString(), ok: false, reason: s.reason };
        this.deps.logger.log('error', 'upstream_auth.sign_in_failed', { server, error: s.reason });
        this.deps.changed?.();
      });
    return { url: flow.url, expiresAt: new Date(flow.expiresAt).toISOString() };
  }

  /** Cancels a sign-in waiting for the person (the person declined it). */
  cancelSignIn(server: string, reason: string): void {
    const s = this.states.get(server);
    s?.signIn?.flow.cancel(reason);
  }

  private signedIn(server: string, tokens: UpstreamTokens): void {
    const at = new Date(this.now()).toISOString();
    this.deps.record({
      type: 'upstream.signed_in',
      at,
      user: this.deps.user().id,
      server,
      upstream: { issuer: tokens.issuer, ...(tokens.subject ? { subject: tokens.subject } : {}) },
      detail: { via: tokens.via, registration: tokens.registration, ...(tokens.scope ? { scope: tokens.scope } : {}) },
    });
    this.deps.logger.log('info', 'upstream_auth.signed_in', { server, issuer: tokens.issuer, via: tokens.via });
    this.deps.changed?.();
  }

  /** How Gatehouse is known to this server's authorization server, registering it when it must (docs/remote-servers.md). */
  private async registration(server: string, config: HttpServerConfig, discovered: Discovered): Promise<SignInClient> {
    const oauth = config.oauth || undefined;
    const stored = await this.storedRegistration(discovered.server.issuer);
    const choice = chooseRegistration({
      ...(oauth?.clientId ? { configured: { clientId: oauth.clientId, hasSecret: oauth.clientSecret !== undefined } } : {}),
      ...(oauth?.clientMetadataUrl ? { clientMetadataUrl: oauth.clientMetadataUrl } : {}),
      server: discovered.server,
      ...(stored ? { stored } : {}),
    });
    switch (choice.kind) {
      case 'pre-registered': {
        const secret = await this.clientSecretFor(config, { clientId: choice.clientId, issuer: discovered.server.issuer, registration: 'pre-registered' });
        return { clientId: choice.clientId, ...(secret ? { clientSecret: secret.unwrap() } : {}), registration: 'pre-registered' };
      }
      case 'metadata-document':
        return { clientId: choice.clientId, registration: 'metadata-document' };
      case 'stored':
        return { clientId: choice.clientId, ...(stored?.clientSecret ? { clientSecret: stored.clientSecret } : {}), registration: 'dynamic' };
      case 'dynamic': {
        const answer = await this.post(
          choice.endpoint,
          JSON.stringify(dynamicRegistrationMetadata(undefined)),
          `registering Gatehouse with ${discovered.server.issuer}`,
        );
        const registered = parseRegistration(answer);
        if (!registered)
          throw new GatehouseError(
            'upstream_auth_failed',
            `the authorization server ${discovered.server.issuer} answered the registration without a client id`,
          );
        await this.deps.keychain.set(
          clientItem(discovered.server.issuer),
          JSON.stringify({ issuer: discovered.server.issuer, ...registered, registeredAt: new Date(this.now()).toISOString() }),
        );
        this.deps.logger.log('info', 'upstream_auth.registered', { server, issuer: discovered.server.issuer });
        return { ...registered, registration: 'dynamic' };
      }
      case 'none':
        throw new GatehouseError('upstream_auth_unregistered', `cannot sign in to "${server}": ${choice.reason}`);
    }
  }

  /** A JSON POST (dynamic registration), with the same limits as every sign-in request. */
  private async post(url: string, body: string, what: string): Promise<unknown> {
    let response: Response;
    try {
      response = await this.fetchFn(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body });
    } catch (error) {
      throw new GatehouseError('upstream_auth_unreachable', `${what}: ${errorMessage(error)}`, { cause: error });
    }
    const text = await response.text();
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      doc = undefined;
    }
    if (!response.ok) {
      const r = (doc ?? {}) as { error?: unknown; error_description?: unknown };
      throw new GatehouseError(
        'upstream_auth_failed',
        `${what}: refused${typeof r.error === 'string' ? ` (${clean(r.error, 64)}${typeof r.error_description === 'string' ? `: ${clean(r.error_description)}` : ''})` : ` with HTTP ${response.status}`}`,
      );
    }
    return doc;
  }

  /**
   * Signs the user out of one server: revokes the tokens at its authorization server where it
   * offers revocation (RFC 7009), forgets them, and starts the server again (which then waits for a
   * sign-in).
   */
  async signOut(server: string, reason: string, options: { restart?: boolean } = {}): Promise<{ revoked: boolean; held: boolean }> {
    const config = this.deps.config(server);
    if (!config) throw new GatehouseError('unknown_server', `no server named "${server}" is configured`);
    if (!usesOAuth(config)) throw new GatehouseError('no_sign_in', `"${server}" does not use sign-in`);
    const s = this.state(server);
    s.signIn?.flow.cancel('signed out');
    const tokens = await this.current(server, config);
    let revoked = false;
    if (tokens) {
      try {
        revoked = await this.revoke(server, config, tokens);
      } catch (error) {
        this.deps.logger.log('warn', 'upstream_auth.revoke_failed', { server, error: errorMessage(error) });
      }
      await this.forget(server, config, 'you signed out');
      this.deps.record({
        type: 'upstream.signed_out',
        at: new Date(this.now()).toISOString(),
        user: this.deps.user().id,
        server,
        upstream: { issuer: tokens.issuer, ...(tokens.subject ? { subject: tokens.subject } : {}) },
        reason,
        detail: { revoked },
      });
    }
    s.required = undefined;
    this.deps.changed?.();
    if (options.restart !== false)
      await this.deps
        .restart(server)
        .catch((error: unknown) => this.deps.logger.log('warn', 'upstream_auth.restart_failed', { server, error: errorMessage(error) }));
    return { revoked, held: tokens !== undefined };
  }

  /** At a sign-out of Gatehouse: every server the user is signed in to. */
  async signOutAll(reason: string): Promise<{ server: string; revoked: boolean }[]> {
    const out: { server: string; revoked: boolean }[] = [];
    for (const server of this.deps.servers()) {
      const config = this.deps.config(server);
      if (!usesOAuth(config)) continue;
      if (!(await this.current(server, config))) continue;
      const result = await this.signOut(server, reason);
      out.push({ server, revoked: result.revoked });
    }
    return out;
  }

  /** Revokes the refresh token (which ends the grant at most servers) and the access token. False when the server offers no revocation. */
  private async revoke(server: string, config: HttpServerConfig, tokens: UpstreamTokens): Promise<boolean> {
    const { server: as } = await authorizationServer(tokens.issuer, this.fetchFn);
    if (!as.revocationEndpoint) return false;
    const secret = await this.clientSecretFor(config, tokens).catch(() => undefined);
    const send = async (token: Redacted<string>, hint: string): Promise<void> => {
      const form = new URLSearchParams({ token: token.unwrap(), token_type_hint: hint, client_id: tokens.clientId });
      if (secret) form.set('client_secret', secret.unwrap());
      await postForm(this.fetchFn, as.revocationEndpoint!, form, `revoking the sign-in to "${server}"`);
    };
    if (tokens.refreshToken) await send(tokens.refreshToken, 'refresh_token');
    await send(tokens.accessToken, 'access_token');
    return true;
  }

  /**
   * The user calls are made as changed (another SSO sign-in, or signed out), or their organisation's
   * identity became available for the exchange: tokens are per user, so every server that uses
   * sign-in starts again with the new user's (or waits for their sign-in).
   */
  userChanged(): void {
    const user = this.deps.user();
    const exchangeable = this.deps.enterprise?.()?.idToken() !== undefined;
    const key = `${user.id}\n${user.signedIn}\n${exchangeable}`;
    if (this.lastUser === undefined || this.lastUser === key) {
      this.lastUser = key;
      return;
    }
    const sameUser = this.lastUser.split('\n')[0] === user.id;
    this.lastUser = key;
    for (const server of this.deps.servers()) {
      const config = this.deps.config(server);
      if (!usesOAuth(config)) continue;
      const s = this.states.get(server);
      // Only servers that showed they take a sign-in (asked for one, or hold tokens).
      if (!s || (!s.asked && !s.tokens)) continue;
      const waiting = !s.tokens;
      if (!sameUser) {
        s.signIn?.flow.cancel('another user signed in to Gatehouse');
        this.states.set(server, { ...(s.challenge ? { challenge: s.challenge } : {}), ...(s.asked ? { asked: true } : {}) });
      }
      // Another user's tokens, or an exchange that may work now for a server waiting for sign-in: it starts again.
      if (!sameUser || waiting) void this.deps.restart(server).catch(() => undefined);
    }
  }

  // ---- what status shows ---------------------------------------------------------------------------

  /** The sign-in state of a server that uses (or asked for) one; undefined for other servers. */
  status(server: string): UpstreamAuthStatus | undefined {
    const config = this.deps.config(server);
    if (!usesOAuth(config)) return undefined;
    const s = this.states.get(server);
    const tokens = s && s.user === this.deps.user().id ? s.tokens : undefined;
    if (!s?.asked && !tokens && !s?.signIn && !config.oauth) return undefined;
    const base: UpstreamAuthStatus = {
      state: s?.signIn ? 'signing-in' : tokens ? 'signed-in' : 'needs-sign-in',
      command: signInCommand(server),
    };
    if (tokens) {
      base.via = tokens.via;
      base.issuer = tokens.issuer;
      if (tokens.subject) base.subject = tokens.subject;
      if (tokens.scope) base.scopes = tokens.scope.split(' ');
      base.expiresAt = new Date(tokens.expiresAt).toISOString();
      base.registration = tokens.registration;
    }
    if (s?.reason) base.reason = s.reason;
    if (s?.lastSignIn) base.lastSignIn = { ...s.lastSignIn };
    return base;
  }

  /** Ends every sign-in waiting for the person (the daemon stops). */
  close(): void {
    for (const s of this.states.values()) s.signIn?.flow.cancel('Gatehouse is stopping');
  }
}

/** The `sub` of an identity assertion (the user it names), for status and the audit log. */
function subjectOfAssertion(assertion: string): string | undefined {
  try {
    const claims = JSON.parse(Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub?: unknown };
    return typeof claims.sub === 'string' && claims.sub.length <= 256 ? claims.sub : undefined;
  } catch {
    return undefined;
  }
}
