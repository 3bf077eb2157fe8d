/**
 * The control API's search methods: setting a client's view (written to the config file, like
 * every other setting, so that the file stays the one source of truth) and what each client's tool
 * list costs in tokens in each view (`gatehouse tools cost`, the console's Clients screen).
 */
import type { ClientToolCost, ToolCostReport } from '../../common/console-api.js';
import type { GatehouseConfig } from '../../common/config.js';
import type { ReloadReport } from '../../common/control-api.js';
import { GatehouseError } from '../../common/errors.js';
import { describeScope, type ClientScope } from '../../core/identity/client-scope.js';
import type { ToolItem } from '../../core/ports.js';
import type { Principal } from '../../core/principal.js';
import { toolListCost, type TokenCounter } from '../../core/search/cost.js';
import type { ToolSearch } from '../../core/search/view.js';
import { isExpired, type ClientRecord } from '../client-registry.js';
import { editConfigFile } from '../config-file.js';
import type { ControlHandlers } from '../control/control-server.js';

export interface SearchHandlerDeps {
  configFile: string;
  config(): GatehouseConfig;
  reload(): Promise<ReloadReport>;
  clients(): ClientRecord[];
  currentUser(): Principal['user'];
  gateway: { listTools(principal: Principal, scope: { server?: string }): ToolItem[] };
  search: ToolSearch;
  tokens: TokenCounter;
}

export function searchHandlers(deps: SearchHandlerDeps): Pick<ControlHandlers, 'clients.setView' | 'tools.cost'> {
  return {
    'clients.setView': async ({ name, view, pinned }) => {
      const edited = await editConfigFile(deps.configFile, (raw) => {
        const clients = (raw.clients ??= {}) as Record<string, unknown>;
        if (typeof clients !== 'object' || clients === null || Array.isArray(clients))
          throw new GatehouseError('config_invalid', '"clients" in the config file is not an object');
        const before = (clients[name] ?? {}) as Record<string, unknown>;
        clients[name] = { ...before, view, ...(pinned !== undefined ? { pinned } : {}) };
      });
      if (!edited.ok) throw new GatehouseError('invalid', edited.error);
      const report = await deps.reload();
      if (!report.ok) throw new GatehouseError('config_invalid', report.error ?? 'the daemon refused the configuration');
      const settings = deps.config().clients[name];
      return { name, view: settings?.view ?? view, pinned: [...(settings?.pinned ?? [])] };
    },
    'tools.cost': async () => costReport(deps),
  };
}

/** One row per paired client and per client with settings, after a row for a client with all of the user's tools. */
export async function costReport(deps: SearchHandlerDeps): Promise<ToolCostReport> {
  const user = deps.currentUser();
  const settings = deps.config().clients;
  const paired = new Map(
    deps
      .clients()
      .filter((c) => !isExpired(c))
      .map((c) => [c.name, c]),
  );
  const names = [...new Set([...paired.keys(), ...Object.keys(settings)])].sort((a, b) => a.localeCompare(b));
  const rows: ClientToolCost[] = [];
  const row = async (name: string | undefined, scope: ClientScope | undefined): Promise<ClientToolCost> => {
    const principal: Principal = {
      user,
      client: { id: `cost:${name ?? ''}`, name: name ?? '\u0000cost', verified: true, transport: 'in-process', ...(scope ? { scope } : {}) },
    };
    const own = name !== undefined ? settings[name] : undefined;
    const pinned = [...(own?.pinned ?? [])];
    return {
      ...(name !== undefined ? { name } : {}),
      scopeText: describeScope(scope ?? { kind: 'all' }),
      view: own?.view ?? 'aggregate',
      pinned,
      aggregate: await toolListCost(deps.gateway.listTools(principal, {}), deps.tokens),
      search: await toolListCost(deps.search.listTools(principal, pinned), deps.tokens),
    };
  };
  rows.push(await row(undefined, undefined));
  for (const name of names) rows.push(await row(name, paired.get(name)?.scope as ClientScope | undefined));
  return { encoding: deps.tokens.encoding, clients: rows };
}
