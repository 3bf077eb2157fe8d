/**
 * What the console shows, computed from the daemon's live parts: servers with their config,
 * tools with who may see them and their pins, paired clients, secret names, audit rows and the
 * calls-over-time series. Everything here reads; the daemon's handlers (handlers.ts) act.
 *
 * Secret values never pass through here: secrets are listed by name from the keychain's item
 * names, and server configs carry `${secret:NAME}` references only.
 */
import type { GatehouseConfig, ServerConfig } from '../../common/config.js';
import type {
  AuditRow,
  AuditTimeline,
  ClientEntry,
  SecretsReport,
  ServerEntry,
  ServersReport,
  ToolEntry,
  ToolSummary,
  ToolsReport,
} from '../../common/console-api.js';
import { errorMessage } from '../../common/errors.js';
import { joinName } from '../../common/names.js';
import type { ClientStatus, ServerStatus } from '../../common/status.js';
import type { AuditEvent } from '../../core/audit/event.js';
import { describeScope, outsideScope, type ClientScope } from '../../core/identity/client-scope.js';
import type { PolicyPort } from '../../core/governance.js';
import type { PolicyState } from '../../core/policy/bundle-policy.js';
import type { Restrictions } from '../../core/policy/narrowing.js';
import { toolDefinitionHash } from '../../core/policy/tool-hash.js';
import type { ToolItem, UpstreamLists } from '../../core/ports.js';
import type { Principal } from '../../core/principal.js';
import type { SecretStore } from '../../core/secrets.js';
import { isExpired, type ClientRecord } from '../client-registry.js';
import { USER_SECRET_PREFIX, secretReferences } from '../secrets/resolver.js';

/** The parts of the running daemon the reports read. */
export interface ReportSources {
  config(): GatehouseConfig;
  /** The config file as written (servers without defaults filled in), or undefined when unreadable. */
  rawServers(): Promise<Record<string, Record<string, unknown>> | undefined>;
  configFile: string;
  policyMode(): 'managed' | 'unmanaged';
  policyVersion(): string | undefined;
  policyState(): PolicyState;
  /** The policy in force with the user's restrictions and client scopes (the daemon's policy port). */
  policy: PolicyPort;
  restrictions(): Restrictions;
  readOnly(server: string, tool: string): boolean;
  currentUser(): Principal['user'];
  supervised: {
    names(): string[];
    config(name: string): ServerConfig | undefined;
    status(name: string): ServerStatus | undefined;
    lists(name: string): UpstreamLists | undefined;
  };
  logFile(server: string): string;
  clients(): ClientRecord[];
  sessions(): ClientStatus[];
  keychain: SecretStore;
}

// ---------------------------------------------------------------------------------------------
// Servers

export async function serversReport(src: ReportSources): Promise<ServersReport> {
  const mode = src.policyMode();
  const configured = src.config().servers;
  const raw = (await src.rawServers()) ?? {};
  const running = new Set(src.supervised.names());
  const state = src.policyState();
  const entries: ServerEntry[] = [];
  const names = [...new Set([...Object.keys(configured), ...running])].sort();
  for (const name of names) {
    const isRunning = running.has(name);
    const catalog = state.kind === 'enforcing' ? state.evaluator.bundle.content.catalog.servers.get(name) : undefined;
    const source: ServerEntry['source'] = isRunning && catalog?.launch ? 'catalog' : 'config';
    const live = src.supervised.config(name);
    const config =
      source === 'config' ? (raw[name] ?? (configured[name] as unknown as Record<string, unknown>)) : (catalog!.launch as unknown as Record<string, unknown>);
    const forRefs = live ?? configured[name];
    const status = isRunning ? src.supervised.status(name) : undefined;
    entries.push({
      name,
      source,
      running: isRunning,
      config,
      ...(status ? { status } : {}),
      secrets: forRefs ? secretReferences(forRefs) : [],
      ...(isRunning ? { logFile: src.logFile(name) } : {}),
    });
  }
  let note: string | undefined;
  if (state.kind === 'enforcing')
    note =
      'A managed policy is in force: the servers of its signed catalog run, and the servers of your config file run only where the catalog has none of that name.';
  else if (state.kind === 'fail-closed') note = `The managed policy is failing closed (${state.reason}): no server runs until a valid bundle is in force.`;
  const disabled = Object.keys(configured).filter((n) => !running.has(n) && configured[n]!.enabled && src.restrictions().serverDisabled(n));
  if (disabled.length > 0) note = `${note ? `${note} ` : ''}Switched off in your restrict rules: ${disabled.join(', ')}.`;
  return { policyMode: mode, configFile: src.configFile, servers: entries, ...(note ? { note } : {}) };
}

export function summarizeTool(tool: ToolItem): ToolSummary {
  const annotations = (tool.annotations && typeof tool.annotations === 'object' ? tool.annotations : {}) as Record<string, unknown>;
  const schema = tool.inputSchema as { properties?: Record<string, unknown> } | undefined;
  return {
    name: tool.name,
    ...(typeof tool.title === 'string' ? { title: tool.title } : typeof annotations.title === 'string' ? { title: annotations.title } : {}),
    ...(typeof tool.description === 'string' ? { description: tool.description.slice(0, 2000) } : {}),
    annotations,
    inputs: schema?.properties && typeof schema.properties === 'object' ? Object.keys(schema.properties) : [],
    hash: toolDefinitionHash(tool),
  };
}

// ---------------------------------------------------------------------------------------------
// Tools: who may see and call each

/** The console asks as the user, with no client scope and no client's own restrictions. */
const CONSOLE_CLIENT: Principal['client'] = Object.freeze({ id: 'console', name: '\u0000console', verified: true, transport: 'in-process' });

export function toolsReport(src: ReportSources): ToolsReport {
  const user = src.currentUser();
  const you: Principal = { user, client: CONSOLE_CLIENT };
  const state = src.policyState();
  const evaluator = state.kind === 'enforcing' ? state.evaluator : undefined;
  const allRoles = evaluator ? [...new Set([...evaluator.bundle.content.roles.groups.values()].flat())].sort() : [];
  const yourRoles = evaluator ? evaluator.rolesOf(you) : [];
  const restrictions = src.restrictions();
  const clients = src.clients().filter((c) => !isExpired(c));
  const tools: ToolEntry[] = [];
  for (const server of [...src.supervised.names()].sort()) {
    const lists = src.supervised.lists(server);
    if (!lists) continue;
    for (const tool of lists.tools) {
      const summary = summarizeTool(tool);
      const visibleToYou = src.policy.visible(you, server, 'tool', tool.name);
      const disabledByYou = restrictions.disabled(CONSOLE_CLIENT.name, server, 'tool', tool.name) !== undefined;
      const catalogTool = evaluator?.catalogTool(server, tool.name);
      let pin: ToolEntry['pin'];
      if (!evaluator) pin = { state: 'unpinned' };
      else if (!catalogTool) pin = { state: 'not-in-catalog' };
      else pin = { state: catalogTool.sha256 === summary.hash ? 'match' : 'changed', pinned: catalogTool.sha256 };
      let hiddenBecause: string | undefined;
      if (!visibleToYou) {
        if (disabledByYou) hiddenBecause = 'switched off in your Gatehouse config (restrict.disable)';
        else if (state.kind === 'fail-closed') hiddenBecause = `the managed policy is failing closed: ${state.reason}`;
        else if (pin.state === 'changed')
          hiddenBecause = 'its definition changed since the policy bundle pinned it; it stays hidden until an admin pins the new definition';
        else if (pin.state === 'not-in-catalog') hiddenBecause = "it is not in the policy bundle's catalog";
        else if (evaluator && user.source === 'os') hiddenBecause = "the managed policy needs you to sign in with your organisation's identity provider";
        else if (evaluator) hiddenBecause = evaluator.assess(you, yourRoles, 'tool', server, tool.name).hiddenBecause ?? 'no policy permits it for you';
      }
      const roles = evaluator
        ? allRoles.map((role) => {
            const principal: Principal = { user: { id: `role:${role}`, source: 'oidc', displayName: role, groups: [], roles: [role] }, client: CONSOLE_CLIENT };
            const assessment = catalogTool && pin.state === 'match' ? evaluator.assess(principal, [role], 'tool', server, tool.name) : { visible: false };
            const approvals = 'fixed' in assessment && assessment.fixed?.code === 'approval_required' ? assessment.fixed.approvals : undefined;
            return { role, visible: assessment.visible, ...(approvals && approvals.length > 0 ? { approval: approvals } : {}) };
          })
        : undefined;
      tools.push({
        ...summary,
        server,
        exposedAs: joinName(server, tool.name),
        pin,
        ...(catalogTool ? { catalog: { readOnly: catalogTool.readOnly, destructive: catalogTool.destructive, tags: [...catalogTool.tags] } } : {}),
        visibleToYou,
        ...(hiddenBecause ? { hiddenBecause } : {}),
        disabledByYou,
        ...(roles ? { roles } : {}),
        clients: clients.map((c) => ({
          name: c.name,
          visible:
            visibleToYou &&
            outsideScope(c.scope as ClientScope | undefined, (s, t) => src.readOnly(s, t), server, 'tool', tool.name) === undefined &&
            restrictions.disabled(c.name, server, 'tool', tool.name) === undefined,
        })),
      });
    }
  }
  let note: string | undefined;
  if (state.kind === 'unmanaged')
    note = 'Unmanaged: no policy bundle is in force, so you may call every tool of your servers; paired clients are narrowed by the scope you gave them.';
  else if (state.kind === 'fail-closed') note = `The managed policy is failing closed: ${state.reason}`;
  else if (user.source === 'os') note = "The managed policy decides by the roles your organisation's identity provider vouches for: sign in to see your tools.";
  const version = src.policyVersion();
  return { mode: src.policyMode(), ...(version ? { version } : {}), you: user.displayName, yourRoles, tools, ...(note ? { note } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Clients and secrets

/**
 * When a client was last seen: the registry's record (written at most once a minute, at connection
 * and authentication) or, newer, the last call or the opening of one of its live sessions.
 */
function lastSeenOf(recorded: string | undefined, live: ClientStatus[]): { lastSeen: string } | undefined {
  let latest = recorded ? Date.parse(recorded) : Number.NaN;
  for (const s of live) {
    for (const at of [s.connectedAt, s.lastCallAt]) {
      const t = at ? Date.parse(at) : Number.NaN;
      if (!Number.isNaN(t) && !(t <= latest)) latest = t;
    }
  }
  return Number.isNaN(latest) ? undefined : { lastSeen: new Date(latest).toISOString() };
}

export function clientsReport(src: ReportSources): ClientEntry[] {
  const sessions = src.sessions();
  const settings = src.config().clients;
  return src
    .clients()
    .map((r) => {
      const scope = (r.scope ?? { kind: 'all' }) as ClientEntry['scope'];
      return {
        name: r.name,
        scope,
        scopeText: describeScope(scope as ClientScope),
        ...(r.via ? { via: r.via } : {}),
        createdAt: r.createdAt,
        ...(r.expiresAt ? { expiresAt: r.expiresAt } : {}),
        expired: isExpired(r),
        ...(lastSeenOf(
          r.lastSeen,
          sessions.filter((s) => s.verified && s.name === r.name),
        ) ?? {}),
        ...(r.pairedBy ? { pairedBy: r.pairedBy } : {}),
        sessions: sessions.filter((s) => s.verified && s.name === r.name).length,
        view: settings[r.name]?.view ?? 'aggregate',
        pinned: [...(settings[r.name]?.pinned ?? [])],
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Which servers refer to which secret names: the config file's and the ones running (catalog servers included). */
export function secretUsers(src: ReportSources): Map<string, string[]> {
  const users = new Map<string, Set<string>>();
  const add = (server: string, config: ServerConfig | undefined) => {
    if (!config) return;
    for (const name of secretReferences(config)) {
      let set = users.get(name);
      if (!set) users.set(name, (set = new Set()));
      set.add(server);
    }
  };
  for (const [name, config] of Object.entries(src.config().servers)) add(name, config);
  for (const name of src.supervised.names()) add(name, src.supervised.config(name));
  return new Map([...users].map(([k, v]) => [k, [...v].sort()]));
}

export async function secretsReport(src: ReportSources): Promise<SecretsReport> {
  const users = secretUsers(src);
  let stored: string[] = [];
  let error: string | undefined;
  try {
    stored = (await src.keychain.list()).filter((n) => n.startsWith(USER_SECRET_PREFIX)).map((n) => n.slice(USER_SECRET_PREFIX.length));
  } catch (e) {
    error = errorMessage(e);
  }
  const names = [...new Set([...stored, ...users.keys()])].sort();
  return {
    keychain: src.keychain.description,
    available: error === undefined,
    ...(error ? { error } : {}),
    secrets: names.map((name) => ({ name, stored: stored.includes(name), usedBy: users.get(name) ?? [] })),
  };
}

// ---------------------------------------------------------------------------------------------
// Audit

export function auditRow(event: AuditEvent, hash: string): AuditRow {
  const row: AuditRow = { seq: event.seq, id: event.id, at: event.at, type: event.type, hash };
  for (const key of ['callId', 'user', 'client', 'server', 'kind', 'name', 'decision', 'stage', 'code', 'reason', 'policyMode', 'policyVersion'] as const) {
    const value = event[key];
    if (typeof value === 'string') row[key] = value;
  }
  if (typeof event.latencyMs === 'number') row.latencyMs = event.latencyMs;
  if (Array.isArray(event.policyIds)) row.policyIds = event.policyIds;
  if (event.approval && typeof event.approval === 'object') row.approval = { ...event.approval };
  if (event.upstream && typeof event.upstream === 'object' && typeof event.upstream.issuer === 'string') row.upstream = { ...event.upstream };
  if (event.detail && typeof event.detail === 'object') row.detail = event.detail;
  return row;
}

/** Counting keys past this many busiest ones go into `(other)`. */
const MAX_SERIES = 8;
export const OTHER_SERIES = '(other)';

type TimelineEvent = Pick<AuditEvent, 'at' | 'server' | 'name' | 'client' | 'decision' | 'latencyMs'>;

/** The shortest range `fit` narrows to, so that a single call still has some time around it. */
export const FIT_MIN_SPAN_MS = 2 * 60_000;

/**
 * Where a fitted range starts: at the first call (floored to the minute), unless that leaves less
 * than `FIT_MIN_SPAN_MS` before `to`, and never before `from`. Pure.
 */
export function fittedStart(from: number, to: number, firstCall: number | undefined): number {
  if (firstCall === undefined || !(firstCall > from)) return from;
  const floored = Math.floor(firstCall / 60_000) * 60_000;
  return Math.max(from, Math.min(floored, to - FIT_MIN_SPAN_MS));
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : Math.round(((sorted[mid - 1]! + sorted[mid]!) / 2) * 100) / 100;
}

function keyOf(event: TimelineEvent, by: AuditTimeline['by']): string {
  if (by === 'client') return event.client ?? '(unknown)';
  if (by === 'server') return event.server ?? '(unknown)';
  return event.server && event.name ? joinName(event.server, event.name) : (event.name ?? '(unknown)');
}

/**
 * Calls per bucket and per key (the tool's aggregate name, the client or the server), from
 * `call.outcome` events in [from, to), with the refusals and the median latency of each bucket.
 * `events` yields them in any order; at most `max` are counted.
 */
export function timeline(
  events: Iterable<TimelineEvent>,
  options: { from: string; to: string; buckets: number; by: AuditTimeline['by']; max: number; requestedFrom?: string },
): AuditTimeline {
  const start = Date.parse(options.from);
  const end = Date.parse(options.to);
  const buckets = Math.max(1, options.buckets);
  const bucketMs = Math.max(1, Math.ceil((end - start) / buckets));
  const perKey = new Map<string, { counts: number[]; refused: number[]; latencies: number[][] }>();
  let total = 0;
  let truncated = false;
  for (const event of events) {
    if (total >= options.max) {
      truncated = true;
      break;
    }
    const at = Date.parse(event.at);
    if (!(at >= start && at < end)) continue;
    const key = keyOf(event, options.by);
    let entry = perKey.get(key);
    if (!entry) {
      entry = { counts: new Array<number>(buckets).fill(0), refused: new Array<number>(buckets).fill(0), latencies: Array.from({ length: buckets }, () => []) };
      perKey.set(key, entry);
    }
    const i = Math.min(buckets - 1, Math.floor((at - start) / bucketMs));
    entry.counts[i]! += 1;
    if (event.decision === 'denied') entry.refused[i]! += 1;
    if (typeof event.latencyMs === 'number' && Number.isFinite(event.latencyMs)) entry.latencies[i]!.push(event.latencyMs);
    total++;
  }
  const ranked = [...perKey]
    .map(([key, e]) => ({ key, counts: e.counts, refused: e.refused, latencies: e.latencies, total: e.counts.reduce((a, b) => a + b, 0) }))
    .sort((a, b) => b.total - a.total || a.key.localeCompare(b.key));
  const shape = (r: (typeof ranked)[number]) => ({ key: r.key, counts: r.counts, refused: r.refused, latencyMs: r.latencies.map(median), total: r.total });
  const series = ranked.slice(0, MAX_SERIES).map(shape);
  const rest = ranked.slice(MAX_SERIES);
  if (rest.length > 0) {
    const merged = {
      key: OTHER_SERIES,
      counts: new Array<number>(buckets).fill(0),
      refused: new Array<number>(buckets).fill(0),
      latencies: Array.from({ length: buckets }, (): number[] => []),
      total: 0,
    };
    for (const r of rest) {
      r.counts.forEach((c, i) => (merged.counts[i]! += c));
      r.refused.forEach((c, i) => (merged.refused[i]! += c));
      r.latencies.forEach((l, i) => merged.latencies[i]!.push(...l));
      merged.total += r.total;
    }
    series.push(shape(merged));
  }
  const requested =
    options.requestedFrom !== undefined && Date.parse(options.requestedFrom) !== start
      ? { requestedFrom: new Date(Date.parse(options.requestedFrom)).toISOString() }
      : {};
  return { from: new Date(start).toISOString(), to: new Date(end).toISOString(), ...requested, bucketMs, by: options.by, series, total, truncated };
}
