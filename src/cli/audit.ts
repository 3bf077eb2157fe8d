/**
 * `gatehouse audit verify|query|export|enrol|prune`: the local audit log. Reads open the database
 * read-only, so they work while the daemon writes; only the daemon appends.
 */
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { parseFlags } from './args.js';
import { GatehouseError, errorMessage } from '../common/errors.js';
import { deviceKeyName, loadDeviceKey } from '../core/audit/device-key.js';
import { FILTER_KEYS, parseAuditFilter, type AuditFilter } from '../core/audit/filter.js';
import type { AuditEvent } from '../core/audit/event.js';
import { HubClient } from '../node/audit/hub-client.js';
import { auditDatabaseFile, readHubLink, writeHubLink } from '../node/audit/local.js';
import { iterateEvents, queryEvents } from '../node/audit/query.js';
import { openForReading, openForWriting, readMeta } from '../node/audit/schema.js';
import { pruneAcknowledged } from '../node/audit/sqlite-store.js';
import { verifyAuditFile } from '../node/audit/verify-file.js';
import { openUserKeyStore } from './keystore.js';
import { ensureUserOnlyDir, type GatehousePaths } from '../node/paths.js';

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

export const AUDIT_HELP = `Usage:
  gatehouse audit verify [--file FILE] [--json] [--no-keychain]
  gatehouse audit query [FILTERS] [--limit N] [--after SEQ] [--json]
  gatehouse audit export [FILTERS] [--out FILE]
  gatehouse audit enrol --hub URL [--token-file FILE]
  gatehouse audit prune --before TIME

verify   checks every event's hash and link, the sequence, the signed checkpoints and the
         indexed fields; names each edited, deleted, reordered or truncated event. Exit 0 only
         when the log is intact. The device key's public half is read from the keychain unless
         --no-keychain is given.
query    the newest matching events (default 100), or with --after SEQ the next page.
export   every matching event as JSON Lines, oldest first, each with its "hash".
enrol    registers this device's key with a hub; the enrolment secret comes from --token-file
         or GATEHOUSE_ENROLMENT_SECRET, never from the command line. The daemon syncs from its
         next start.
prune    deletes events older than TIME that the hub has acknowledged, up to a signed
         checkpoint that stays as the anchor the rest of the chain is verified from.

FILTERS: --from TIME --to TIME --user USER --client NAME --server NAME --tool NAME
         --decision allowed|denied|failed|ok|error --type TYPE
USER:    the name you see (sam@example.com, an OS account) or the recorded id (oidc:ISSUER#SUB).
NAME:    for --tool, as clients see it (crm__refund) or as the server names it (refund).
TIME:    ISO 8601 (2026-11-26T09:00:00Z) or a duration before now (15m, 2h, 7d).`;

const FILTER_OPTIONS = {
  from: { type: 'string' },
  to: { type: 'string' },
  user: { type: 'string' },
  client: { type: 'string' },
  server: { type: 'string' },
  tool: { type: 'string' },
  decision: { type: 'string' },
  type: { type: 'string' },
  after: { type: 'string' },
  limit: { type: 'string' },
} as const;

const parse = parseFlags;

function filterFrom(values: Record<string, unknown>): AuditFilter {
  const input: Record<string, string | undefined> = {};
  for (const key of FILTER_KEYS) if (typeof values[key] === 'string') input[key] = values[key] as string;
  return parseAuditFilter(input, Date.now(), 1_000_000);
}

export async function auditCommand(args: string[], io: CliIo, paths: GatehousePaths): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.out(AUDIT_HELP + '\n');
    return sub === undefined ? 2 : 0;
  }
  const file = auditDatabaseFile(paths.stateDir);
  switch (sub) {
    case 'verify': {
      const { values } = parse(rest, { file: { type: 'string' }, json: { type: 'boolean' }, 'no-keychain': { type: 'boolean' } });
      if (values.help) return help(io);
      const target = (values.file as string | undefined) ?? file;
      requireDatabase(target);
      let keychainPublicKey: string | undefined;
      let keychainNote: string | undefined;
      if (!values['no-keychain']) {
        const db = openForReading(target);
        const device = readMeta(db).get('device') ?? '';
        db.close();
        try {
          keychainPublicKey = (await loadDeviceKey(await openUserKeyStore(paths), device, { create: false })).publicKey;
        } catch (error) {
          keychainNote = `the keychain could not be read (${errorMessage(error).split('. ')[0]}); checked against the key recorded in the database`;
        }
      }
      const report = verifyAuditFile(target, { keychainPublicKey });
      if (keychainNote) report.warnings.unshift(keychainNote);
      if (values.json) io.out(JSON.stringify(report, null, 2) + '\n');
      else {
        const range = report.events > 0 ? `events ${report.firstSeq}–${report.lastSeq}` : 'no events';
        io.out(`${report.file}: device ${report.device}, ${range}, ${report.checkpoints.verified} of ${report.checkpoints.total} checkpoints verified\n`);
        for (const w of report.warnings) io.out(`warning: ${w}\n`);
        for (const p of report.problems) io.out(`${p.code} at event ${p.seq}: ${p.message}\n`);
        io.out(report.ok ? 'OK: the audit log is intact\n' : `FAILED: ${report.problems.length} problem(s)\n`);
      }
      if (!report.ok) {
        io.err(`gatehouse audit verify: the audit log has been tampered with or damaged (${report.problems[0]!.code} at event ${report.problems[0]!.seq})\n`);
      }
      return report.ok ? 0 : 1;
    }
    case 'query': {
      const { values } = parse(rest, { ...FILTER_OPTIONS, json: { type: 'boolean' } });
      if (values.help) return help(io);
      const filter = filterFrom(values);
      requireDatabase(file);
      const db = openForReading(file);
      try {
        const events = queryEvents(db, filter);
        if (values.json)
          io.out(
            JSON.stringify(
              events.map((e) => ({ ...e.event, hash: e.hash })),
              null,
              2,
            ) + '\n',
          );
        else if (events.length === 0) io.out('no matching events\n');
        else io.out(formatTable(events.map((e) => e.event)) + '\n');
      } finally {
        db.close();
      }
      return 0;
    }
    case 'export': {
      const { values } = parse(rest, { ...FILTER_OPTIONS, out: { type: 'string' } });
      if (values.help) return help(io);
      const filter = filterFrom(values);
      requireDatabase(file);
      const db = openForReading(file);
      let count = 0;
      try {
        const out = values.out ? createWriteStream(values.out as string, { mode: 0o600 }) : undefined;
        for (const e of iterateEvents(db, filter)) {
          const line = JSON.stringify({ ...e.event, hash: e.hash }) + '\n';
          if (out) {
            if (!out.write(line)) await new Promise<void>((r) => out.once('drain', () => r()));
          } else io.out(line);
          count++;
        }
        if (out) await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
      } finally {
        db.close();
      }
      if (values.out) io.err(`exported ${count} events to ${values.out}\n`);
      return 0;
    }
    case 'enrol': {
      const { values } = parse(rest, { hub: { type: 'string' }, 'token-file': { type: 'string' } });
      if (values.help) return help(io);
      const hub = values.hub as string | undefined;
      if (!hub || !/^https?:\/\/[^\s]+$/.test(hub)) throw new GatehouseError('usage', '--hub takes the hub URL (https://hub.example.com)');
      const secret = values['token-file'] ? readFileSync(values['token-file'] as string, 'utf8').trim() : io.env.GATEHOUSE_ENROLMENT_SECRET;
      if (!secret) throw new GatehouseError('usage', 'give the enrolment secret in a file (--token-file FILE) or in GATEHOUSE_ENROLMENT_SECRET');
      await ensureUserOnlyDir(paths.stateDir);
      // Creates the database (and so the device id) if the daemon has not run yet.
      const db = existsSync(file) ? openForReading(file) : openForWriting(file, 'process-crash');
      const device = readMeta(db).get('device')!;
      db.close();
      const keys = await openUserKeyStore(paths);
      const key = await loadDeviceKey(keys, device, { create: true });
      io.out(`the device key is kept in ${keys.describeFor(deviceKeyName(device))}\n`);
      const state = await new HubClient({ url: hub, key }).enrol(secret);
      const previous = readHubLink(paths.stateDir);
      writeHubLink(paths.stateDir, {
        ...(previous?.sync ? { sync: previous.sync } : {}),
        url: hub.replace(/\/+$/, ''),
        device,
        enrolledAt: new Date().toISOString(),
      });
      io.out(`device ${device} (key ${key.keyId}) is enrolled with ${hub}; the hub holds its events through ${state.acked}\n`);
      io.out('Restart the daemon (or start it) to begin syncing.\n');
      return 0;
    }
    case 'prune': {
      const { values } = parse(rest, { before: { type: 'string' } });
      if (values.help) return help(io);
      if (!values.before) throw new GatehouseError('usage', '--before TIME is required (ISO time or a duration such as 90d)');
      const before = parseAuditFilter({ to: values.before as string }, Date.now()).to!;
      requireDatabase(file);
      const db = openForWriting(file, 'process-crash');
      try {
        const result = pruneAcknowledged(db, before);
        io.out(
          result.pruned > 0
            ? `pruned ${result.pruned} acknowledged events through ${result.anchor!.seq}; the chain is anchored there\n`
            : 'nothing to prune: no acknowledged, checkpointed events are older than that\n',
        );
      } finally {
        db.close();
      }
      return 0;
    }
    default:
      throw new GatehouseError('usage', `unknown audit subcommand "${sub}"; run \`gatehouse audit --help\``);
  }
}

function help(io: CliIo): number {
  io.out(AUDIT_HELP + '\n');
  return 0;
}

function requireDatabase(file: string): void {
  if (!existsSync(file)) throw new GatehouseError('no_audit_log', `there is no audit log at ${file} yet (the daemon creates it at its first start)`);
}

function formatTable(events: AuditEvent[]): string {
  const rows = events.map((e) => [
    String(e.seq),
    e.at,
    e.type,
    e.user ?? '',
    e.client ?? '',
    e.server ? `${e.server}${e.name ? `/${e.name}` : ''}` : '',
    e.decision ?? '',
    e.code ?? e.reason?.slice(0, 60) ?? '',
  ]);
  const header = ['SEQ', 'TIME', 'TYPE', 'USER', 'CLIENT', 'SERVER/ITEM', 'DECISION', 'DETAIL'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}
