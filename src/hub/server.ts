/**
 * `gatehouse hub`: the central audit store as a stateless HTTP service over PostgreSQL. Any number
 * of instances can run behind a load balancer; everything they share is in the database.
 *
 * Authentication:
 * - devices sign every request with their enrolled Ed25519 key (`Authorization: Gatehouse-Device`),
 *   within ±5 minutes of the hub's clock;
 * - enrolment needs an enrolment secret, admin requests an admin token (`Authorization: Bearer`);
 *   the hub holds only their SHA-256 hashes (from its config file or environment) and compares
 *   hashes in constant time;
 * - `/metrics` needs a metrics token (scrape-only, so the scraper's credential cannot read or
 *   change anything else) or an admin token; with neither configured it is refused.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { createSecureContext } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { GatehouseError, errorMessage } from '../common/errors.js';
import { contentSecurityPolicy } from '../common/csp.js';
import { MAX_TIMELINE_BUCKETS } from '../common/fleet.js';
import { deviceRequestPayload, enrolmentPayload, isDeviceId, publicKeyFromRaw, verifySignature } from '../core/audit/event.js';
import { FILTER_KEYS, parseAuditFilter } from '../core/audit/filter.js';
import { MAX_BATCH_BYTES, ProtocolError, parseBatch, parseDeviceAuthorization, type HubErrorBody } from '../core/audit/protocol.js';
import type { Logger } from '../core/ports.js';
import { baselines } from '../core/catalog/baselines.js';
import { HubMetrics, routeOf } from './metrics.js';
import { SiemForwarder, type SiemConfig } from './otlp.js';
import { HubStore, type DeviceRow } from './store.js';

export interface HubConfig {
  databaseUrl: string;
  host: string;
  port: number;
  /** SHA-256 (hex) of each admin token. */
  adminTokenHashes: string[];
  /** SHA-256 (hex) of each enrolment secret. */
  enrolmentSecretHashes: string[];
  /** SHA-256 (hex) of each metrics token: it can scrape `/metrics` and nothing else. */
  metricsTokenHashes?: string[];
  siem?: SiemConfig;
  /** How far a device's request time may be from the hub's (default 5 minutes). */
  clockSkewMs?: number;
  /** How often the SIEM forwarder looks for new events (default 1000 ms). */
  forwardIntervalMs?: number;
  maxBundleBytes?: number;
  /** Serve admin queries only (for an instance pointed at a read replica): no schema changes, no ingest, no SIEM. */
  readOnly?: boolean;
  /** A second connection (a read replica, or a read-only role) for the admin queries; ingest stays on `databaseUrl`. */
  readDatabaseUrl?: string;
  /** Serve HTTPS with this certificate chain and key (PEM files), instead of HTTP for a TLS proxy in front. */
  tls?: { certFile: string; keyFile: string };
  /** The built fleet view (`dist/fleet`); found next to the hub's code when not given. */
  fleetDir?: string;
}

export interface RunningHub {
  url: string;
  store: HubStore;
  metrics: HubMetrics;
  close(): Promise<void>;
}

const MAX_SMALL_BODY = 64 * 1024;

export async function startHub(config: HubConfig, logger: Logger): Promise<RunningHub> {
  if (config.adminTokenHashes.length === 0) logger.log('warn', 'hub.no_admin_token', { note: 'no admin token is configured: admin queries are refused' });
  if (config.enrolmentSecretHashes.length === 0)
    logger.log('warn', 'hub.no_enrolment_secret', { note: 'no enrolment secret is configured: devices cannot enrol' });
  const tls = config.tls ? loadTls(config.tls) : undefined;
  const store = new HubStore({
    connectionString: config.databaseUrl,
    readConnectionString: config.readDatabaseUrl,
    siem: config.siem !== undefined && !config.readOnly,
  });
  try {
    if (config.readOnly) await store.pool.query('SELECT 1 FROM devices LIMIT 1');
    else await store.migrate();
    if (store.readPool !== store.pool) await store.readPool.query('SELECT 1 FROM events LIMIT 1');
  } catch (error) {
    await store.close().catch(() => undefined);
    throw new GatehouseError('hub_database', `cannot prepare the hub database: ${errorMessage(error)}`, { cause: error });
  }
  const skew = config.clockSkewMs ?? 300_000;
  const metrics = new HubMetrics({ store, pools: store.readPool === store.pool ? { primary: store.pool } : { primary: store.pool, read: store.readPool } });

  const listener: RequestListener = (req, res) => {
    res.once('finish', () => metrics.request(routeOf((req.url ?? '/').split('?')[0]!), res.statusCode));
    handle(req, res).catch((error: unknown) => {
      if (error instanceof ProtocolError) return sendError(res, error.status, error.code, error.message, error.seq);
      logger.log('error', 'hub.request_failed', { method: req.method, path: req.url?.split('?')[0], error: errorMessage(error) });
      sendError(res, 503, 'hub_unavailable', 'the hub could not complete the request; try again');
    });
  };
  const server: Server = tls ? createTlsServer({ ...tls, minVersion: 'TLSv1.2' }, listener) : createServer(listener);
  server.requestTimeout = 60_000;
  server.headersTimeout = 20_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://hub');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    let m: RegExpExecArray | null;

    if (method === 'GET' && path === '/healthz') return sendJson(res, 200, { ok: true, readOnly: config.readOnly === true });
    if (path === '/fleet' || path.startsWith('/fleet/')) {
      if (method !== 'GET' && method !== 'HEAD') throw new ProtocolError(405, 'method_not_allowed', 'the fleet view answers GET only');
      if (path === '/fleet') {
        res.writeHead(308, { location: '/fleet/' });
        return void res.end();
      }
      return serveFleetFile(res, path.slice('/fleet/'.length), method === 'HEAD');
    }
    if (path === '/metrics') {
      if (method !== 'GET') throw new ProtocolError(405, 'method_not_allowed', '/metrics answers GET only');
      if (!bearerMatches(req, [...(config.metricsTokenHashes ?? []), ...config.adminTokenHashes])) {
        throw new ProtocolError(401, 'unauthorized', '/metrics needs a metrics token or an admin token (Authorization: Bearer)');
      }
      const { contentType, body } = await metrics.exposition();
      res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      return void res.end(body);
    }
    if (config.readOnly && !(method === 'GET' && path.startsWith('/v1/admin/'))) {
      throw new ProtocolError(503, 'read_only', 'this hub instance serves admin queries only (--read-only); send devices to the primary instances');
    }

    if (method === 'POST' && path === '/v1/enrol') {
      if (!bearerMatches(req, config.enrolmentSecretHashes))
        throw new ProtocolError(401, 'unauthorized', 'enrolment needs a valid enrolment secret (Authorization: Bearer)');
      const body = parseJson(await readBody(req, MAX_SMALL_BODY));
      const { device, publicKey, at, host, proof } = body as Record<string, unknown>;
      if (!isDeviceId(device)) throw new ProtocolError(400, 'malformed_enrolment', 'device is not a device id');
      if (typeof publicKey !== 'string' || typeof at !== 'string' || typeof host !== 'string' || typeof proof !== 'string') {
        throw new ProtocolError(400, 'malformed_enrolment', 'an enrolment needs device, publicKey, at, host and proof');
      }
      let key;
      try {
        key = publicKeyFromRaw(publicKey);
      } catch (error) {
        throw new ProtocolError(400, 'malformed_enrolment', errorMessage(error));
      }
      if (Math.abs(Date.now() - Date.parse(at)) > skew) throw new ProtocolError(401, 'stale_request', "the enrolment is dated too far from the hub's clock");
      if (!verifySignature(key, enrolmentPayload({ device: device as string, publicKey, at, host }), proof)) {
        throw new ProtocolError(401, 'bad_proof', 'the enrolment is not signed by the key it enrols');
      }
      const { created, row } = await store.enrol(device as string, publicKey, host);
      logger.log('info', 'hub.enrolled', { device, keyId: row.keyId, host, created });
      return sendJson(res, created ? 201 : 200, HubStore.deviceState(row));
    }

    if ((m = /^\/v1\/devices\/([^/]+)$/.exec(path)) && method === 'GET') {
      const device = await authenticateDevice(req, m[1]!, path + url.search, '');
      return sendJson(res, 200, HubStore.deviceState(device));
    }

    if ((m = /^\/v1\/devices\/([^/]+)\/events$/.exec(path)) && method === 'POST') {
      const started = performance.now();
      const raw = await readBody(req, MAX_BATCH_BYTES);
      const device = await authenticateDevice(req, m[1]!, path + url.search, raw);
      const batch = parseBatch(parseJson(raw), device.id);
      let result;
      try {
        result = await store.ingest(batch, device.publicKey);
      } catch (error) {
        metrics.batch('failed', (performance.now() - started) / 1000);
        throw error;
      }
      metrics.batch(result.refused ? 'refused' : 'stored', (performance.now() - started) / 1000, { stored: result.accepted, duplicates: result.duplicates });
      if (result.flags.length > 0) logger.log('warn', 'hub.integrity_flags', { device: device.id, flags: result.flags });
      if (result.refused) {
        const body: HubErrorBody & { acked: number; flags: unknown } = {
          error: { code: result.refused.code, message: result.refused.message, seq: result.refused.seq },
          acked: result.acked,
          flags: result.flags,
        };
        return sendJson(res, 422, body);
      }
      const { refused: _refused, ...response } = result;
      return sendJson(res, 200, response);
    }

    if (method === 'GET' && path === '/v1/bundle') {
      const auth = parseDeviceAuthorization(req.headers.authorization);
      if (!auth) requireAdmin(req);
      else await authenticateDevice(req, auth.device, path + url.search, '');
      const bundle = await store.currentBundle();
      if (!bundle) throw new ProtocolError(404, 'no_bundle', 'no policy bundle has been published');
      if (req.headers['if-none-match'] === bundle.etag) {
        res.writeHead(304, { etag: bundle.etag });
        return void res.end();
      }
      res.writeHead(200, {
        'content-type': bundle.contentType,
        etag: bundle.etag,
        'content-length': bundle.bytes.length,
        'last-modified': new Date(bundle.publishedAt).toUTCString(),
      });
      return void res.end(bundle.bytes);
    }

    if (path.startsWith('/v1/admin/')) {
      requireAdmin(req);
      if (method === 'GET' && path === '/v1/admin/events') {
        const input: Record<string, string> = {};
        for (const key of FILTER_KEYS) {
          const value = url.searchParams.get(key);
          if (value !== null) input[key] = value;
        }
        for (const key of url.searchParams.keys()) {
          if (!(FILTER_KEYS as readonly string[]).includes(key))
            throw new ProtocolError(400, 'unknown_filter', `unknown filter "${key}"; filters are ${FILTER_KEYS.join(', ')}`);
        }
        let filter;
        try {
          filter = parseAuditFilter(input, Date.now());
        } catch (error) {
          throw new ProtocolError(400, 'bad_filter', errorMessage(error).replace(/--/g, ''));
        }
        return sendJson(res, 200, { events: await store.query(filter) });
      }
      if (method === 'GET' && path === '/v1/admin/devices') return sendJson(res, 200, { devices: await store.devices() });
      if (method === 'GET' && path === '/v1/admin/fleet') {
        onlyParams(url, []);
        return sendJson(res, 200, { devices: await store.fleet(), at: new Date().toISOString() });
      }
      if (method === 'GET' && path === '/v1/admin/timeline') {
        onlyParams(url, ['from', 'to', 'buckets']);
        const now = Date.now();
        let range;
        try {
          range = parseAuditFilter({ from: url.searchParams.get('from') ?? '24h', to: url.searchParams.get('to') ?? undefined }, now);
        } catch (error) {
          throw new ProtocolError(400, 'bad_filter', errorMessage(error).replace(/--/g, ''));
        }
        const buckets = Number(url.searchParams.get('buckets') ?? 48);
        if (!Number.isInteger(buckets) || buckets < 1 || buckets > MAX_TIMELINE_BUCKETS)
          throw new ProtocolError(400, 'bad_filter', `buckets takes a whole number from 1 to ${MAX_TIMELINE_BUCKETS}`);
        const to = range.to ? new Date(range.to) : new Date(now);
        const from = new Date(range.from!);
        if (from >= to) throw new ProtocolError(400, 'bad_filter', 'from must be before to');
        return sendJson(res, 200, await store.timeline(from, to, buckets));
      }
      if (method === 'GET' && path === '/v1/admin/baselines') {
        const server = url.searchParams.get('server') ?? undefined;
        if (server !== undefined && !/^[a-z0-9-]{1,32}$/.test(server)) throw new ProtocolError(400, 'bad_filter', 'server must be a server name');
        return sendJson(res, 200, { baselines: baselines(await store.toolDefinitions(server)) });
      }
      if (method === 'GET' && path === '/v1/admin/shadow-servers') return sendJson(res, 200, { shadowServers: await store.shadowServers() });
      if (method === 'GET' && path === '/v1/admin/flags') {
        return sendJson(res, 200, { flags: await store.flags(url.searchParams.get('device') ?? undefined, url.searchParams.get('open') === 'true') });
      }
      if ((m = /^\/v1\/admin\/devices\/([^/]+)\/revoke$/.exec(path)) && method === 'POST') {
        if (!(await store.revoke(m[1]!))) throw new ProtocolError(404, 'unknown_device', `no device ${m[1]} is enrolled`);
        logger.log('warn', 'hub.device_revoked', { device: m[1] });
        return sendJson(res, 200, { revoked: m[1] });
      }
      if (method === 'PUT' && path === '/v1/admin/bundle') {
        const bytes = await readBody(req, config.maxBundleBytes ?? 10 * 1024 * 1024);
        if (bytes.length === 0) throw new ProtocolError(400, 'empty_bundle', 'the bundle is empty');
        const etag = await store.publishBundle(bytes, req.headers['content-type'] ?? 'application/octet-stream');
        logger.log('info', 'hub.bundle_published', { etag, bytes: bytes.length });
        return sendJson(res, 201, { etag });
      }
    }
    throw new ProtocolError(404, 'not_found', `no route for ${method} ${path}`);
  }

  async function authenticateDevice(req: IncomingMessage, pathDevice: string, pathAndQuery: string, body: string | Buffer): Promise<DeviceRow> {
    const auth = parseDeviceAuthorization(req.headers.authorization);
    if (!auth) throw new ProtocolError(401, 'unauthorized', 'device requests need an Authorization: Gatehouse-Device header');
    if (auth.device !== decodeURIComponent(pathDevice))
      throw new ProtocolError(403, 'wrong_device', 'the request is signed by another device than the one it names');
    if (Math.abs(Date.now() - auth.ts) > skew)
      throw new ProtocolError(401, 'stale_request', `the request is dated ${new Date(auth.ts).toISOString()}, more than ${skew / 1000} s from the hub's clock`);
    const device = await store.device(auth.device);
    if (!device) throw new ProtocolError(404, 'unknown_device', `device ${auth.device} is not enrolled with this hub; enrol it with \`gatehouse audit enrol\``);
    if (device.status === 'revoked') throw new ProtocolError(403, 'device_revoked', `device ${auth.device} was revoked by an admin`);
    const payload = deviceRequestPayload(req.method ?? 'GET', pathAndQuery, auth.ts, body);
    if (!verifySignature(publicKeyFromRaw(device.publicKey), payload, auth.sig)) {
      throw new ProtocolError(401, 'bad_signature', `the request's signature does not verify with device ${auth.device}'s enrolled key`);
    }
    return device;
  }

  const fleetDir = config.fleetDir ?? findFleetDir();

  /** The fleet view's files: its page and its hashed assets, nothing else; the data comes from the admin API. */
  function serveFleetFile(res: ServerResponse, name: string, headOnly: boolean): void {
    const file = name === '' || name === 'index.html' ? 'index.html' : /^assets\/[A-Za-z0-9._-]+$/.test(name) && !name.includes('..') ? name : undefined;
    if (!file) throw new ProtocolError(404, 'not_found', `the fleet view has no file ${name}`);
    if (!fleetDir) throw new ProtocolError(404, 'fleet_not_built', 'the fleet view is not built (npm run build)');
    let bytes: Buffer;
    try {
      bytes = readFileSync(join(fleetDir, file));
    } catch {
      throw new ProtocolError(404, 'not_found', `the fleet view has no file ${name}`);
    }
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': bytes.length,
      // The page itself may change with the hub; its assets have content hashes in their names.
      'cache-control': file === 'index.html' ? 'no-store' : 'public, max-age=31536000, immutable',
      'content-security-policy': contentSecurityPolicy(),
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cross-origin-opener-policy': 'same-origin',
    });
    res.end(headOnly ? undefined : bytes);
  }

  function requireAdmin(req: IncomingMessage): void {
    if (!bearerMatches(req, config.adminTokenHashes))
      throw new ProtocolError(401, 'unauthorized', 'admin requests need a valid admin token (Authorization: Bearer)');
  }

  // The SIEM forwarder: one loop per instance; the outbox's row locks share the work.
  let forwarding = true;
  let forwardTimer: NodeJS.Timeout | undefined;
  let forwardFailures = 0;
  const siem = config.siem && !config.readOnly ? new SiemForwarder(config.siem) : undefined;
  const forwardOnce = async (): Promise<void> => {
    if (!forwarding || !siem) return;
    let sent = 0;
    try {
      do {
        sent = await store.forward(500, (rows, hosts) => siem.send(rows, hosts));
        metrics.forwarded(sent);
      } while (sent === 500 && forwarding);
      forwardFailures = 0;
    } catch (error) {
      forwardFailures++;
      metrics.forwardFailed();
      logger.log('warn', 'hub.siem_failed', { error: errorMessage(error), failures: forwardFailures });
    }
    if (forwarding) {
      const delay =
        forwardFailures === 0 ? (config.forwardIntervalMs ?? 1000) : Math.min(60_000, (config.forwardIntervalMs ?? 1000) * 2 ** Math.min(forwardFailures, 6));
      forwardTimer = setTimeout(() => void forwardOnce(), delay);
    }
  };
  let forwardLoop: Promise<void> | undefined;
  if (siem) forwardLoop = forwardOnce();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${tls ? 'https' : 'http'}://${host}:${address.port}`;
  logger.log('info', 'hub.ready', { url, siem: config.siem?.endpoint });

  return {
    url,
    store,
    metrics,
    close: async () => {
      forwarding = false;
      if (forwardTimer) clearTimeout(forwardTimer);
      await forwardLoop;
      await siem?.shutdown().catch(() => undefined);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
    },
  };
}

/** The certificate and key, read and checked at start: a bad pair stops the hub with a clear error, never a TLS failure per client. */
function loadTls(files: { certFile: string; keyFile: string }): { cert: Buffer; key: Buffer } {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(files.certFile);
    key = readFileSync(files.keyFile);
  } catch (error) {
    throw new GatehouseError('hub_tls', `cannot read the TLS certificate or key: ${errorMessage(error)}`, { cause: error });
  }
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    throw new GatehouseError('hub_tls', `${files.certFile} and ${files.keyFile} are not a PEM certificate chain and its private key: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  return { cert, key };
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function bearerMatches(req: IncomingMessage, hashes: string[]): boolean {
  const header = req.headers.authorization;
  if (!header || !header.startsWith('Bearer ')) return false;
  const presented = Buffer.from(sha256Hex(header.slice(7).trim()), 'hex');
  let ok = false;
  for (const hash of hashes) {
    const expected = Buffer.from(hash, 'hex');
    if (expected.length === presented.length && timingSafeEqual(expected, presented)) ok = true;
  }
  return ok;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.woff2': 'font/woff2',
};

/** dist/fleet, from the compiled hub (dist/src/hub) or from its sources (src/hub, in tests). */
function findFleetDir(): string | undefined {
  const here = fileURLToPath(new URL('.', import.meta.url));
  return [join(here, '..', '..', 'fleet'), join(here, '..', '..', 'dist', 'fleet')].find((dir) => existsSync(join(dir, 'index.html')));
}

/** Refuses query parameters a route does not take, so a typo is an error, not a silently ignored filter. */
function onlyParams(url: URL, allowed: string[]): void {
  for (const key of url.searchParams.keys()) {
    if (!allowed.includes(key))
      throw new ProtocolError(400, 'unknown_filter', `unknown parameter "${key}"${allowed.length ? `; this route takes ${allowed.join(', ')}` : ''}`);
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      req.resume();
      return reject(new ProtocolError(413, 'too_large', `the request body is ${declared} bytes; the limit is ${limit}`));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.destroy();
        reject(new ProtocolError(413, 'too_large', `the request body is larger than ${limit} bytes`));
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (error) {
    throw new ProtocolError(400, 'malformed_json', `the request body is not JSON: ${errorMessage(error)}`);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, code: string, message: string, seq?: number): void {
  if (res.headersSent) return void res.end();
  const body: HubErrorBody = { error: { code, message, ...(seq !== undefined ? { seq } : {}) } };
  sendJson(res, status, body);
}
