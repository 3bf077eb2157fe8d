/**
 * The Policy screen's data: the bundle in force (policies, role mapping, catalog), what changed
 * from the bundle this daemon had in force before it, and the history of policy changes from the
 * audit log.
 *
 * `BundleHistory` is told every time the policy controller changes what is in force, and keeps a
 * summary of the last two bundles (names and hashes only, not the bundles themselves).
 */
import { createHash } from 'node:crypto';
import type { PolicyChanges, PolicyReport } from '../../common/console-api.js';
import type { PolicyStatus } from '../../common/status.js';
import type { CompiledBundle } from '../../core/policy/compile.js';
import type { PolicyState } from '../../core/policy/bundle-policy.js';
import type { AuditEvent } from '../../core/audit/event.js';

interface BundleSummary {
  version: number;
  digest: string;
  /** Policy id → a hash of what decides it (effect, annotations, file content). */
  policies: Map<string, string>;
  /** Group → its roles, joined. */
  roles: Map<string, string>;
  servers: Set<string>;
  /** `<server>__<tool>` → pinned hash. */
  tools: Map<string, string>;
}

/**
 * Each policy's own text, by its `@id`, with comments and spacing taken out: a policy counts as
 * changed when its statement changed, not when another policy of its file did. Statements end at a
 * `;` outside a string; comments run from `//` outside a string to the end of the line.
 */
export function policyStatements(text: string): Map<string, string> {
  const statements: string[] = [];
  let current = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      current += c;
      if (c === '\\') current += text[++i] ?? '';
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      current += ' ';
      continue;
    }
    if (c === '"') inString = true;
    if (c === ';') {
      statements.push(current);
      current = '';
      continue;
    }
    current += c;
  }
  const byId = new Map<string, string>();
  for (const statement of statements) {
    const id = /@id\(\s*"((?:[^"\\]|\\.)*)"\s*\)/.exec(statement)?.[1];
    if (id !== undefined) byId.set(id, statement.replace(/\s+/g, ' ').trim());
  }
  return byId;
}

function summarize(bundle: CompiledBundle): BundleSummary {
  const texts = new Map<string, string>();
  for (const file of bundle.content.policyFiles) for (const [id, text] of policyStatements(file.text)) texts.set(id, text);
  const policies = new Map<string, string>();
  for (const [id, info] of bundle.policies) {
    const text =
      texts.get(id) ??
      `${info.file}:${createHash('sha256')
        .update(bundle.content.policyFiles.find((f) => f.name === info.file)?.text ?? '')
        .digest('hex')}`;
    policies.set(
      id,
      createHash('sha256')
        .update(JSON.stringify([info.effect, info.approval ?? null, info.quota ?? null, text]))
        .digest('hex'),
    );
  }
  const tools = new Map<string, string>();
  for (const [server, entry] of bundle.content.catalog.servers) for (const [tool, pin] of entry.tools) tools.set(`${server}__${tool}`, pin.sha256);
  return {
    version: bundle.manifest.version,
    digest: bundle.digest,
    policies,
    roles: new Map([...bundle.content.roles.groups].map(([group, roles]) => [group, [...roles].sort().join(',')])),
    servers: new Set(bundle.content.catalog.servers.keys()),
    tools,
  };
}

function diffKeys<T>(before: Map<string, T> | Set<string>, after: Map<string, T> | Set<string>): { added: string[]; removed: string[]; changed: string[] } {
  const b = before instanceof Map ? before : new Map([...before].map((k) => [k, k]));
  const a = after instanceof Map ? after : new Map([...after].map((k) => [k, k]));
  const added = [...a.keys()].filter((k) => !b.has(k)).sort();
  const removed = [...b.keys()].filter((k) => !a.has(k)).sort();
  const changed = [...a.keys()].filter((k) => b.has(k) && b.get(k) !== a.get(k)).sort();
  return { added, removed, changed };
}

export function diffBundles(before: BundleSummary, after: BundleSummary): PolicyChanges {
  const tools = diffKeys(before.tools, after.tools);
  const servers = diffKeys(before.servers, after.servers);
  return {
    from: String(before.version),
    to: String(after.version),
    policies: diffKeys(before.policies, after.policies),
    roles: diffKeys(before.roles, after.roles),
    servers: { added: servers.added, removed: servers.removed },
    tools: { added: tools.added, removed: tools.removed, repinned: tools.changed },
  };
}

export class BundleHistory {
  private current: BundleSummary | undefined;
  private changes: PolicyChanges | undefined;

  /** Called with the state now in force, each time it may have changed. */
  observe(state: PolicyState): void {
    if (state.kind !== 'enforcing') return;
    const bundle = state.evaluator.bundle;
    if (this.current?.digest === bundle.digest) return;
    const next = summarize(bundle);
    if (this.current) this.changes = diffBundles(this.current, next);
    this.current = next;
  }

  /** What changed from the bundle in force before the current one, while the current one is that bundle. */
  lastChanges(state: PolicyState): PolicyChanges | undefined {
    if (state.kind !== 'enforcing' || !this.changes || this.current?.digest !== state.evaluator.bundle.digest) return undefined;
    return this.changes;
  }
}

export function policyReport(status: PolicyStatus, state: PolicyState, history: BundleHistory, events: AuditEvent[]): PolicyReport {
  const report: PolicyReport = {
    status,
    history: events
      .filter((e) => e.type === 'policy.changed' || e.type === 'policy.rejected')
      .reverse()
      .map((e) => ({
        at: e.at,
        type: e.type,
        ...(e.reason ? { reason: e.reason } : {}),
        ...(e.code ? { code: e.code } : {}),
        ...(typeof e.detail?.version === 'number' ? { version: e.detail.version } : {}),
      })),
  };
  if (state.kind === 'enforcing') {
    const b = state.evaluator.bundle;
    report.bundle = {
      version: b.manifest.version,
      digest: b.digest,
      issuedAt: b.manifest.issuedAt,
      expiresAt: b.manifest.expiresAt,
      signedBy: [...b.signedBy],
      policies: [...b.policies.values()]
        .map((p) => ({
          id: p.id,
          file: p.file,
          effect: p.effect,
          ...(p.approval ? { approval: p.approval } : {}),
          ...(p.quota ? { quota: p.quota } : {}),
          readsArguments: p.readsArguments,
        }))
        .sort((x, y) => x.id.localeCompare(y.id)),
      roles: [...b.content.roles.groups].map(([group, roles]) => ({ group, roles: [...roles] })).sort((x, y) => x.group.localeCompare(y.group)),
      catalog: [...b.content.catalog.servers].map(([server, entry]) => ({ server, tools: entry.tools.size })).sort((x, y) => x.server.localeCompare(y.server)),
    };
    const changes = history.lastChanges(state);
    if (changes) report.changes = changes;
  }
  return report;
}
