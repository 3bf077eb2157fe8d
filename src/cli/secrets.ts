/**
 * `gatehouse secrets set|list|delete`: the values servers get through `${secret:NAME}`, kept in the
 * OS keychain. A value is read from stdin or a hidden prompt, never from the command line (argv is
 * visible to every process on the machine). After a change, the running daemon restarts only the
 * servers whose config refers to that secret.
 */
import { GatehouseError } from '../common/errors.js';
import type { SecretStore } from '../core/secrets.js';
import { loadConfigFile } from '../node/config-file.js';
import { callControl } from '../node/control/control-client.js';
import { openUserKeyStore } from './keystore.js';
import type { GatehousePaths } from '../node/paths.js';
import { USER_SECRET_NAME, USER_SECRET_PREFIX, USER_SECRET_RULE, secretReferences, userSecretItem } from '../node/secrets/resolver.js';
import { parseOptions, type Io } from './login.js';

export const SECRETS_HELP = `Usage:
  gatehouse secrets set NAME       the value comes from stdin, or a hidden prompt on a terminal
  gatehouse secrets list [--json]  names only, with the servers that use each
  gatehouse secrets delete NAME

Servers refer to a secret as \${secret:NAME} in their env values (stdio) or headers (http); only
those servers get it, at start. Setting or deleting one restarts the servers that use it.
A value is never taken from the command line.`;

export interface SecretsIo extends Io {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
}

/** Reads the value: all of stdin when it is not a terminal (one trailing newline dropped), else a prompt that does not echo. */
export async function readSecretValue(io: SecretsIo, name: string): Promise<string> {
  const input = io.stdin;
  if (!input.isTTY || !input.setRawMode) {
    const chunks: Buffer[] = [];
    for await (const chunk of input) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
    return Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '');
  }
  io.err(`Value for ${name} (not shown): `);
  input.setRawMode(true);
  input.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = '';
      const onData = (chunk: Buffer | string): void => {
        for (const ch of chunk.toString()) {
          if (ch === '\r' || ch === '\n') {
            input.off('data', onData);
            io.err('\n');
            resolve(value);
            return;
          }
          if (ch === '\u0003') {
            input.off('data', onData);
            io.err('\n');
            reject(new GatehouseError('cancelled', 'cancelled'));
            return;
          }
          if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
          else value += ch;
        }
      };
      input.on('data', onData);
    });
  } finally {
    input.setRawMode(false);
    input.pause();
  }
}

async function usersOf(paths: GatehousePaths): Promise<Map<string, string[]>> {
  const users = new Map<string, string[]>();
  const loaded = await loadConfigFile(paths.configFile, { dataDir: paths.dataDir });
  if (!loaded.ok) return users;
  for (const [server, config] of Object.entries(loaded.config.servers)) {
    for (const name of secretReferences(config)) users.set(name, [...(users.get(name) ?? []), server]);
  }
  return users;
}

async function tellDaemon(paths: GatehousePaths, name: string, io: Io): Promise<void> {
  try {
    const { restarted } = (await callControl(paths.controlSocketPath, 'secrets.changed', { names: [name] }, 120_000)) as { restarted: string[] };
    if (restarted.length > 0) io.err(`restarted: ${restarted.join(', ')}\n`);
  } catch (error) {
    if (!(error instanceof GatehouseError && error.code === 'daemon_not_running')) throw error;
  }
}

export async function secretsCommand(args: string[], io: SecretsIo, paths: GatehousePaths, store?: SecretStore): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.out(SECRETS_HELP + '\n');
    return sub === undefined ? 2 : 0;
  }
  const { values, positionals } = parseOptions(rest, { json: { type: 'boolean' } });
  if (values.help) {
    io.out(SECRETS_HELP + '\n');
    return 0;
  }
  const keychain = store ?? (await openUserKeyStore(paths));
  const one = (): string => {
    const name = positionals[0];
    if (!name || positionals.length > 1)
      throw new GatehouseError('usage', `give exactly one secret NAME (the value is read from stdin, never from the command line)`);
    if (!USER_SECRET_NAME.test(name)) throw new GatehouseError('usage', `"${name}": ${USER_SECRET_RULE}`);
    return name;
  };
  switch (sub) {
    case 'set': {
      const name = one();
      const value = await readSecretValue(io, name);
      if (value.length === 0) throw new GatehouseError('invalid_secret', 'the value is empty; nothing was stored');
      await keychain.set(userSecretItem(name), value);
      const users = (await usersOf(paths)).get(name) ?? [];
      const where = 'describeFor' in keychain ? (keychain as { describeFor(n: string): string }).describeFor(userSecretItem(name)) : keychain.description;
      io.out(`stored "${name}" in ${where}${users.length ? `; used by ${users.join(', ')}` : '; no server refers to it yet'}\n`);
      await tellDaemon(paths, name, io);
      return 0;
    }
    case 'delete': {
      const name = one();
      if (!(await keychain.delete(userSecretItem(name)))) throw new GatehouseError('unknown_secret', `no secret named "${name}" is stored`);
      io.out(`deleted "${name}"\n`);
      await tellDaemon(paths, name, io);
      return 0;
    }
    case 'list': {
      if (positionals.length > 0) throw new GatehouseError('usage', 'list takes no NAME');
      const stored = (await keychain.list()).filter((n) => n.startsWith(USER_SECRET_PREFIX)).map((n) => n.slice(USER_SECRET_PREFIX.length));
      const users = await usersOf(paths);
      const names = [...new Set([...stored, ...users.keys()])].sort();
      const rows = names.map((name) => ({ name, stored: stored.includes(name), usedBy: users.get(name) ?? [] }));
      if (values.json) io.out(JSON.stringify(rows, null, 2) + '\n');
      else if (rows.length === 0) io.out('no secrets\n');
      else for (const r of rows) io.out(`${r.name}\t${r.stored ? 'stored' : 'MISSING'}\t${r.usedBy.length ? `used by ${r.usedBy.join(', ')}` : 'unused'}\n`);
      return 0;
    }
    default:
      throw new GatehouseError('usage', `unknown secrets subcommand "${sub}"; run \`gatehouse secrets --help\``);
  }
}
