/**
 * The README's client command, run as written (issue 11): `npx … mcp-inspector --cli --method
 * tools/list -- gatehouse connect --client inspector`, with the Inspector's default timeout, from a
 * fresh home and a minimal environment (HOME, PATH, USER), with `gatehouse` on PATH as `npm link`
 * puts it. The first run completes at once with the honest pending state; the person approves on
 * the page (through the test hook); the next run lists the tools, with no new question.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemorySecretStore } from '../../src/core/secrets.js';
import { startDaemon, type Daemon } from '../../src/node/daemon.js';
import { resolvePaths } from '../../src/node/paths.js';
import { CANARY_SERVER, answer } from '../support/identity-home.js';
import { Screen } from '../support/screen.js';
import { runCommand } from './support/clients.js';
import { BIN, REPO, eventually } from './support/gatehouse.js';

/** The README's Inspector command, exactly as the README prints it. */
function readmeCommand(): string {
  const line = readFileSync(join(REPO, 'README.md'), 'utf8')
    .split('\n')
    .find((l) => l.includes('mcp-inspector --cli'));
  if (!line) throw new Error('README.md has no mcp-inspector command');
  return line.trim();
}

let home: string;
let daemon: Daemon;
/** The daemon's terminal, where the person reads the questions. */
const screen = new Screen();
const questions = () => screen.questions();
let env: Record<string, string>;

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'gh-readme-'));
  const paths = resolvePaths({ platform: process.platform, env: { HOME: home }, homedir: home, uid: process.getuid?.() });
  mkdirSync(paths.configDir, { recursive: true, mode: 0o700 });
  writeFileSync(
    paths.configFile,
    JSON.stringify({ servers: { canary: { type: 'stdio', command: process.execPath, args: [CANARY_SERVER] } }, listen: { http: { enabled: false } } }),
  );
  mkdirSync(join(home, 'no-managed-settings'));
  daemon = await startDaemon({
    paths,
    env: { HOME: home, PATH: process.env.PATH ?? '/usr/bin:/bin' },
    logger: { log: () => undefined },
    managedDir: join(home, 'no-managed-settings'),
    secrets: new MemorySecretStore(),
    human: { terminal: screen, notifier: { notify: () => false }, notice: { notify: () => undefined } },
  });
  await eventually(() => daemon.status().servers[0]?.state === 'ready', 20_000, 'the canary server');
  // `gatehouse` on PATH, as `npm link` puts it.
  const bin = join(home, 'bin');
  mkdirSync(bin);
  symlinkSync(BIN, join(bin, 'gatehouse'));
  env = {
    HOME: home,
    PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    USER: 'gatehouse-test',
    // The machine's npm cache, so that npx fetches Node 22 and the Inspector once, not for every fresh home.
    npm_config_cache: process.env.npm_config_cache ?? join(homedir(), '.npm'),
    npm_config_update_notifier: 'false',
  };
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
});

const run = () => runCommand('sh', ['-c', readmeCommand()], env, 240_000);

describe("the README's client command", () => {
  it('works on a fresh home: at once with no tools while the person is asked, then with the tools once they approved', async () => {
    const first = await run();
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({ tools: [] });
    expect(first.stderr).toContain('"inspector" is not paired yet');
    expect(questions()).toHaveLength(1);
    expect((await answer(questions()[0]!, { decision: 'approve', scope: 'all', expiry: '30' })).status).toBe(200);

    const second = await run();
    expect(second.code, second.stderr).toBe(0);
    expect((JSON.parse(second.stdout) as { tools: { name: string }[] }).tools.map((t) => t.name)).toContain('canary__read');
    expect(questions()).toHaveLength(1);
  }, 300_000);
});
