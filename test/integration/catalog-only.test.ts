/**
 * Issue 14: the signed catalogue decides whether a person's own servers may run in managed mode
 * (`catalogOnly`, docs/catalog.md). With `catalogOnly: true` (the default) only the catalogue's
 * servers run: a server the person configured and an `npx` server they pinned locally stay
 * stopped. A bundle with `catalogOnly: false` lets both run beside the catalogue, their tools
 * still hidden until a bundle pins them; a later bundle that says `true` again stops them.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonStatus } from '../../src/common/status.js';
import { CRM_FIXTURE, makeKey, sampleFiles, signFiles, type TestKey } from '../support/policy.js';
import { startRegistry, type TestRegistry } from '../support/npm-registry.js';
import { closeAll, connectBridge } from './support/clients.js';
import { startManaged, type ManagedGatehouse } from './support/policy.js';

const ANALYST = { user: 'ann', groups: ['crm-analysts'] };
const OWN = ['notes', 'pinned'];

let root: TestKey;
let registry: TestRegistry;
let pinned: string;
beforeAll(async () => {
  root = await makeKey();
  registry = await startRegistry();
  pinned = registry.publish({ name: 'pinned-weather-mcp', version: '1.0.0' });
});
afterAll(async () => {
  await registry.close();
});

/** The sample bundle, with `catalogOnly` as given (absent: the default). */
const bundle = (version: number, catalogOnly?: boolean) =>
  signFiles(sampleFiles({ catalog: (c) => void (catalogOnly !== undefined && Object.assign(c, { catalogOnly })) }), { version, keys: [root] });

const running = (s: DaemonStatus) =>
  s.servers
    .map((v) => v.name)
    .filter((n) => OWN.includes(n))
    .sort();

describe('catalogOnly in managed mode (issue 14)', () => {
  let gh: ManagedGatehouse;
  afterEach(async () => {
    await closeAll();
    await gh?.stop();
  });

  it("runs only the catalogue's servers by default, lets the person's own and pinned servers run when a bundle says catalogOnly: false, and stops them when one says true again", async () => {
    gh = await startManaged({
      roots: [root],
      bundle: await bundle(1),
      identity: ANALYST,
      settings: { required: true },
      env: { npm_config_registry: registry.url },
      config: {
        servers: { notes: { type: 'stdio', command: process.execPath, args: [CRM_FIXTURE] } },
        installed: { pinned: { npm: { package: 'pinned-weather-mcp', version: '1.0.0', integrity: pinned } } },
      },
    });
    // The pin is installed and verified, but neither it nor the person's own server runs.
    const first = await gh.until(
      (s) => s.installs?.find((i) => i.server === 'pinned')?.state === 'ready' && s.servers.some((v) => v.name === 'crm' && v.state === 'ready'),
      'the pin verified and the catalogue running',
      60_000,
    );
    expect(running(first)).toEqual([]);
    expect(await gh.daemon.console.call('catalog.list', {})).toMatchObject({ ok: true, result: { mode: 'managed', catalogOnly: true } });

    gh.writeBundle(await bundle(2, false));
    const open = await gh.until((s) => s.servers.filter((v) => OWN.includes(v.name) && v.state === 'ready').length === 2, 'the own servers to run', 30_000);
    expect(running(open)).toEqual(['notes', 'pinned']);
    expect(await gh.daemon.console.call('catalog.list', {})).toMatchObject({ ok: true, result: { catalogOnly: false } });
    // They run, but the catalogue pins none of their tools, so none is offered.
    const { client } = await connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide! });
    expect((await client.listTools()).tools.map((t) => t.name).filter((n) => OWN.some((o) => n.startsWith(`${o}__`)))).toEqual([]);

    gh.writeBundle(await bundle(3, true));
    const closed = await gh.until((s) => running(s).length === 0, 'the own servers to stop', 30_000);
    expect(closed.servers.some((v) => v.name === 'crm')).toBe(true);
  });
});
