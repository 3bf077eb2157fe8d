/**
 * The MCP Inspector's command-line mode, an MCP client Gatehouse did not write, driving
 * `gatehouse connect` as its stdio server: it must list and call tools through the bridge in
 * both protocol eras, like any IDE.
 *
 * The Inspector is `@modelcontextprotocol/inspector` v2 (`mcp-inspector --cli`; the separate
 * `@modelcontextprotocol/inspector-cli` package is the deprecated v1 line). v2 needs Node 22.19+,
 * so on Node 20 the test runs it under a Node 22 fetched once with `npx -y -p node@22`.
 */
import { runCommand } from './support/clients.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVERYTHING, MEMORY } from '../support/servers.js';
import { BIN, startGatehouse, type RunningGatehouse } from './support/gatehouse.js';

const INSPECTOR_PACKAGE = '@modelcontextprotocol/inspector';

/** The Inspector's launcher script (its `mcp-inspector` bin). */
function inspectorLauncher(): string {
  let manifestPath: string;
  try {
    manifestPath = createRequire(import.meta.url).resolve(`${INSPECTOR_PACKAGE}/package.json`);
  } catch {
    throw new Error(`${INSPECTOR_PACKAGE} is not installed: it is a devDependency of Gatehouse (npm install)`);
  }
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { version: string; bin: Record<string, string> };
  if (!manifest.version.startsWith('2.')) throw new Error(`expected ${INSPECTOR_PACKAGE} 2.x, found ${manifest.version}`);
  return join(dirname(manifestPath), manifest.bin['mcp-inspector']!);
}

/** A Node that can run the Inspector: this one if it is new enough, otherwise Node 22 from npm. */
async function node22(): Promise<string> {
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  if (major > 22 || (major === 22 && minor >= 19)) return process.execPath;
  const run = await exec('npx', ['-y', '-p', 'node@22', 'node', '-p', 'process.execPath'], { ...process.env }, 120_000);
  if (run.code !== 0) throw new Error(`could not get Node 22 with npx: ${run.stderr}`);
  return run.stdout.trim();
}

const exec = runCommand;

let gh: RunningGatehouse;
let node: string;
let launcher: string;
let tokenFile: string;
let data: string;

beforeAll(async () => {
  launcher = inspectorLauncher();
  data = mkdtempSync(join(tmpdir(), 'gh-inspector-data-'));
  [node, gh] = await Promise.all([
    node22(),
    startGatehouse({
      servers: {
        everything: { type: 'stdio', command: process.execPath, args: [EVERYTHING(), 'stdio'] },
        memory: {
          type: 'stdio',
          command: process.execPath,
          args: [MEMORY()],
          env: { MEMORY_FILE_PATH: join(data, 'memory.jsonl') },
          sandbox: { write: [data] },
        },
      },
      clients: ['inspector'],
    }),
  ]);
  // The bridge reads its credential from a file: no secret on any command line.
  tokenFile = join(gh.home, 'inspector.token');
  writeFileSync(tokenFile, gh.tokens.inspector!, { mode: 0o600 });
}, 150_000);
afterAll(async () => {
  await gh?.stop();
  if (data) rmSync(data, { recursive: true, force: true });
});

interface InspectorRun {
  code: number | null;
  json: { result?: Record<string, unknown>; error?: { message: string } };
  stderr: string;
}

/** `mcp-inspector --cli --format json <inspector args> -- node bin/gatehouse.js connect <bridge args>`. */
async function inspect(inspectorArgs: string[], bridgeArgs: string[] = ['--client', 'inspector', '--token-file', tokenFile]): Promise<InspectorRun> {
  const args = [
    launcher,
    '--cli',
    '--format',
    'json',
    '-e',
    `GATEHOUSE_HOME=${gh.home}`,
    ...inspectorArgs,
    '--',
    process.execPath,
    BIN,
    'connect',
    ...bridgeArgs,
  ];
  // The Inspector keeps state under ~/.mcp-inspector; give it the test's throwaway home.
  const run = await exec(node, args, { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: gh.home }, 30_000);
  const line = (run.code === 0 ? run.stdout : run.stdout || run.stderr.split('\n').find((l) => l.startsWith('{"error"')) || '{}').trim();
  let json: InspectorRun['json'];
  try {
    json = JSON.parse(line) as InspectorRun['json'];
  } catch {
    throw new Error(`the Inspector printed no JSON (exit ${run.code})\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
  }
  return { code: run.code, json, stderr: run.stderr };
}

const toolNames = (run: InspectorRun) => ((run.json.result?.tools ?? []) as { name: string }[]).map((t) => t.name);
const text = (run: InspectorRun) => ((run.json.result?.content ?? []) as { type: string; text?: string }[]).map((c) => c.text ?? '').join('');

describe.each([
  ["2025-era (the Inspector's default)", 'legacy', []],
  ['2026-07-28', 'modern', ['--protocol-era', 'modern']],
] as const)('the MCP Inspector CLI through gatehouse connect, %s', (_title, era, eraArgs) => {
  it('lists the tools of every server under <server>__<tool> names', async () => {
    const run = await inspect([...eraArgs, '--method', 'tools/list']);
    expect(run.code, run.stderr).toBe(0);
    const names = toolNames(run);
    expect(names).toEqual(expect.arrayContaining(['everything__echo', 'everything__get-sum', 'memory__read_graph', 'memory__create_entities']));
    expect(names.every((n) => /^(everything|memory)__/.test(n))).toBe(true);
  });

  it('calls a tool and prints its result', async () => {
    const run = await inspect([...eraArgs, '--method', 'tools/call', '--tool-name', 'everything__echo', '--tool-arg', 'message=hello from the Inspector']);
    expect(run.code, run.stderr).toBe(0);
    expect(text(run)).toBe('Echo: hello from the Inspector');
    expect(run.json.result?.isError).not.toBe(true);
    // Only a 2026-07-28 result names its server in _meta: proof of which era the two sides spoke.
    const serverInfo = (run.json.result?._meta as Record<string, { name?: string }> | undefined)?.['io.modelcontextprotocol/serverInfo'];
    expect(serverInfo?.name).toBe(era === 'modern' ? 'gatehouse' : undefined);
  });

  it('sees one server alone under its own names with --server', async () => {
    const run = await inspect([...eraArgs, '--method', 'tools/list'], ['--client', 'inspector', '--token-file', tokenFile, '--server', 'memory']);
    expect(run.code, run.stderr).toBe(0);
    expect(toolNames(run)).toContain('read_graph');
    expect(toolNames(run).some((n) => n.includes('__'))).toBe(false);
  });
});

describe('the MCP Inspector CLI, refused', () => {
  it("fails, with the bridge's reason on its stderr, when the client comes without its token", async () => {
    const run = await inspect(['--method', 'tools/list'], ['--client', 'inspector']);
    expect(run.code).not.toBe(0);
    expect(run.json.error?.message).toBeDefined();
    expect(run.stderr).toContain('gatehouse connect: Gatehouse refused the connection: client "inspector" has a credential');
  });
});
