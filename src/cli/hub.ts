/**
 * `gatehouse hub`: runs the central store, makes admin tokens and enrolment secrets, and publishes
 * a signed policy bundle. Secrets never come from the command line: the database password from
 * PGPASSWORD or ~/.pgpass (or a URL in GATEHOUSE_HUB_DATABASE_URL), token hashes from the config
 * file or the environment, tokens from files or the environment.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { untilStopSignal } from './args.js';
import { GatehouseError, errorMessage } from '../common/errors.js';
import type { Logger } from '../core/ports.js';
import { sha256Hex, startHub, type HubConfig } from '../hub/server.js';
import type { CliIo } from './audit.js';

export const HUB_HELP = `Usage:
  gatehouse hub [--database URL] [--listen HOST:PORT] [--config FILE] [--read-only]
                [--read-database URL] [--tls-cert FILE --tls-key FILE]
  gatehouse hub token                      a new random token and the SHA-256 to configure
  gatehouse hub publish FILE --url HUB     publish a signed policy bundle (admin token:
                                           GATEHOUSE_HUB_ADMIN_TOKEN or --token-file FILE)
  gatehouse hub baselines --url HUB [--server NAME]
                                           tool definitions per server and version across the
                                           fleet; where devices disagree first (admin token)
  gatehouse hub shadow --url HUB           servers devices' clients run outside Gatehouse

Runs the central audit store over PostgreSQL (stateless: run several behind a load balancer).
--database   postgres://user@host:5432/db, without a password (use PGPASSWORD or ~/.pgpass);
             or set GATEHOUSE_HUB_DATABASE_URL, which may include one.
--listen     default 127.0.0.1:8443.
--tls-cert, --tls-key
             serve HTTPS with this PEM certificate chain and key (or terminate TLS in front:
             a load balancer or a reverse proxy). Restart to load a renewed certificate.
--read-only  serve admin queries only, from a read replica (no schema changes, no ingest).
--read-database
             a second connection for admin queries (a replica or a read-only role), without a
             password; or GATEHOUSE_HUB_READ_DATABASE_URL. Ingest stays on --database.
--config     JSON: {"adminTokenSha256": ["…"], "enrolmentSecretSha256": ["…"], "metricsTokenSha256": ["…"],
             "siem": {"endpoint": "https://collector:4318/v1/logs", "headers": {"…": "…"}}}
Environment: GATEHOUSE_HUB_ADMIN_TOKEN_SHA256, GATEHOUSE_HUB_ENROLMENT_SECRET_SHA256,
GATEHOUSE_HUB_METRICS_TOKEN_SHA256 (comma separated), GATEHOUSE_HUB_SIEM_ENDPOINT add to the
config file. GET /metrics (Prometheus) takes a metrics token or an admin token. Only hashes are configured:
make a token with \`gatehouse hub token\`, give the token to the admin or the devices, and put
its SHA-256 in the config.`;

interface HubFileConfig {
  adminTokenSha256?: string[];
  metricsTokenSha256?: string[];
  enrolmentSecretSha256?: string[];
  siem?: { endpoint: string; headers?: Record<string, string>; timeoutMs?: number };
  forwardIntervalMs?: number;
}

export async function hubCommand(args: string[], io: CliIo, logger: Logger): Promise<number> {
  if (args[0] === 'token') {
    const token = randomBytes(32).toString('base64url');
    io.out(`token:  ${token}\nsha256: ${sha256Hex(token)}\n`);
    io.err("Keep the token secret; put only the sha256 line in the hub's config.\n");
    return 0;
  }
  if (args[0] === 'publish') return publish(args.slice(1), io);
  if (args[0] === 'baselines' || args[0] === 'shadow') {
    const { hubCatalogCommand } = await import('./catalog.js');
    return hubCatalogCommand(args[0], args.slice(1), io);
  }
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        database: { type: 'string' },
        'read-database': { type: 'string' },
        listen: { type: 'string' },
        config: { type: 'string' },
        'read-only': { type: 'boolean' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new GatehouseError('usage', errorMessage(error).replace(/\. To specify.*$/s, ''));
  }
  if (values.help) {
    io.out(HUB_HELP + '\n');
    return 0;
  }
  const config = {
    ...resolveHubConfig(
      {
        database: values.database,
        readDatabase: values['read-database'],
        listen: values.listen,
        config: values.config,
        tlsCert: values['tls-cert'],
        tlsKey: values['tls-key'],
      },
      io.env,
    ),
    readOnly: values['read-only'] === true,
  };
  const hub = await startHub(config, logger);
  io.err(`Gatehouse hub listening on ${hub.url}\n`);
  await untilStopSignal();
  await hub.close();
  return 0;
}

export interface HubFlags {
  database?: string | undefined;
  readDatabase?: string | undefined;
  listen?: string | undefined;
  config?: string | undefined;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
}

/** A database URL from the command line: postgres://, and never with a password (other users can read command lines). */
function databaseFlag(flag: string, value: string, envName: string): string {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new GatehouseError('usage', `${flag} takes a postgres:// URL`);
  }
  if (!/^postgres(ql)?:$/.test(parsed.protocol)) throw new GatehouseError('usage', `${flag} takes a postgres:// URL`);
  if (parsed.password)
    throw new GatehouseError('usage', `${flag} must not contain a password (other users can read command lines): use PGPASSWORD, ~/.pgpass or ${envName}`);
  return value;
}

export function resolveHubConfig(flags: HubFlags, env: NodeJS.ProcessEnv): HubConfig {
  const databaseUrl = flags.database !== undefined ? databaseFlag('--database', flags.database, 'GATEHOUSE_HUB_DATABASE_URL') : env.GATEHOUSE_HUB_DATABASE_URL;
  if (!databaseUrl) throw new GatehouseError('usage', 'give --database URL (or set GATEHOUSE_HUB_DATABASE_URL)');
  const readDatabaseUrl =
    flags.readDatabase !== undefined
      ? databaseFlag('--read-database', flags.readDatabase, 'GATEHOUSE_HUB_READ_DATABASE_URL')
      : env.GATEHOUSE_HUB_READ_DATABASE_URL || undefined;
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) throw new GatehouseError('usage', '--tls-cert and --tls-key go together');

  const listen = flags.listen ?? '127.0.0.1:8443';
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(listen);
  if (!m || Number(m[2]) > 65_535) throw new GatehouseError('usage', `--listen takes HOST:PORT, got "${listen}"`);

  let file: HubFileConfig = {};
  if (flags.config) {
    try {
      file = JSON.parse(readFileSync(flags.config, 'utf8')) as HubFileConfig;
    } catch (error) {
      throw new GatehouseError('config_invalid', `${flags.config}: ${errorMessage(error)}`);
    }
  }
  const hashes = (name: string, fromFile: string[] | undefined, fromEnv: string | undefined): string[] => {
    const all = [
      ...(fromFile ?? []),
      ...(fromEnv
        ? fromEnv
            .split(',')
            .map((h) => h.trim())
            .filter(Boolean)
        : []),
    ];
    for (const h of all)
      if (!/^[0-9a-f]{64}$/.test(h))
        throw new GatehouseError('config_invalid', `${name}: "${h.slice(0, 12)}…" is not a SHA-256 hex digest (make one with \`gatehouse hub token\`)`);
    return all;
  };
  const siemEndpoint = env.GATEHOUSE_HUB_SIEM_ENDPOINT ?? file.siem?.endpoint;
  if (siemEndpoint !== undefined && !/^https?:\/\//.test(siemEndpoint))
    throw new GatehouseError('config_invalid', 'siem.endpoint must be an http:// or https:// URL');
  return {
    databaseUrl,
    host: m[1]!.replace(/^\[|\]$/g, ''),
    port: Number(m[2]),
    adminTokenHashes: hashes('adminTokenSha256', file.adminTokenSha256, env.GATEHOUSE_HUB_ADMIN_TOKEN_SHA256),
    enrolmentSecretHashes: hashes('enrolmentSecretSha256', file.enrolmentSecretSha256, env.GATEHOUSE_HUB_ENROLMENT_SECRET_SHA256),
    metricsTokenHashes: hashes('metricsTokenSha256', file.metricsTokenSha256, env.GATEHOUSE_HUB_METRICS_TOKEN_SHA256),
    ...(siemEndpoint
      ? {
          siem: {
            endpoint: siemEndpoint,
            ...(file.siem?.headers ? { headers: file.siem.headers } : {}),
            ...(file.siem?.timeoutMs ? { timeoutMs: file.siem.timeoutMs } : {}),
          },
        }
      : {}),
    ...(file.forwardIntervalMs ? { forwardIntervalMs: file.forwardIntervalMs } : {}),
    ...(readDatabaseUrl ? { readDatabaseUrl } : {}),
    ...(flags.tlsCert && flags.tlsKey ? { tls: { certFile: flags.tlsCert, keyFile: flags.tlsKey } } : {}),
  };
}

async function publish(args: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { url: { type: 'string' }, 'token-file': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new GatehouseError('usage', errorMessage(error).replace(/\. To specify.*$/s, ''));
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(HUB_HELP + '\n');
    return 0;
  }
  const file = positionals[0];
  if (!file || positionals.length > 1 || !values.url) throw new GatehouseError('usage', 'give exactly one bundle FILE and --url HUB');
  const token = values['token-file'] ? readFileSync(values['token-file'], 'utf8').trim() : io.env.GATEHOUSE_HUB_ADMIN_TOKEN;
  if (!token) throw new GatehouseError('usage', 'give the admin token in a file (--token-file FILE) or in GATEHOUSE_HUB_ADMIN_TOKEN');
  const response = await fetch(`${values.url.replace(/\/+$/, '')}/v1/admin/bundle`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    body: readFileSync(file),
  });
  const body = (await response.json().catch(() => ({}))) as { etag?: string; error?: { message?: string } };
  if (!response.ok) throw new GatehouseError('hub_refused', `the hub refused the bundle: ${body.error?.message ?? response.status}`);
  io.out(`published ${file} (ETag ${body.etag})\n`);
  return 0;
}
