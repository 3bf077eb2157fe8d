/**
 * `clients setup`, `clients import` and their `--undo`, as one service for the command line and
 * the console's Clients screen: plan (read only), then apply with backups and a journal, then
 * check the written entry by launching it as the client would.
 */
import { GatehouseError } from '../../common/errors.js';
import { secretName, type SecretStore } from '../../core/secrets.js';
import { userSecretItem } from '../secrets/resolver.js';
import { checkLaunch, type LaunchCheck } from './check.js';
import { planClientAfterImport, planGatehouseConfig, planImport, planSetup, readClientConfig, serverEntries, type ImportPlan } from './clients.js';
import { applyChanges, describeChange, lastOperation, undoOperation, type FileChange } from './files.js';
import { bridgeLaunch, type SelfCommand } from './launch.js';
import { CLIENTS, launchEnvironmentOf, type BridgeLaunch, type ClientId, type Place } from './registry.js';

export interface ClientsContext {
  place: Place;
  stateDir: string;
  /** Gatehouse's own config file (import adds servers to it). */
  configFile: string;
  /** How this Gatehouse is run by absolute path (an npm install's Node and bin script, or the packaged app's command). */
  self: SelfCommand;
}

export interface SetupResult {
  client: ClientId;
  file: string;
  changed: boolean;
  diff?: string;
  launch: BridgeLaunch;
  check?: LaunchCheck;
}

export interface SetupOptions {
  dryRun?: boolean;
  /** Launch the written entry afterwards (default true). */
  check?: boolean;
  extraArgs?: string[];
}

function launchFor(ctx: ClientsContext, id: ClientId, extraArgs?: string[]): BridgeLaunch {
  return bridgeLaunch(ctx.self, id, { env: ctx.place.env, ...(extraArgs ? { extraArgs } : {}) });
}

/** Runs the entry as the client would: its command, with the environment that client passes. */
export function checkEntry(ctx: ClientsContext, id: ClientId, launch: BridgeLaunch): Promise<LaunchCheck> {
  return checkLaunch(launch.command, launch.args, launchEnvironmentOf(CLIENTS[id], ctx.place, ctx.place.env, launch.env));
}

export async function setupClient(ctx: ClientsContext, id: ClientId, options: SetupOptions = {}): Promise<SetupResult> {
  const client = CLIENTS[id];
  const launch = launchFor(ctx, id, options.extraArgs);
  const { change } = await planSetup(client, ctx.place, launch);
  const changed = change.before !== change.after;
  if (options.dryRun) return { client: id, file: change.file, changed, ...(changed ? { diff: describeChange(change) } : {}), launch };
  if (changed) await applyChanges(ctx.stateDir, { client: id, kind: 'setup' }, [change]);
  const check = options.check === false ? undefined : await checkEntry(ctx, id, launch);
  return { client: id, file: change.file, changed, launch, ...(check ? { check } : {}) };
}

export interface ImportResult {
  client: ClientId;
  plan: ImportPlan;
  changes: FileChange[];
  diff: string[];
  launch: BridgeLaunch;
  check?: LaunchCheck;
}

export interface ImportRunOptions {
  dryRun?: boolean;
  check?: boolean;
  secrets: 'store' | 'keep';
  /** Where secrets go (the user's key store); required when the plan moves any. */
  keys?: () => Promise<SecretStore>;
  /** Managed mode: the catalog's servers (only those are moved). Undefined: unmanaged. */
  managed?: { servers: string[] };
  /** The servers Gatehouse's config has now, as written. */
  existing: Record<string, unknown>;
}

export async function importClient(ctx: ClientsContext, id: ClientId, options: ImportRunOptions): Promise<ImportResult> {
  const client = CLIENTS[id];
  const launch = launchFor(ctx, id);
  const { file, text, doc } = await readClientConfig(client, ctx.place);
  const plan = planImport(serverEntries(client, doc), {
    existing: options.existing,
    secrets: options.secrets,
    client: id,
    ...(options.managed ? { managed: options.managed } : {}),
  });
  const clientChange = planClientAfterImport(
    client,
    file,
    text,
    plan.moved.map((m) => m.entry),
    client.entry(launch),
  );
  const configChange = await planGatehouseConfig(ctx.configFile, plan.add);
  const changes = [configChange, clientChange];
  const diff = changes.filter((c) => c.before !== c.after).map(describeChange);
  if (options.dryRun) return { client: id, plan, changes, diff, launch };

  // Secrets first: if the key store refuses, nothing else has changed.
  const stored: string[] = [];
  if (plan.secrets.length > 0) {
    if (!options.keys) throw new GatehouseError('keychain_unavailable', 'no key store to keep the imported credentials in');
    const keys = await options.keys();
    try {
      for (const s of plan.secrets) {
        await keys.set(userSecretItem(s.name), s.value);
        stored.push(userSecretItem(s.name));
      }
    } catch (error) {
      for (const item of stored) await keys.delete(secretName(item)).catch(() => false);
      throw error;
    }
  }
  await applyChanges(ctx.stateDir, { client: id, kind: 'import', secrets: stored }, changes);
  const check = options.check === false ? undefined : await checkEntry(ctx, id, launch);
  return { client: id, plan, changes, diff, launch, ...(check ? { check } : {}) };
}

/**
 * Undoes the newest setup or import for a client: its files come back byte for byte and the
 * secrets an import stored are deleted. `kind` names what the person asked to undo; a newer
 * operation of the other kind must be undone first.
 */
export async function undoClient(
  ctx: ClientsContext,
  id: ClientId,
  kind: 'setup' | 'import',
  keys?: () => Promise<SecretStore>,
): Promise<{ restored: string[]; secrets: string[] }> {
  const operation = await lastOperation(ctx.stateDir, id);
  if (!operation) throw new GatehouseError('nothing_to_undo', `Gatehouse has not changed ${CLIENTS[id].title}'s configuration (or it was undone already)`);
  if (operation.kind !== kind) {
    throw new GatehouseError(
      'undo_order',
      `the last change to ${CLIENTS[id].title} was an ${operation.kind}: undo it first with \`gatehouse clients ${operation.kind} ${id} --undo\``,
    );
  }
  const restored = await undoOperation(ctx.stateDir, operation);
  const deleted: string[] = [];
  if (operation.secrets.length > 0 && keys) {
    const store = await keys();
    for (const item of operation.secrets) if (await store.delete(secretName(item)).catch(() => false)) deleted.push(item);
  }
  return { restored, secrets: deleted };
}
