/**
 * `gatehouse clients list|revoke|pair`: paired clients. There is no way to *grant* a credential
 * from here: `pair` only asks, and the person answers on the human channel's page (see
 * src/node/identity/pairing.ts), where an agent that can run this command cannot reach.
 */
import { join } from 'node:path';
import { GatehouseError } from '../common/errors.js';
import { describeScope, type ClientScope } from '../core/identity/client-scope.js';
import { ClientRegistry, isExpired } from '../node/client-registry.js';
import { callControl } from '../node/control/control-client.js';
import { PAIRING_DEADLINE_MS } from '../node/identity/pairing.js';
import { ensureUserOnlyDir, type GatehousePaths } from '../node/paths.js';
import { parseOptions, type Io } from './login.js';

export const CLIENTS_HELP = `Usage:
  gatehouse clients list [--json]   paired clients: scope, expiry, last seen
  gatehouse clients revoke NAME     the client loses access at once, live sessions included
  gatehouse clients pair NAME       asks you, on the Gatehouse pairing page, to pair an HTTP client
                                    that takes a fixed token; prints the token once approved
  gatehouse clients setup [CLIENT]  write Gatehouse into an IDE's own config (Claude Desktop, Claude
                                    Code, Cursor, VS Code, Windsurf, Zed, Codex CLI, Gemini CLI)
  gatehouse clients import CLIENT   move the servers an IDE runs behind Gatehouse
                                    (setup and import: --dry-run, --undo; see clients setup --help)

A bridge (gatehouse connect) asks to pair by itself the first time it connects, and keeps its
credential in the keychain. HTTP clients that speak MCP authorization sign in with OAuth and are
paired the same way. Consent is given only on the pairing page (opened from the desktop
notification or the daemon's terminal), never from the command line.`;

async function notify(paths: GatehousePaths): Promise<void> {
  try {
    await callControl(paths.controlSocketPath, 'clients.reload', {}, 5000);
  } catch (error) {
    if (!(error instanceof GatehouseError && error.code === 'daemon_not_running')) throw error;
  }
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
}

export async function clientsCommand(args: string[], io: Io, paths: GatehousePaths): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.out(CLIENTS_HELP + '\n');
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'setup' || sub === 'import') {
    const { setupCommand } = await import('./clients-setup.js');
    return setupCommand(sub, rest, io, paths);
  }
  const { values, positionals } = parseOptions(rest, { json: { type: 'boolean' } });
  if (values.help) {
    io.out(CLIENTS_HELP + '\n');
    return 0;
  }
  await ensureUserOnlyDir(paths.stateDir);
  const registry = new ClientRegistry(join(paths.stateDir, 'clients.json'));
  const one = (): string => {
    const name = positionals[0];
    if (!name || positionals.length > 1) throw new GatehouseError('usage', 'give exactly one client NAME');
    return name;
  };
  switch (sub) {
    case 'list': {
      const records = registry.list().map((r) => ({
        name: r.name,
        scope: describeScope((r.scope as ClientScope | undefined) ?? { kind: 'all' }),
        via: r.via ?? null,
        createdAt: r.createdAt,
        expiresAt: r.expiresAt ?? null,
        expired: isExpired(r),
        lastSeen: r.lastSeen ?? null,
      }));
      if (values.json) io.out(JSON.stringify(records, null, 2) + '\n');
      else if (records.length === 0) io.out('no clients are paired\n');
      else
        io.out(
          table(
            ['NAME', 'SCOPE', 'PAIRED', 'EXPIRES', 'LAST SEEN'],
            records.map((r) => [r.name, r.scope, r.createdAt, r.expired ? `EXPIRED ${r.expiresAt}` : (r.expiresAt ?? 'never'), r.lastSeen ?? 'never']),
          ).join('\n') + '\n',
        );
      return 0;
    }
    case 'revoke': {
      const name = one();
      if (!registry.revoke(name)) throw new GatehouseError('unknown_client', `no client named "${name}" is paired`);
      io.out(`revoked "${name}"\n`);
      await notify(paths);
      return 0;
    }
    case 'pair': {
      const name = one();
      io.err(`Asked to pair "${name}": answer on the Gatehouse pairing page (see the desktop notification or the daemon's terminal).\n`);
      const result = (await callControl(paths.controlSocketPath, 'clients.pair', { name }, PAIRING_DEADLINE_MS + 30_000)) as {
        token: string;
        scope: ClientScope;
        expiresAt?: string;
      };
      io.out(`${result.token}\n`);
      io.err(
        `Paired "${name}" (${describeScope(result.scope)}${result.expiresAt ? `, until ${result.expiresAt}` : ''}). The token above is shown once; Gatehouse keeps only its hash.\n`,
      );
      return 0;
    }
    case 'add':
      throw new GatehouseError(
        'usage',
        '`gatehouse clients add` is gone: clients are paired with your consent on the pairing page. A bridge asks by itself when it first connects; for an HTTP client that takes a fixed token, run `gatehouse clients pair NAME`',
      );
    default:
      throw new GatehouseError('usage', `unknown clients subcommand "${sub}"; run \`gatehouse clients --help\``);
  }
}
