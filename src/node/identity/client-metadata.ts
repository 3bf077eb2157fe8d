/**
 * Client ID Metadata Documents (the MCP authorization spec's preferred client registration): an
 * HTTP client names itself with an https address, and Gatehouse's authorization server fetches the
 * client's metadata from there. That address is chosen by whoever sends the authorization request,
 * so the fetch is an outbound request an attacker aims: it is guarded.
 *
 * - HTTPS only (plain HTTP to loopback only where tests switch it on);
 * - no private, loopback, link-local or otherwise special address, checked on the resolved
 *   addresses of every connection (so DNS cannot point a public name inward) and on address
 *   literals, unless the configuration allows private addresses (an intranet publishing documents);
 * - a time limit for the whole fetch, a size limit on the answer, at most three redirects, each one
 *   checked like the first;
 * - the document must be a JSON object naming itself (`client_id` equal to its address), with
 *   acceptable redirect addresses and no client secret.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { GatehouseError, errorMessage } from '../../common/errors.js';

export interface ClientMetadataPolicy {
  /** Tests only: plain HTTP to 127.0.0.1 / localhost / ::1 (and those addresses) is allowed. */
  allowLoopbackHttp: boolean;
  /** Private network addresses may be fetched (`listen.http.clientMetadata.allowPrivateAddresses`). */
  allowPrivateAddresses: boolean;
  timeoutMs: number;
  maxBytes: number;
  maxRedirects: number;
}

export const DEFAULT_METADATA_POLICY: ClientMetadataPolicy = {
  allowLoopbackHttp: false,
  allowPrivateAddresses: false,
  timeoutMs: 5000,
  maxBytes: 16 * 1024,
  maxRedirects: 3,
};

export interface ClientMetadataDocument {
  clientId: string;
  clientName?: string;
  redirectUris: string[];
}

/** Addresses never fetched unless private addresses are allowed (RFC 6890 special-purpose ranges). */
const SPECIAL = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  SPECIAL.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['::ffff:0:0', 96],
  ['64:ff9b::', 96],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  SPECIAL.addSubnet(net, bits, 'ipv6');
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** Why an address may not be fetched, or undefined when it may. */
export function addressProblem(address: string, policy: Pick<ClientMetadataPolicy, 'allowLoopbackHttp' | 'allowPrivateAddresses'>): string | undefined {
  const family = isIP(address);
  if (family === 0) return `${address} is not an IP address`;
  let v = address;
  // An IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) v = mapped[1]!;
  const type = isIP(v) === 4 ? 'ipv4' : 'ipv6';
  if (policy.allowLoopbackHttp && LOOPBACK.check(v, type)) return undefined;
  if (policy.allowPrivateAddresses) return undefined;
  return SPECIAL.check(v, type) ? `${address} is a private or special-purpose address` : undefined;
}

function refused(url: string, why: string): GatehouseError {
  return new GatehouseError('client_metadata_refused', `the client metadata document at ${clip(url)} was not fetched: ${why}`);
}

function clip(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

const LOOPBACK_NAMES = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Whether a `client_id` is an address Gatehouse may treat as a metadata document (before any fetch). */
export function metadataUrlProblem(value: string, policy: Pick<ClientMetadataPolicy, 'allowLoopbackHttp'>): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'it is not an address';
  }
  if (value.length > 2048) return 'the address is too long';
  if (url.username || url.password) return 'the address carries credentials';
  if (url.hash || value.includes('#')) return 'the address has a fragment';
  if (url.pathname === '/' || url.pathname === '') return 'the address has no path';
  if (/(^|\/)\.\.?(\/|$)/.test(url.pathname)) return 'the address has dot segments';
  const loopbackHttp = policy.allowLoopbackHttp && url.protocol === 'http:' && LOOPBACK_NAMES.has(url.hostname);
  if (url.protocol !== 'https:' && !loopbackHttp) return 'only https:// addresses are fetched';
  return undefined;
}

/** Fetches and checks a client's metadata document. Every refusal is a `client_metadata_refused` error saying why. */
export async function fetchClientMetadata(
  clientId: string,
  policy: ClientMetadataPolicy,
  acceptableRedirect: (uri: string) => boolean,
  resolve: typeof dnsLookup = dnsLookup,
): Promise<ClientMetadataDocument> {
  const problem = metadataUrlProblem(clientId, policy);
  if (problem) throw refused(clientId, problem);
  const deadline = Date.now() + policy.timeoutMs;
  let url = new URL(clientId);
  for (let hop = 0; ; hop++) {
    const response = await get(url, policy, deadline, resolve);
    if (response.status >= 300 && response.status < 400) {
      const location = response.location;
      if (!location) throw refused(clientId, `a redirect (HTTP ${response.status}) without a location`);
      if (hop >= policy.maxRedirects) throw refused(clientId, `more than ${policy.maxRedirects} redirects`);
      const next = new URL(location, url);
      const again = metadataUrlProblem(next.href, policy);
      if (again) throw refused(clientId, `it redirects to ${clip(next.href)}, where ${again}`);
      url = next;
      continue;
    }
    if (response.status !== 200) throw refused(clientId, `the server answered HTTP ${response.status}`);
    if (!/^application\/([a-z0-9.+-]+\+)?json\b/i.test(response.contentType)) throw refused(clientId, 'the answer is not JSON');
    let doc: unknown;
    try {
      doc = JSON.parse(response.body.toString('utf8'));
    } catch {
      throw refused(clientId, 'the answer is not valid JSON');
    }
    return checkDocument(doc, clientId, acceptableRedirect);
  }
}

function checkDocument(doc: unknown, clientId: string, acceptableRedirect: (uri: string) => boolean): ClientMetadataDocument {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw refused(clientId, 'the document is not a JSON object');
  const d = doc as Record<string, unknown>;
  if (d.client_id !== clientId) throw refused(clientId, 'the document names another client_id than its own address');
  if ('client_secret' in d || 'client_secret_expires_at' in d)
    throw refused(clientId, 'the document carries a client secret, which a public document must not');
  const method = d.token_endpoint_auth_method ?? 'none';
  if (method !== 'none') throw refused(clientId, `Gatehouse accepts public clients only (token_endpoint_auth_method "none"), not "${clip(String(method))}"`);
  const uris = d.redirect_uris;
  if (!Array.isArray(uris) || uris.length === 0 || uris.length > 10 || !uris.every((u) => typeof u === 'string' && u.length <= 2000 && acceptableRedirect(u))) {
    throw refused(clientId, 'its redirect_uris must be http://127.0.0.1 (any port), https:// or private-use scheme addresses without fragments');
  }
  const name = typeof d.client_name === 'string' ? d.client_name.slice(0, 200) : undefined;
  return { clientId, redirectUris: uris as string[], ...(name ? { clientName: name } : {}) };
}

interface Answer {
  status: number;
  location: string | undefined;
  contentType: string;
  body: Buffer;
}

/** One GET, connecting only to addresses the policy allows (checked after resolution), within the deadline and size limit. */
function get(url: URL, policy: ClientMetadataPolicy, deadline: number, resolve: typeof dnsLookup): Promise<Answer> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host)) {
    const problem = addressProblem(host, policy);
    if (problem) return Promise.reject(refused(url.href, problem));
  }
  // Every address a name resolves to is checked, and the connection goes to one of those checked addresses.
  const lookup: LookupFunction = (hostname, options, callback) => {
    resolve(hostname, { all: true, family: options.family ?? 0 }, (error, addresses: LookupAddress[]) => {
      if (error) return (callback as (e: Error | null) => void)(error);
      const bad = addresses.map((a) => addressProblem(a.address, policy)).find((p) => p !== undefined);
      if (bad || addresses.length === 0) return (callback as (e: Error | null) => void)(refused(url.href, bad ?? `${hostname} resolves to no address`));
      if (options.all) return (callback as (e: null, a: LookupAddress[]) => void)(null, addresses);
      (callback as (e: null, a: string, f: number) => void)(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
  const remaining = deadline - Date.now();
  if (remaining <= 0) return Promise.reject(refused(url.href, `no answer within ${policy.timeoutMs} ms`));
  return new Promise<Answer>((resolvePromise, reject) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(
      url,
      { method: 'GET', lookup, headers: { accept: 'application/json', 'user-agent': 'Gatehouse' }, timeout: remaining },
      (res: IncomingMessage) => {
        const declared = Number(res.headers['content-length'] ?? NaN);
        if (Number.isFinite(declared) && declared > policy.maxBytes) {
          req.destroy();
          reject(refused(url.href, `the answer is ${declared} bytes, over the ${policy.maxBytes}-byte limit`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > policy.maxBytes) {
            req.destroy();
            reject(refused(url.href, `the answer is over the ${policy.maxBytes}-byte limit`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () =>
          resolvePromise({
            status: res.statusCode ?? 0,
            location: typeof res.headers.location === 'string' ? res.headers.location : undefined,
            contentType: String(res.headers['content-type'] ?? ''),
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', (error) => reject(refused(url.href, errorMessage(error))));
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      reject(refused(url.href, `no answer within ${policy.timeoutMs} ms`));
    }, remaining);
    req.on('close', () => clearTimeout(timer));
    req.on('timeout', () => {
      req.destroy();
      reject(refused(url.href, `no answer within ${policy.timeoutMs} ms`));
    });
    req.on('error', (error) => reject(error instanceof GatehouseError ? error : refused(url.href, errorMessage(error))));
    req.end();
  });
}

/** A small cache of fetched documents, so that one authorization does not fetch its client's document twice. */
export class ClientMetadataCache {
  private readonly entries = new Map<string, { doc: ClientMetadataDocument; until: number }>();

  constructor(
    private readonly ttlMs = 5 * 60_000,
    private readonly max = 50,
  ) {}

  get(clientId: string, now = Date.now()): ClientMetadataDocument | undefined {
    const hit = this.entries.get(clientId);
    if (!hit || hit.until < now) {
      this.entries.delete(clientId);
      return undefined;
    }
    return hit.doc;
  }

  set(doc: ClientMetadataDocument, now = Date.now()): void {
    this.entries.delete(doc.clientId);
    this.entries.set(doc.clientId, { doc, until: now + this.ttlMs });
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }
}
