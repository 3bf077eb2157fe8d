/**
 * The catalogue's part of the daemon: the installer and the catalogue service, what the fleet
 * learns from this device (the hash of each tool definition per server and version, and the
 * shadow servers, both as audit events that the signed audit sync carries to the hub), and the
 * quarantined tools shown in status.
 */
import { join } from 'node:path';
import type { QuarantinedTool } from '../../common/catalog.js';
import type { GatehouseConfig } from '../../common/config.js';
import { errorMessage } from '../../common/errors.js';
import { quarantinedTools } from '../../core/catalog/quarantine.js';
import type { PolicyState } from '../../core/policy/bundle-policy.js';
import { toolDefinitionHash } from '../../core/policy/tool-hash.js';
import type { AuditRecord, Logger, UpstreamLists } from '../../core/ports.js';
import type { ServerStatus } from '../../common/status.js';
import { NpmInstaller } from '../catalog/npm.js';
import { CatalogService } from '../catalog/service.js';
import type { Place } from '../clients/registry.js';

export interface CatalogPartDeps {
  dataDir: string;
  configFile: string;
  env: NodeJS.ProcessEnv;
  place: Place;
  logger: Logger;
  record(entry: AuditRecord): void;
  policy(): PolicyState;
  config(): GatehouseConfig;
  storedSecrets(): Promise<string[]>;
  reload(): Promise<unknown>;
  changed(): void;
  /** Running servers: names, lists and what they say about themselves. */
  running(): { name: string; lists: UpstreamLists; status: ServerStatus | undefined }[];
  /** How often the clients' configs are read again for shadow servers (default 5 minutes). */
  shadowScanMs?: number;
}

export interface CatalogPart {
  service: CatalogService;
  /** After lists change: record new tool definitions per (server, version), and newly quarantined tools. */
  observeLists(): void;
  quarantined(): QuarantinedTool[];
  start(): void;
  close(): void;
}

export function openCatalog(deps: CatalogPartDeps): CatalogPart {
  const installer = new NpmInstaller({ root: join(deps.dataDir, 'packages'), env: deps.env });
  const service = new CatalogService({
    installer,
    dataDir: deps.dataDir,
    configFile: deps.configFile,
    logger: deps.logger,
    record: deps.record,
    policy: deps.policy,
    installed: () => deps.config().installed,
    userServers: () => deps.config().servers,
    storedSecrets: deps.storedSecrets,
    reload: deps.reload,
    changed: deps.changed,
    place: deps.place,
  });
  const seen = new Set<string>();
  const since = new Map<string, string>();
  const drifted = new Set<string>();
  let timer: ReturnType<typeof setInterval> | undefined;

  const pin = (server: string, tool: string): string | undefined => {
    const state = deps.policy();
    if (state.kind !== 'enforcing') return undefined;
    return state.evaluator.catalogTool(service.catalogNameOf(server) ?? server, tool)?.sha256;
  };
  const quarantined = (): QuarantinedTool[] =>
    quarantinedTools({
      servers: deps.running().map((r) => ({ name: r.name, tools: r.lists.tools })),
      pin,
      since: (server, tool, actual) => {
        const key = `${server}\0${tool}\0${actual}`;
        if (!since.has(key)) since.set(key, new Date().toISOString());
        return since.get(key)!;
      },
    });

  return {
    service,
    quarantined,
    observeLists: () => {
      const at = new Date().toISOString();
      for (const { name, lists, status } of deps.running()) {
        const pkg = service.packageOf(name);
        const version = pkg?.version ?? status?.serverInfo?.version ?? 'unknown';
        const tools = Object.fromEntries(lists.tools.map((t) => [t.name, toolDefinitionHash(t)]).sort(([a], [b]) => (a! < b! ? -1 : 1)));
        const key = JSON.stringify([name, version, tools]);
        if (seen.has(key)) continue;
        seen.add(key);
        // The fleet's baseline: the hub counts, per server and version, how many devices see each definition.
        deps.record({
          type: 'catalog.tools_seen',
          at,
          server: pkg?.catalog ?? name,
          detail: { version, ...(pkg ? { package: pkg.package } : {}), installedAs: name, tools },
        });
      }
      for (const q of quarantined()) {
        const key = `${q.server}\0${q.tool}\0${q.actual}`;
        if (drifted.has(key)) continue;
        drifted.add(key);
        deps.record({
          type: 'tool.drift',
          at,
          server: q.server,
          kind: 'tool',
          name: q.tool,
          reason: 'its definition differs from the pin in the signed catalogue: quarantined (hidden and refused) until a bundle pins it',
          detail: { expected: q.expected, actual: q.actual },
        });
        deps.logger.log('warn', 'catalog.quarantined', { server: q.server, tool: q.tool, expected: q.expected, actual: q.actual });
      }
    },
    start: () => {
      const scan = () => void service.scanShadows().catch((error) => deps.logger.log('warn', 'catalog.shadow_scan_failed', { error: errorMessage(error) }));
      scan();
      timer = setInterval(scan, deps.shadowScanMs ?? 300_000);
      timer.unref();
    },
    close: () => {
      if (timer) clearInterval(timer);
    },
  };
}
