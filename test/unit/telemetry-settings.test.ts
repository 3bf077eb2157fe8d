/**
 * Whether telemetry is on and where it goes: the `telemetry` config field, the managed override in
 * policy.json, and the choice between them; and the `${secret:NAME}` headers.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig, TelemetrySchema } from '../../src/common/config.js';
import { MemorySecretStore } from '../../src/core/secrets.js';
import { loadConfigFile } from '../../src/node/config-file.js';
import { LiveConfig } from '../../src/node/daemon/live-config.js';
import { readTelemetryPolicy } from '../../src/node/policy/settings.js';
import { SecretScrubber, userSecretItem } from '../../src/node/secrets/resolver.js';
import { chooseTelemetry, resolveTelemetryHeaders } from '../../src/node/telemetry/open.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-telemetry-'));
  chmodSync(dir, 0o755);
  dirs.push(dir);
  return dir;
}
function managed(settings: unknown, mode = 0o644): string {
  const dir = tempDir();
  writeFileSync(join(dir, 'policy.json'), JSON.stringify(settings), { mode });
  chmodSync(join(dir, 'policy.json'), mode);
  return dir;
}
const user = TelemetrySchema.parse({ endpoint: 'http://127.0.0.1:4318' });
const org = { endpoint: 'https://otel.example.com', headers: { 'x-api-key': '${secret:otel}' } };

describe('the telemetry config field', () => {
  it('is off when absent, and takes defaults for what is left out', () => {
    const parsed = parseConfig({});
    expect(parsed.ok && parsed.config.telemetry).toBeUndefined();
    expect(TelemetrySchema.parse({ endpoint: 'http://localhost:4318' })).toEqual({
      endpoint: 'http://localhost:4318',
      headers: {},
      sampling: 1,
      serviceName: 'gatehouse',
      metricsIntervalMs: 60_000,
    });
  });

  it.each([
    ['an endpoint with credentials', { endpoint: 'https://user:key@otel.example.com' }, 'no credentials'],
    ['an endpoint with a query', { endpoint: 'https://otel.example.com/?api_key=1' }, 'no credentials, query'],
    ['a non-HTTP endpoint', { endpoint: 'ftp://otel.example.com' }, 'http:// or https://'],
    ['a sampling ratio above 1', { endpoint: 'http://localhost:4318', sampling: 1.5 }, 'sampling'],
    ['an unknown field', { endpoint: 'http://localhost:4318', exporter: 'grpc' }, 'exporter'],
  ])('refuses %s with a message that says what is wrong', (_what, telemetry, expected) => {
    const parsed = parseConfig({ telemetry });
    expect(parsed.ok).toBe(false);
    expect(JSON.stringify(!parsed.ok && parsed.problems)).toContain(expected);
  });

  it('keeps ${secret:NAME} in telemetry headers as a reference, and refuses one in the endpoint', async () => {
    const dir = tempDir();
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ telemetry: { endpoint: 'http://localhost:4318', headers: { authorization: 'Bearer ${secret:otel_key}' } } }));
    const ok = await loadConfigFile(file, { dataDir: dir });
    expect(ok.ok && ok.config.telemetry?.headers).toEqual({ authorization: 'Bearer ${secret:otel_key}' });
    writeFileSync(file, JSON.stringify({ telemetry: { endpoint: 'http://localhost:4318/${secret:otel_key}' } }));
    const refused = await loadConfigFile(file, { dataDir: dir });
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.error).toContain('telemetry.endpoint');
  });
});

describe('changing telemetry while Gatehouse runs', () => {
  it('says that the change takes effect at the next start', async () => {
    const before = parseConfig({});
    const after = parseConfig({ telemetry: { endpoint: 'http://127.0.0.1:4318' } });
    if (!before.ok || !after.ok) throw new Error('test configs must parse');
    const logged: { event: string; fields?: Record<string, unknown> }[] = [];
    const live = new LiveConfig(before.config, {
      load: async () => ({ ok: true, config: after.config }),
      logger: { log: (_level, event, fields) => void logged.push({ event, ...(fields ? { fields } : {}) }) },
      record: () => undefined,
      restrictionsChanged: () => undefined,
      applyServers: async () => ({ added: [], removed: [], restarted: [], unchanged: [] }),
    });
    await live.reload();
    expect(logged.find((l) => l.event === 'config.restart_needed')?.fields?.fields).toEqual(['telemetry']);
  });
});

describe('the managed telemetry rule', () => {
  it('leaves it to the user when there is no policy.json, or one without telemetry', () => {
    expect(readTelemetryPolicy(tempDir())).toEqual({ kind: 'unmanaged' });
    expect(readTelemetryPolicy(managed({ trust: ['root.pub'] }))).toEqual({ kind: 'unmanaged' });
  });

  it('forces telemetry on with the organisation collector', () => {
    const rule = readTelemetryPolicy(managed({ telemetry: { mode: 'on', ...org } }));
    expect(rule).toMatchObject({ kind: 'on', config: { endpoint: org.endpoint, headers: org.headers, sampling: 1 } });
  });

  it('forces telemetry off', () => {
    expect(readTelemetryPolicy(managed({ telemetry: { mode: 'off' } }))).toMatchObject({ kind: 'off' });
  });

  it('turns telemetry off when the rule is malformed, naming the field', () => {
    const rule = readTelemetryPolicy(managed({ telemetry: { mode: 'on', endpoint: 'not a url' } }));
    expect(rule.kind).toBe('off');
    expect(rule.kind === 'off' && rule.by).toContain('telemetry.endpoint');
  });

  it.skipIf(process.getuid?.() !== 0)('turns telemetry off when a user other than root could have written policy.json', () => {
    const rule = readTelemetryPolicy(managed({ telemetry: { mode: 'on', ...org } }, 0o666));
    expect(rule.kind).toBe('off');
    expect(rule.kind === 'off' && rule.by).toContain('writable by group or others');
  });
});

describe('choosing telemetry', () => {
  it('is off unless the config or the managed settings ask for it', () => {
    expect(chooseTelemetry(undefined, { kind: 'unmanaged' })).toEqual({ on: false, reason: 'not configured' });
  });
  it('follows the user config when nothing is managed', () => {
    expect(chooseTelemetry(user, { kind: 'unmanaged' })).toEqual({ on: true, config: user, source: 'config' });
  });
  it('lets the managed settings force it off over the user config', () => {
    expect(chooseTelemetry(user, { kind: 'off', by: '/etc/gatehouse/policy.json' })).toMatchObject({ on: false, reason: expect.stringContaining('managed') });
  });
  it('lets the managed settings force it on with their endpoint, whatever the user config says', () => {
    const config = TelemetrySchema.parse(org);
    expect(chooseTelemetry(user, { kind: 'on', config, by: 'x' })).toEqual({ on: true, config, source: 'managed' });
    expect(chooseTelemetry(undefined, { kind: 'on', config, by: 'x' })).toEqual({ on: true, config, source: 'managed' });
  });
});

async function store(values: Record<string, string>): Promise<MemorySecretStore> {
  const secrets = new MemorySecretStore();
  for (const [name, value] of Object.entries(values)) await secrets.set(userSecretItem(name), value);
  return secrets;
}

describe('telemetry headers', () => {
  it('resolves ${secret:NAME} from the key store and teaches the scrubber the value', async () => {
    const scrubber = new SecretScrubber();
    const headers = await resolveTelemetryHeaders(
      { authorization: 'Bearer ${secret:otel_key}', 'x-team': 'crm' },
      await store({ otel_key: 'k-123' }),
      scrubber,
    );
    expect(headers).toEqual({ authorization: 'Bearer k-123', 'x-team': 'crm' });
    expect(scrubber.scrub('sent Bearer k-123')).toBe('sent Bearer [secret otel_key redacted]');
  });

  it('fails with the secret name and the command that adds it when the secret is missing', async () => {
    await expect(resolveTelemetryHeaders({ authorization: '${secret:otel_key}' }, await store({}), new SecretScrubber())).rejects.toThrow(
      /telemetry\.headers\.authorization needs the secret "otel_key".*gatehouse secrets set otel_key/,
    );
  });
});
