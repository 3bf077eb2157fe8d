/**
 * `gatehouse servers login NAME` and `gatehouse servers logout NAME`: the user's sign-in to a remote
 * server that is an OAuth-protected resource (docs/remote-servers.md). The sign-in runs in the
 * daemon (which receives the browser's redirect and keeps the tokens in the key store); this command
 * asks it to begin, opens the authorization server's page in the browser (or prints its address),
 * and waits until the person has signed in and the server has started.
 */
import { GatehouseError } from '../common/errors.js';
import { clientMetadataDocument } from '../core/upstream-auth/registration.js';
import type { DaemonStatus, ServerStatus } from '../common/status.js';
import { callControl } from '../node/control/control-client.js';
import { openBrowser } from '../node/human/open-browser.js';
import type { GatehousePaths } from '../node/paths.js';

export interface UpstreamAuthIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

async function serverStatus(paths: GatehousePaths, name: string): Promise<ServerStatus | undefined> {
  return ((await callControl(paths.controlSocketPath, 'status', {}, 5000)) as DaemonStatus).servers.find((s) => s.name === name);
}

export async function serversLogin(
  name: string,
  options: { browser: boolean; timeoutMs?: number },
  io: UpstreamAuthIo,
  paths: GatehousePaths,
): Promise<number> {
  const before = (await serverStatus(paths, name))?.auth?.lastSignIn?.at;
  const { url, expiresAt } = (await callControl(paths.controlSocketPath, 'servers.login', { name }, 60_000)) as { url: string; expiresAt: string };
  const opened = options.browser && (await openBrowser(url, io.env));
  io.err(
    opened
      ? `Your browser was opened to sign in to ${name}. If it did not open, visit:\n  ${url}\n`
      : `Open this address in a browser on this machine to sign in to ${name}:\n  ${url}\n`,
  );
  const deadline = Math.min(Date.parse(expiresAt), Date.now() + (options.timeoutMs ?? 10 * 60_000));
  for (;;) {
    const server = await serverStatus(paths, name);
    const last = server?.auth?.lastSignIn;
    if (last && last.at !== before && server?.auth?.state !== 'signing-in') {
      if (!last.ok) throw new GatehouseError('sign_in_failed', `the sign-in to ${name} failed: ${last.reason ?? 'no reason given'}`);
      return reportSignedIn(name, paths, io);
    }
    if (Date.now() > deadline)
      throw new GatehouseError('sign_in_timeout', `the sign-in to ${name} was not completed in time; run \`gatehouse servers login ${name}\` again`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** After a sign-in: who the server knows the user as, and whether it started with it. */
async function reportSignedIn(name: string, paths: GatehousePaths, io: UpstreamAuthIo): Promise<number> {
  const deadline = Date.now() + 30_000;
  let server = await serverStatus(paths, name);
  while (server && server.state !== 'ready' && server.state !== 'needs-sign-in' && server.state !== 'backing-off' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    server = await serverStatus(paths, name);
  }
  const auth = server?.auth;
  const who = auth?.subject ? ` as ${auth.subject}` : '';
  io.out(`signed in to ${name}${who}${auth?.issuer ? ` at ${auth.issuer}` : ''}${auth?.scopes?.length ? ` (scopes: ${auth.scopes.join(' ')})` : ''}\n`);
  if (server?.state === 'ready') {
    io.out(`${name}: ready, ${server.counts.tools} tools\n`);
    return 0;
  }
  io.err(`${name} did not start with the sign-in: ${server?.lastError ?? server?.state ?? 'unknown'}\n`);
  return 1;
}

export async function serversLogout(name: string, io: UpstreamAuthIo, paths: GatehousePaths): Promise<number> {
  const result = (await callControl(paths.controlSocketPath, 'servers.logout', { name }, 60_000)) as { revoked: boolean; held: boolean };
  if (!result.held) io.out(`you were not signed in to ${name}\n`);
  else
    io.out(
      `signed out of ${name}${result.revoked ? ' (its authorization server revoked the tokens)' : ' (its authorization server offers no revocation; the tokens are forgotten here)'}\n`,
    );
  return 0;
}

/**
 * `gatehouse servers client-document URL`: the Client ID Metadata Document an organisation publishes
 * at URL for its desktops, to set as `oauth.clientMetadataUrl` (docs/remote-servers.md). The address
 * is the client's id, so it must be an https URL with a path, and no fragment or credentials.
 */
export function clientDocumentCommand(url: string, io: Pick<UpstreamAuthIo, 'out'>): number {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new GatehouseError('usage', `"${url.slice(0, 200)}" is not a URL; give the https address where the document will be published`);
  }
  if (parsed.protocol !== 'https:') throw new GatehouseError('usage', 'a client metadata document is published at an https address');
  if (parsed.pathname === '/' || parsed.pathname === '')
    throw new GatehouseError('usage', 'the address needs a path (e.g. https://it.example.com/gatehouse/client.json)');
  if (parsed.hash || parsed.username || parsed.password) throw new GatehouseError('usage', 'the address may carry no fragment and no user name or password');
  if (url.length > 2048) throw new GatehouseError('usage', 'the address is longer than 2,048 characters');
  io.out(JSON.stringify(clientMetadataDocument(url), null, 2) + '\n');
  return 0;
}
