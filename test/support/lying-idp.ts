/**
 * An identity provider that lies, for the checks a real one never fails: it answers discovery and
 * JWKS honestly, but its token endpoint returns ID tokens with whatever claims the test sets
 * (another audience, a wrong nonce, an expired token, another issuer). Its authorization step is
 * skipped: the test delivers the redirect to Gatehouse's loopback callback itself.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';

export interface LyingIdp {
  issuer: string;
  /** Claims merged into the next ID token (a function gets the nonce the client sent). */
  idTokenClaims: (nonce: string | undefined) => Record<string, unknown>;
  stop(): Promise<void>;
}

export async function startLyingIdp(clientId: string): Promise<LyingIdp> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const nonces = new Map<string, string>();
  let issuer = '';
  const idp: LyingIdp = { issuer: '', idTokenClaims: () => ({}), stop: async () => undefined };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    const json = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === '/.well-known/openid-configuration') {
      return json({
        issuer,
        authorization_endpoint: `${issuer}/auth`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
      });
    }
    if (url.pathname === '/jwks') return json({ keys: [jwk] });
    if (url.pathname === '/auth') {
      // Remembers the nonce for the code it will hand out.
      nonces.set('the-code', url.searchParams.get('nonce') ?? '');
      res.writeHead(302, {
        location: `${url.searchParams.get('redirect_uri')}?code=the-code&state=${encodeURIComponent(url.searchParams.get('state') ?? '')}`,
      });
      return res.end();
    }
    if (url.pathname === '/token') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', async () => {
        const form = new URLSearchParams(body);
        const nonce = nonces.get(form.get('code') ?? '');
        const now = Math.floor(Date.now() / 1000);
        const claims = {
          iss: issuer,
          aud: clientId,
          sub: 'mallory',
          iat: now,
          exp: now + 300,
          ...(nonce ? { nonce } : {}),
          groups: ['admins'],
          ...idp.idTokenClaims(nonce),
        };
        const idToken = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(privateKey);
        json({ access_token: 'lying-access-token', token_type: 'Bearer', expires_in: 300, refresh_token: 'lying-refresh', id_token: idToken });
      });
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  idp.issuer = issuer;
  idp.stop = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return idp;
}
