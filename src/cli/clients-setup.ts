/**
 * `gatehouse clients setup [CLIENT]` and `gatehouse clients import CLIENT`: write an MCP client's own
 * config so that it runs the Gatehouse bridge (by absolute path), and move the servers it already
 * runs behind Gatehouse. Every change is backed up and `--undo` restores it byte for byte.
 */
import { homedir } from 'node:os';
import { GatehouseError } from '../common/errors.js';
import { loadConfigFile } from '../node/config-file.js';
import { detectClients } from '../node/clients/clients.js';
import { nodeSelfCommand, type SelfCommand } from '../node/clients/launch.js';
import { CLIENT_IDS, CLIENTS, isClientId, type ClientId } from '../node/clients/registry.js';
import { importClient, setupClient, undoClient, type ClientsContext } from '../node/clients/service.js';
import type { LaunchCheck } from '../node/clients/check.js';
import { callControl } from '../node/control/control-client.js';
import { readFile } from 'node:fs/promises';
import { managedDirFor, readManagedSettings } from '../node/policy/settings.js';
import type { GatehousePaths } from '../node/paths.js';
import { userSecretItem } from '../node/secrets/resolver.js';
import { openUserKeyStore } from './keystore.js';
import { parseOptions, type Io } from './login.js';

export const SETUP_HELP = `Usage:
  gatehouse clients setup                      the supported clients: installed here, and set up or not
  gatehouse clients setup CLIENT [--dry-run] [--undo] [--no-check] [--server NAME | --view search|aggregate]
  gatehouse clients import CLIENT [--dry-run] [--undo] [--no-check] [--secrets store|keep]

CLIENT is one of: ${CLIENT_IDS.join(', ')}.

setup writes (or merges) a "gatehouse" entry into the client's own config file, keeping everything
else in it (comments too), atomically and with a backup; running it again changes nothing. The entry
names the bridge by absolute path, so it works under the client's minimal PATH. Afterwards the entry
is launched exactly as the client will launch it, with the environment that client passes, to
check that it completes the MCP handshake. --dry-run prints the change instead; --undo restores the
file as it was. --server NAME gives the client one server alone; --view search gives it the search
view (find_tools and call_tool instead of every tool; docs/search.md).

import moves the MCP servers configured in that client behind Gatehouse: they are added to
Gatehouse's config, credentials written in their env or headers go to your key store as secrets
(--secrets keep leaves them in Gatehouse's config instead), and the client's entries are replaced
by the Gatehouse entry. With a managed policy, only servers the organisation's catalog provides
are moved; the others are listed and left alone. --undo restores both files and deletes the secrets.`;

function contextFor(io: Io & { self?: SelfCommand }, paths: GatehousePaths): ClientsContext {
  return {
    place: { platform: process.platform, home: io.env.HOME && io.env.HOME !== '' ? io.env.HOME : homedir(), env: io.env },
    stateDir: paths.stateDir,
    configFile: paths.configFile,
    self: io.self ?? nodeSelfCommand(),
  };
}

function clientArg(positionals: string[], required: boolean): ClientId | undefined {
  const name = positionals[0];
  if (positionals.length > 1) throw new GatehouseError('usage', 'give one CLIENT');
  if (name === undefined) {
    if (required) throw new GatehouseError('usage', `give the CLIENT: one of ${CLIENT_IDS.join(', ')}`);
    return undefined;
  }
  if (!isClientId(name)) throw new GatehouseError('usage', `"${name}" is not a supported client; supported: ${CLIENT_IDS.join(', ')}`);
  return name;
}

function describeCheck(check: LaunchCheck | undefined, client: ClientId): string {
  if (!check) return '';
  if (!check.ok) return `the entry was written, but launching it failed: ${check.reason}\n`;
  const pairing = check.pairing
    ? `; "${client}" is not paired yet: approve it on the Gatehouse pairing page (the desktop notification or the daemon's terminal links to it)`
    : '';
  return `checked: the entry started the bridge and completed the MCP handshake in ${check.ms} ms${pairing}\n`;
}

/** `clients setup` and `clients import`. */
export async function setupCommand(sub: 'setup' | 'import', args: string[], io: Io & { self?: SelfCommand }, paths: GatehousePaths): Promise<number> {
  const { values, positionals } = parseOptions(args, {
    'dry-run': { type: 'boolean' },
    undo: { type: 'boolean' },
    'no-check': { type: 'boolean' },
    server: { type: 'string' },
    view: { type: 'string' },
    secrets: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    io.out(SETUP_HELP + '\n');
    return 0;
  }
  if (values['dry-run'] && values.undo) throw new GatehouseError('usage', '--dry-run and --undo do not go together');
  const ctx = contextFor(io, paths);
  const id = clientArg(positionals, sub === 'import');
  if (id === undefined) {
    const found = await detectClients(ctx.place);
    if (values.json) io.out(JSON.stringify(found, null, 2) + '\n');
    else {
      const rows = found.map((c) => [c.id, c.installed ? 'yes' : 'no', c.configured ? 'yes' : 'no', c.problem ? `${c.file} (${c.problem})` : c.file]);
      const widths = [0, 1, 2].map((i) => Math.max(...[['CLIENT', 'INSTALLED', 'SET UP'][i]!, ...rows.map((r) => r[i]!)].map((s) => s.length)));
      for (const row of [['CLIENT', 'INSTALLED', 'SET UP', 'CONFIG FILE'], ...rows])
        io.out(row.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c)).join('  ') + '\n');
    }
    return 0;
  }
  const title = CLIENTS[id].title;
  // Opened once, when first needed: every command that stores something says where.
  let opened: ReturnType<typeof openUserKeyStore> | undefined;
  const keys = () => (opened ??= openUserKeyStore(paths));

  if (values.undo) {
    const undone = await undoClient(ctx, id, sub, keys);
    for (const file of undone.restored) io.out(`restored ${file}\n`);
    for (const item of undone.secrets) io.out(`deleted the secret ${item.replace(/^secret\//, '')}\n`);
    if (sub === 'import')
      await tellDaemon(
        paths,
        undone.secrets.map((s) => s.replace(/^secret\//, '')),
      );
    return 0;
  }

  if (sub === 'setup') {
    if (values.secrets !== undefined) throw new GatehouseError('usage', '--secrets goes with import');
    if (values.view !== undefined && values.view !== 'search' && values.view !== 'aggregate')
      throw new GatehouseError('usage', '--view is search or aggregate');
    if (values.view !== undefined && values.server !== undefined)
      throw new GatehouseError('usage', '--view and --server do not go together (the search view spans every server)');
    const extra = [
      ...(values.server !== undefined ? ['--server', String(values.server)] : []),
      ...(values.view !== undefined ? ['--view', String(values.view)] : []),
    ];
    const extraArgs = extra.length > 0 ? extra : undefined;
    const result = await setupClient(ctx, id, {
      ...(values['dry-run'] ? { dryRun: true } : {}),
      check: !values['no-check'],
      ...(extraArgs ? { extraArgs } : {}),
    });
    if (values['dry-run']) {
      io.out(result.changed ? `${result.diff}\n` : `${result.file} already has the Gatehouse entry; nothing would change\n`);
      return 0;
    }
    io.out(
      result.changed
        ? `${title}: wrote the Gatehouse entry to ${result.file} (the previous file is kept for --undo)\n`
        : `${title}: ${result.file} already has the Gatehouse entry; nothing changed\n`,
    );
    io.out(`it runs: ${[result.launch.command, ...result.launch.args].join(' ')}\n`);
    io.out(describeCheck(result.check, id));
    return result.check && !result.check.ok ? 1 : 0;
  }

  if (values.server !== undefined || values.view !== undefined) throw new GatehouseError('usage', '--server and --view go with setup');
  const secrets = values.secrets === undefined ? 'store' : String(values.secrets);
  if (secrets !== 'store' && secrets !== 'keep') throw new GatehouseError('usage', '--secrets is store or keep');
  // Gatehouse's config must be valid before anything is added to it; the servers are compared as written (secret references, not values).
  const loaded = await loadConfigFile(paths.configFile, { dataDir: paths.dataDir });
  if (!loaded.ok) throw new GatehouseError('config_invalid', loaded.error);
  const existing = rawServers(await readFile(paths.configFile, 'utf8').catch(() => '{}')) ?? {};
  const managed = await managedServers(paths);
  const result = await importClient(ctx, id, {
    secrets,
    existing,
    keys,
    ...(values['dry-run'] ? { dryRun: true } : {}),
    check: !values['no-check'],
    ...(managed ? { managed } : {}),
  });
  const { plan } = result;
  for (const m of plan.moved) io.out(`${m.entry}: moved behind Gatehouse as "${m.server}"${m.note ? ` (${m.note})` : ''}\n`);
  const where = plan.secrets.length > 0 ? (await keys().catch(() => undefined))?.describeFor(userSecretItem(plan.secrets[0]!.name)) : undefined;
  for (const s of plan.secrets) io.out(`${s.from}: ${values['dry-run'] ? 'would be' : 'is'} kept as the secret ${s.name} in ${where ?? 'your key store'}\n`);
  for (const l of plan.leftAlone) io.out(`${l.entry}: left in ${title}'s config: ${l.reason}\n`);
  if (values['dry-run']) {
    if (result.diff.length > 0) io.out(result.diff.join('\n') + '\n');
    else io.out('nothing would change\n');
    return 0;
  }
  if (plan.secrets.length > 0 || Object.keys(plan.add).length > 0)
    await tellDaemon(
      paths,
      plan.secrets.map((s) => s.name),
    );
  io.out(describeCheck(result.check, id));
  return result.check && !result.check.ok ? 1 : 0;
}

/** The servers as written in config.json (secret references, not values), or undefined when unreadable. */
function rawServers(text: string): Record<string, unknown> | undefined {
  try {
    const parsed = JSON.parse(text) as { servers?: Record<string, unknown> };
    return parsed.servers ?? {};
  } catch {
    return undefined;
  }
}

/**
 * In managed mode, the servers the organisation's catalog provides (only those are moved). Asks the
 * running daemon, which holds the verified bundle; without it, a managed device cannot tell and refuses.
 */
async function managedServers(paths: GatehousePaths): Promise<{ servers: string[] } | undefined> {
  const managedDir = managedDirFor(process.platform);
  const settings = await readManagedSettings(managedDir);
  if (settings.kind === 'absent') return undefined;
  try {
    const answer = (await callControl(paths.controlSocketPath, 'policy.servers', {}, 10_000)) as { mode: string; servers: string[] };
    return answer.mode === 'unmanaged' ? undefined : { servers: answer.servers };
  } catch (error) {
    throw new GatehouseError(
      'daemon_not_running',
      `this device has a managed policy, and only the running daemon can tell which servers it allows: start Gatehouse, then import again (${(error as Error).message})`,
    );
  }
}

/** Applies the new servers and secrets now, if the daemon runs (it would also see the file change). */
async function tellDaemon(paths: GatehousePaths, secrets: string[]): Promise<void> {
  try {
    await callControl(paths.controlSocketPath, 'config.reload', {}, 30_000);
    if (secrets.length > 0) await callControl(paths.controlSocketPath, 'secrets.changed', { names: secrets.slice(0, 100) }, 60_000);
  } catch (error) {
    if (!(error instanceof GatehouseError && error.code === 'daemon_not_running')) throw error;
  }
}
