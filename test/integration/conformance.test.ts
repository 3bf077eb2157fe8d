/**
 * The official MCP conformance suite (@modelcontextprotocol/conformance, server scenarios), run twice:
 * against our fixture server directly, then against the same fixture behind Gatehouse. Gatehouse must
 * not change a single scenario's result. How to run it by hand: docs/conformance.md.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFORMANCE_VERSION, runConformance, type ConformanceResults, type ScenarioStatus } from '../support/conformance.js';
import { eventually, startGatehouse, type RunningGatehouse } from './support/gatehouse.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/conformance-server.mjs', import.meta.url));

/** Every server scenario of the pinned suite version (`conformance list --server`, 0.1.16), active and pending. */
const SCENARIOS = [
  'server-initialize',
  'logging-set-level',
  'ping',
  'completion-complete',
  'tools-list',
  'tools-call-simple-text',
  'tools-call-image',
  'tools-call-audio',
  'tools-call-embedded-resource',
  'tools-call-mixed-content',
  'tools-call-with-logging',
  'tools-call-error',
  'tools-call-with-progress',
  'tools-call-sampling',
  'tools-call-elicitation',
  'json-schema-2020-12',
  'elicitation-sep1034-defaults',
  'server-sse-polling',
  'server-sse-multiple-streams',
  'elicitation-sep1330-enums',
  'resources-list',
  'resources-read-text',
  'resources-read-binary',
  'resources-templates-read',
  'resources-subscribe',
  'resources-unsubscribe',
  'prompts-list',
  'prompts-get-simple',
  'prompts-get-with-args',
  'prompts-get-embedded-resource',
  'prompts-get-with-image',
  'dns-rebinding-protection',
] as const;

/**
 * Scenarios the fixture cannot bring to `pass`, with the reason. Everything else must pass.
 * (No scenario fails; this list only holds results short of a clean pass.)
 */
const EXPECTED_NOT_PASSING: Record<string, { status: ScenarioStatus; reason: string }> = {
  'server-sse-polling': {
    status: 'warn',
    reason:
      'Pending in the suite. Its raw POST announces MCP-Protocol-Version 2025-03-26, and SSE priming events ' +
      '(SEP-1699, empty data + retry) and closing a stream mid-call only exist from 2025-11-25 on; the SDK ' +
      'rightly sends neither to an older client, so the two SHOULD checks (priming event, retry field) warn ' +
      'and the tool answers on the open stream.',
  },
};

const SUITE_TIMEOUT_MS = 150_000;

function expectedStatus(scenario: string): ScenarioStatus {
  return EXPECTED_NOT_PASSING[scenario]?.status ?? 'pass';
}

/** Starts the fixture over Streamable HTTP on a free loopback port; resolves once it printed its URL. */
async function startFixtureHttp(): Promise<{ url: string; stop(): Promise<void> }> {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [FIXTURE, '--http', '0'], { stdio: 'pipe' });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`fixture did not start within 15 s\n${stderr}`));
    }, 15_000);
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve((JSON.parse(line) as { url: string }).url);
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fixture exited with ${code}\n${stderr}`));
    });
  });
  return {
    url,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** The direct run, shared by both describes (the second one runs it if the first was filtered out). */
let direct: Promise<ConformanceResults> | undefined;
function directResults(): Promise<ConformanceResults> {
  direct ??= (async () => {
    const fixture = await startFixtureHttp();
    try {
      return await runConformance(fixture.url, { suite: 'all', timeoutMs: SUITE_TIMEOUT_MS });
    } finally {
      await fixture.stop();
    }
  })();
  return direct;
}

describe(`MCP conformance suite ${CONFORMANCE_VERSION} against the fixture server, directly`, () => {
  let results: ConformanceResults;
  beforeAll(async () => {
    results = await directResults();
  }, SUITE_TIMEOUT_MS + 30_000);

  it('runs every server scenario of the pinned suite version, within the time bound', () => {
    expect(results.timedOut, results.output).toBe(false);
    expect([...results.keys()].sort()).toEqual([...SCENARIOS].sort());
  });

  it('passes every scenario except the listed ones, which end exactly as listed', () => {
    const expected = Object.fromEntries(SCENARIOS.map((s) => [s, expectedStatus(s)]));
    expect(Object.fromEntries(results), results.describe()).toEqual(expected);
  });

  it('has no failing check anywhere (the suite exits 0)', () => {
    expect(results.exitCode, results.describe()).toBe(0);
  });
});

describe(`MCP conformance suite ${CONFORMANCE_VERSION} through Gatehouse (/mcp/conf, fixture as a stdio child)`, () => {
  let viaGatehouse: ConformanceResults;
  let directRun: ConformanceResults;
  let gatehouse: RunningGatehouse | undefined;

  beforeAll(
    async () => {
      directRun = await directResults();
      gatehouse = await startGatehouse({ servers: { conf: { type: 'stdio', command: process.execPath, args: [FIXTURE] } } });
      const running = gatehouse;
      await eventually(async () => (await running.status()).servers.find((s) => s.name === 'conf')?.state === 'ready', 30_000, 'the conf server to be ready');
      // The suite cannot send headers itself; runConformance adds the bearer token through a loopback forwarder.
      viaGatehouse = await runConformance(`${running.httpUrl}/mcp/conf`, {
        suite: 'all',
        headers: { Authorization: `Bearer ${running.token}` },
        timeoutMs: SUITE_TIMEOUT_MS,
      });
    },
    2 * SUITE_TIMEOUT_MS + 60_000,
  );

  afterAll(async () => {
    await gatehouse?.stop();
  }, 30_000);

  it('runs the same scenarios as the direct run, within the time bound', () => {
    expect(viaGatehouse.timedOut, viaGatehouse.output).toBe(false);
    expect([...viaGatehouse.keys()].sort()).toEqual([...directRun.keys()].sort());
  });

  it('gives every scenario the same result as the direct run', () => {
    expect(Object.fromEntries(viaGatehouse), `through Gatehouse:\n${viaGatehouse.describe()}\n\ndirect:\n${directRun.describe()}`).toEqual(
      Object.fromEntries(directRun),
    );
  });

  it('gives every check (other than INFO) the same status as the direct run', () => {
    const verdicts = (r: ConformanceResults) => Object.fromEntries([...r.keys()].map((s) => [s, r.verdicts(s)]));
    expect(verdicts(viaGatehouse)).toEqual(verdicts(directRun));
  });
});
