/**
 * Telemetry from the real daemon (`gatehouse daemon`, built dist/) to an OTLP/HTTP receiver on
 * loopback: the trace of one call with a span per stage, continuing the agent's trace to the
 * server (which records the context it was given), the metrics with the right counts, a refusal
 * with its deny code, a collector that is down or hung, the `${secret:…}` header that must reach the
 * collector and nothing else, and a daemon without telemetry that sends nothing and never loads the SDK.
 */
import { readFileSync, readdirSync, rmSync, statSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeychainSecretStore } from '../../src/node/keystore/keychain.js';
import { userSecretItem } from '../../src/node/secrets/resolver.js';
import { keyringAvailable, startKeyring, type TestKeyring } from '../support/keyring.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedPoint, type ReceivedSpan } from '../support/otlp-receiver.js';
import { connectHttp, textOf, type Connected } from './support/clients.js';
import { REPO, eventually, spawnGatehouse } from './support/gatehouse.js';

const HEADER_SECRET = 'otel_CANARY_5d2e8b17';
const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const AGENT_SPAN = 'b7ad6b7169203331';
const WATCH = join(REPO, 'test', 'fixtures', 'module-watch.mjs');
const TRACE_SERVER = join(REPO, 'test', 'fixtures', 'trace-server.mjs');

let keyring: TestKeyring;
let receiver: OtlpReceiver;
let scratch: string;
let daemon: Awaited<ReturnType<typeof spawnGatehouse>>;
let client: Connected;

const seen = () =>
  readFileSync(join(scratch, 'seen.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { tool: string; traceparent?: string; tracestate?: string });
const loaded = (log: string) => readFileSync(log, 'utf8').split('\n').filter(Boolean);
const callSpans = (spans: ReceivedSpan[], tool: string) => spans.filter((s) => s.name === `tools/call ${tool}`);
const sum = (points: ReceivedPoint[], metric: string, match: Record<string, unknown>) =>
  points.filter((p) => p.metric === metric && Object.entries(match).every(([k, v]) => p.attributes[k] === v)).reduce((n, p) => Math.max(n, p.value), 0);

beforeAll(async () => {
  if (!keyringAvailable()) throw new Error('gnome-keyring-daemon and dbus are needed (apt-get install gnome-keyring dbus)');
  keyring = await startKeyring();
  await new KeychainSecretStore().set(userSecretItem('otel_key'), HEADER_SECRET);
  receiver = await startOtlpReceiver();
  scratch = mkdtempSync(join(tmpdir(), 'gh-telemetry-'));
  daemon = await spawnGatehouse({
    servers: {
      trace: { type: 'stdio', command: process.execPath, args: [TRACE_SERVER], env: { TRACE_LOG: join(scratch, 'seen.jsonl') }, sandbox: { write: [scratch] } },
    },
    config: {
      telemetry: { endpoint: receiver.url, headers: { authorization: 'Bearer ${secret:otel_key}' }, metricsIntervalMs: 300 },
      restrict: { disable: ['trace__erase_everything'] },
    },
    env: { ...keyring.env, NODE_OPTIONS: `--import ${WATCH}`, MODULE_LOG: join(scratch, 'on-modules.log') },
  });
  await eventually(async () => (await daemon.status()).servers.every((s) => s.state === 'ready'), 30_000, 'the trace server');
  client = await connectHttp(daemon.httpUrl, { era: 'legacy', token: daemon.token, shared: true });
}, 60_000);

afterAll(async () => {
  await client?.close();
  await daemon?.stop();
  await receiver?.close();
  await keyring?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('telemetry from the daemon', () => {
  it('exports one trace per call with a span per stage, continuing the agent trace through to the server', async () => {
    const result = await client.client.callTool({
      name: 'trace__echo',
      arguments: { text: 'argument-value-7f3a' },
      _meta: { traceparent: `00-${TRACE_ID}-${AGENT_SPAN}-01`, tracestate: 'agent=1' },
    });
    expect(textOf(result)).toBe('argument-value-7f3a');
    const call = await eventually(() => callSpans(receiver.spans(), 'echo').find((s) => s.traceId === TRACE_ID), 10_000, 'the call span');
    expect(call.parentSpanId).toBe(AGENT_SPAN);
    expect(call.attributes).toMatchObject({
      'mcp.method.name': 'tools/call',
      'gen_ai.tool.name': 'echo',
      'gatehouse.server': 'trace',
      'gatehouse.client': 'test-client',
      'gatehouse.decision': 'ok',
    });
    expect(call.resource['service.name']).toBe('gatehouse');
    const stages = await eventually(
      () => {
        const found = receiver.spans().filter((s) => s.traceId === TRACE_ID && s.parentSpanId === call.spanId);
        return found.length >= 7 ? found : undefined;
      },
      10_000,
      'the stage spans',
    );
    expect(stages.map((s) => s.name).sort()).toEqual(
      ['gatehouse.audit', 'gatehouse.audit', 'gatehouse.identity', 'gatehouse.policy', 'gatehouse.quota', 'gatehouse.approval', 'gatehouse.upstream'].sort(),
    );
    // The server saw the same trace, as a child of Gatehouse's upstream span, with the agent's tracestate.
    const upstream = stages.find((s) => s.name === 'gatehouse.upstream')!;
    expect(seen().find((s) => s.tool === 'echo')).toEqual({ tool: 'echo', traceparent: `00-${TRACE_ID}-${upstream.spanId}-01`, tracestate: 'agent=1' });
    // No argument value or result left the device.
    expect(JSON.stringify(receiver.requests.map((r) => r.body))).not.toContain('argument-value-7f3a');
  });

  it('shows a refused call with its deny code', async () => {
    const refused = await client.client.callTool({ name: 'trace__erase_everything', arguments: {} }).then(
      (r) => r,
      (error: Error) => error,
    );
    expect(String((refused as Error).message ?? JSON.stringify(refused))).toMatch(/Unknown tool/);
    const call = await eventually(() => callSpans(receiver.spans(), 'erase_everything')[0], 10_000, 'the refused call span');
    expect(call.attributes).toMatchObject({ 'gatehouse.decision': 'denied', 'gatehouse.deny.code': 'unknown_tool', 'error.type': 'unknown_tool' });
    expect(call.status?.code).toBe(2);
    expect(seen().some((s) => s.tool === 'erase_everything')).toBe(false);
  });

  it('exports metrics with the calls, refusals and latency counted, and the server state', async () => {
    const points = await eventually(
      () => {
        const all = receiver.points();
        return sum(all, 'gatehouse.calls.refused', { 'gatehouse.deny.code': 'unknown_tool' }) >= 1 ? all : undefined;
      },
      10_000,
      'metrics with the refusal',
    );
    expect(
      sum(points, 'gatehouse.calls', {
        'gen_ai.tool.name': 'echo',
        'gatehouse.decision': 'ok',
        'gatehouse.client': 'test-client',
        'gatehouse.server': 'trace',
      }),
    ).toBe(1);
    expect(
      sum(points, 'gatehouse.calls.refused', {
        'gen_ai.tool.name': 'erase_everything',
        'gatehouse.deny.code': 'unknown_tool',
        'gatehouse.deny.stage': 'policy',
      }),
    ).toBe(1);
    expect(sum(points, 'gatehouse.calls', { 'gen_ai.tool.name': 'erase_everything', 'gatehouse.decision': 'denied' })).toBe(1);
    expect(sum(points, 'mcp.server.operation.duration', { 'gatehouse.server': 'trace', 'mcp.method.name': 'tools/call' })).toBeGreaterThanOrEqual(1);
    expect(sum(points, 'gatehouse.server.state', { 'gatehouse.server': 'trace', 'gatehouse.server.state': 'ready' })).toBe(1);
  });

  it('sends the ${secret:…} header to the collector and nowhere else: not argv, environment, logs, files or status', async () => {
    const traces = receiver.requests.filter((r) => r.signal === 'traces');
    expect(traces.length).toBeGreaterThan(0);
    expect(traces.every((r) => r.headers.authorization === `Bearer ${HEADER_SECRET}`)).toBe(true);
    const status = await daemon.status();
    expect(status.telemetry).toEqual({ enabled: true, endpoint: receiver.url, source: 'config', sampling: 1, headers: ['authorization'] });
    const pid = daemon.child.pid!;
    const sources = [
      { path: 'argv', bytes: readFileSync(`/proc/${pid}/cmdline`) },
      { path: 'environ', bytes: readFileSync(`/proc/${pid}/environ`) },
      { path: 'stderr', bytes: Buffer.from(daemon.stderr()) },
      { path: 'status', bytes: Buffer.from(JSON.stringify(status)) },
      ...filesUnder(daemon.home),
    ];
    expect(sources.length).toBeGreaterThan(5);
    expect(sources.filter((s) => s.bytes.includes(Buffer.from(HEADER_SECRET))).map((s) => s.path)).toEqual([]);
  });

  it('never slows or fails a call while the collector is hung or refusing', async () => {
    receiver.stall(true);
    try {
      await client.client.callTool({ name: 'trace__echo', arguments: { text: 'before the hang' } });
      await eventually(() => receiver.held() > 0, 10_000, 'an export held by the hung collector');
      // Calls go on while an export is held open by the hung collector.
      for (let i = 0; i < 20; i++) expect(textOf(await client.client.callTool({ name: 'trace__echo', arguments: { text: `hung ${i}` } }))).toBe(`hung ${i}`);
    } finally {
      receiver.stall(false);
    }
    receiver.failNext(3, 503);
    for (let i = 0; i < 10; i++) expect(textOf(await client.client.callTool({ name: 'trace__echo', arguments: { text: `down ${i}` } }))).toBe(`down ${i}`);
    // Once the collector answers again, later calls arrive.
    await client.client.callTool({ name: 'trace__echo', arguments: { text: 'after' }, _meta: { traceparent: `00-${'1'.repeat(32)}-${AGENT_SPAN}-01` } });
    await eventually(() => callSpans(receiver.spans(), 'echo').some((s) => s.traceId === '1'.repeat(32)), 15_000, 'a span after the outage');
    expect(loaded(join(scratch, 'on-modules.log')).some((url) => url.includes('/node_modules/@opentelemetry/'))).toBe(true);
  }, 40_000);
});

describe('a daemon without telemetry', () => {
  it('sends nothing and never loads the SDK', async () => {
    const log = join(scratch, 'off-modules.log');
    // A collector of its own, named where an SDK would look for one by itself (the standard variable).
    const quiet = await startOtlpReceiver();
    const off = await spawnGatehouse({
      servers: {
        trace: {
          type: 'stdio',
          command: process.execPath,
          args: [TRACE_SERVER],
          env: { TRACE_LOG: join(scratch, 'off-seen.jsonl') },
          sandbox: { write: [scratch] },
        },
      },
      env: { ...keyring.env, NODE_OPTIONS: `--import ${WATCH}`, MODULE_LOG: log, OTEL_EXPORTER_OTLP_ENDPOINT: quiet.url },
    });
    try {
      await eventually(async () => (await off.status()).servers.every((s) => s.state === 'ready'), 30_000, 'the trace server');
      const offClient = await connectHttp(off.httpUrl, { era: 'legacy', token: off.token });
      const meta = { traceparent: `00-${TRACE_ID}-${AGENT_SPAN}-01`, tracestate: 'agent=1' };
      expect(textOf(await offClient.client.callTool({ name: 'trace__echo', arguments: { text: 'off' }, _meta: meta }))).toBe('off');
      await offClient.close();
      expect((await off.status()).telemetry).toEqual({ enabled: false, reason: 'not configured' });
      // The agent's own context still reaches the server, as it was sent.
      const offSeen = JSON.parse(readFileSync(join(scratch, 'off-seen.jsonl'), 'utf8').trim()) as Record<string, string>;
      expect(offSeen).toEqual({ tool: 'echo', ...meta });
      const urls = loaded(log);
      expect(urls.some((url) => url.includes('/dist/src/node/daemon.js'))).toBe(true);
      expect(urls.filter((url) => url.includes('@opentelemetry') || url.includes('/telemetry/sdk.js'))).toEqual([]);
      expect(quiet.requests).toEqual([]);
    } finally {
      await off.stop();
      await quiet.close();
    }
  }, 60_000);
});

function filesUnder(dir: string): { path: string; bytes: Buffer }[] {
  const out: { path: string; bytes: Buffer }[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const info = statSync(path, { throwIfNoEntry: false });
    if (!info) continue;
    if (info.isDirectory()) out.push(...filesUnder(path));
    else if (info.isFile()) out.push({ path, bytes: readFileSync(path) });
  }
  return out;
}
