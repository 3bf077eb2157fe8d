/**
 * One sign-in to a remote server in the person's browser: authorization code with PKCE (S256), a
 * loopback redirect on 127.0.0.1 (RFC 8252), the resource indicator (RFC 8707), and the
 * authorization response's `iss` checked (RFC 9207). The SDK builds the authorization address
 * (`startAuthorization`) and redeems the code (`exchangeAuthorization`).
 *
 * What lets someone finish this sign-in lives only in the daemon's memory: the PKCE verifier (never
 * in an address; the address carries only its hash) and the expected state. The loopback listener
 * takes one response carrying this sign-in's state, compared in constant time, and refuses
 * everything else; a code delivered by anyone else fails at the token endpoint without the verifier.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exchangeAuthorization, startAuthorization, type FetchLike } from '@modelcontextprotocol/client';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import { checkResponseIssuer } from '../../core/upstream-auth/metadata.js';
import { expiresAtFrom } from '../../core/upstream-auth/timing.js';
import { tokensFrom, type RegistrationKind, type UpstreamTokens } from '../../core/upstream-auth/tokens.js';
import type { Discovered } from './discovery.js';
import { clean } from './http.js';

export interface SignInClient {
  clientId: string;
  clientSecret?: string;
  registration: RegistrationKind;
}

export interface BrowserSignInInput {
  server: string;
  /** The server's configured address, canonical. */
  url: string;
  discovered: Discovered;
  client: SignInClient;
  scope: string | undefined;
  /** 0: any free port. */
  redirectPort: number;
  timeoutMs: number;
  fetchFn: FetchLike;
  now: () => number;
}

export interface BrowserSignIn {
  /** The authorization server's page, for the person's browser. Carries the state and the PKCE challenge, never the verifier. */
  url: string;
  expiresAt: number;
  /** Settles with the tokens once the person signed in, or rejects with why not. */
  done: Promise<UpstreamTokens>;
  cancel(reason: string): void;
}

type Callback = { kind: 'ok'; code: string; iss: string | undefined } | { kind: 'error'; error: GatehouseError };

export async function startBrowserSignIn(input: BrowserSignInInput): Promise<BrowserSignIn> {
  const { server, discovered } = input;
  const state = randomBytes(32).toString('base64url');
  let settle!: (result: Callback) => void;
  const callback = new Promise<Callback>((resolve) => (settle = resolve));
  let used = false;
  let port = 0;
  const listener = createServer((req, res) => {
    const result = handleCallback(req, res, port, state, used, server);
    if (!result) return;
    used = true;
    settle(result);
  });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', (error) =>
      reject(new GatehouseError('port_in_use', `cannot listen for the sign-in's redirect on 127.0.0.1:${input.redirectPort} (${errorMessage(error)})`)),
    );
    listener.listen({ host: '127.0.0.1', port: input.redirectPort }, () => resolve());
  });
  port = (listener.address() as AddressInfo).port;
  const close = (): void => {
    listener.closeAllConnections();
    listener.close();
  };
  const redirectUri = `http://127.0.0.1:${port}/callback`;
  const clientInformation = { client_id: input.client.clientId, ...(input.client.clientSecret ? { client_secret: input.client.clientSecret } : {}) };
  let authorizationUrl: URL;
  let codeVerifier: string;
  try {
    ({ authorizationUrl, codeVerifier } = await startAuthorization(discovered.server.issuer, {
      metadata: discovered.metadata,
      clientInformation,
      redirectUrl: redirectUri,
      ...(input.scope ? { scope: input.scope } : {}),
      state,
      resource: discovered.resource.resource,
    }));
  } catch (error) {
    close();
    throw new GatehouseError('upstream_auth_failed', `cannot start the sign-in to "${server}": ${errorMessage(error)}`, { cause: error });
  }
  const expiresAt = input.now() + input.timeoutMs;
  const timer = setTimeout(
    () =>
      settle({
        kind: 'error',
        error: new GatehouseError('sign_in_timeout', `the sign-in to "${server}" was not completed within ${Math.round(input.timeoutMs / 60_000)} minutes`),
      }),
    input.timeoutMs,
  );
  timer.unref();
  const done = (async (): Promise<UpstreamTokens> => {
    try {
      const result = await callback;
      if (result.kind === 'error') throw result.error;
      const issuer = checkResponseIssuer(result.iss, discovered.server);
      if (!issuer.ok) throw new GatehouseError('upstream_auth_mixup', `the sign-in to "${server}" was refused: ${issuer.reason}`);
      let response;
      try {
        response = await exchangeAuthorization(discovered.server.issuer, {
          metadata: discovered.metadata,
          clientInformation,
          authorizationCode: result.code,
          ...(result.iss !== undefined ? { iss: result.iss } : {}),
          codeVerifier,
          redirectUri,
          resource: discovered.resource.resource,
          fetchFn: input.fetchFn,
        });
      } catch (error) {
        // The SDK's OAuthError carries the OAuth error code (invalid_grant, …) beside the server's description.
        const code = (error as { code?: unknown }).code;
        const what = typeof code === 'string' && /^[a-z_]{1,64}$/.test(code) ? `${code}: ` : '';
        throw new GatehouseError('upstream_auth_failed', `the authorization server of "${server}" refused the sign-in (${what}${clean(errorMessage(error))})`, {
          cause: error,
        });
      }
      return tokensFrom(
        response,
        {
          server,
          url: input.url,
          resource: discovered.resource.resource,
          issuer: discovered.server.issuer,
          clientId: input.client.clientId,
          registration: input.client.registration,
          via: 'browser',
          ...(input.scope ? { requested: input.scope } : {}),
          now: input.now(),
        },
        expiresAtFrom,
      );
    } finally {
      clearTimeout(timer);
      close();
    }
  })();
  // Whoever holds the sign-in reads `done`; a failure nobody awaits must not crash the daemon.
  done.catch(() => undefined);
  return {
    url: authorizationUrl.href,
    expiresAt,
    done,
    cancel: (reason) => settle({ kind: 'error', error: new GatehouseError('sign_in_cancelled', `the sign-in to "${server}" was cancelled: ${reason}`) }),
  };
}

/** One request to the loopback listener: the redirect of this sign-in, or nothing (404). */
function handleCallback(req: IncomingMessage, res: ServerResponse, port: number, state: string, used: boolean, server: string): Callback | undefined {
  const page = (status: number, text: string): void => {
    res.writeHead(status, {
      'content-type': 'text/plain; charset=utf-8',
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
    });
    res.end(text + '\n');
  };
  const host = (req.headers.host ?? '').toLowerCase();
  const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
  if (req.method !== 'GET' || url.pathname !== '/callback' || (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`)) {
    page(404, 'Not found.');
    return undefined;
  }
  if (used) {
    page(400, `This sign-in response was already used. Run \`gatehouse servers login ${server}\` again if you need to.`);
    return undefined;
  }
  const got = url.searchParams.get('state') ?? '';
  const a = Buffer.from(got);
  const b = Buffer.from(state);
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    // Not this sign-in's response (forged, replayed, or another's): refused without ending the sign-in.
    page(400, 'This response does not belong to the sign-in Gatehouse is waiting for.');
    return undefined;
  }
  const failure = url.searchParams.get('error');
  if (failure !== null) {
    // The error's description comes from whoever sent the browser here: only the bare code is shown and kept.
    const code = /^[A-Za-z0-9_.-]{1,64}$/.test(failure) ? failure : 'error';
    page(400, `The sign-in to ${server} was not completed (${code}). You can close this tab.`);
    return { kind: 'error', error: new GatehouseError('sign_in_refused', `the sign-in to "${server}" ended at the authorization server: ${code}`) };
  }
  const code = url.searchParams.get('code');
  if (!code || code.length > 4096) {
    page(400, 'The sign-in response carries no authorization code.');
    return { kind: 'error', error: new GatehouseError('sign_in_refused', `the sign-in response for "${server}" carries no authorization code`) };
  }
  page(200, `Signed in to ${server} for Gatehouse. You can close this tab.`);
  return { kind: 'ok', code, iss: url.searchParams.get('iss') ?? undefined };
}
