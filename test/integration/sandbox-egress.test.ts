/**
 * Issue 15: an allow-listed network by host name, end to end, and the egress proxy's rules. The
 * daemon runs under a bubblewrap of the test's own that shows it a hosts file naming two partner
 * hosts (one on this machine's network address, one that resolves to loopback), so a confined
 * server reaches a "remote" host by name through the relay and the proxy, with no DNS server and no
 * change to the host. The proxy's front ends (the relay's unix socket, HTTP CONNECT for macOS,
 * decoys) are then checked one rule at a time.
 */
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/core/ports.js';
import { systemClock } from '../../src/core/ports.js';
import { SandboxEvents } from '../../src/core/sandbox/events.js';
import { EgressProxy } from '../../src/node/sandbox/egress-proxy.js';
import { auditEvents } from './support/approvals.js';
import { closeAll, connectHttp, textOf } from './support/clients.js';
import { eventually, spawnGatehouse, type RunningGatehouse } from './support/gatehouse.js';

const HOSTILE = fileURLToPath(new URL('../fixtures/hostile-server.mjs', import.meta.url));
/** This machine's own non-loopback IPv4 address: a "remote" host the tests can serve. */
const NETWORK_ADDRESS = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
/** Its own IPv6 address, where the IPv4-only test servers refuse connections at once. */
const NETWORK_ADDRESS6 = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv6' && !a.internal && !a.address.startsWith('fe80'))?.address;

function listen<T extends Server | HttpServer>(server: T, host: string, port = 0): Promise<number> {
  return new Promise((resolve) => server.listen(port, host, () => resolve((server.address() as AddressInfo).port)));
}

describe.runIf(process.platform === 'linux' && NETWORK_ADDRESS !== undefined)('an allow-list by host name, end to end (issue 15)', () => {
  let gh: RunningGatehouse;
  let partner: HttpServer;
  let port: number;
  let scratch: string;

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'gh-egress-'));
    partner = createHttpServer((_req, res) => res.end('partner says hi'));
    port = await listen(partner, '0.0.0.0');
    const hosts = join(scratch, 'hosts');
    writeFileSync(hosts, `${readFileSync('/etc/hosts', 'utf8')}\n${NETWORK_ADDRESS} api.partner.test\n127.0.0.1 sneaky.partner.test\n`);
    gh = await spawnGatehouse({
      wrap: ['bwrap', '--dev-bind', '/', '/', '--ro-bind', hosts, '/etc/hosts', '--die-with-parent', '--'],
      servers: {
        hostile: {
          type: 'stdio',
          command: process.execPath,
          args: [HOSTILE],
          sandbox: { network: { allow: [`api.partner.test:${port}`, `sneaky.partner.test:${port}`] } },
        },
      },
    });
    await eventually(async () => (await gh.status()).servers[0]?.state === 'ready', 20_000, 'the server to be ready');
  }, 60_000);

  afterAll(async () => {
    await closeAll();
    await gh?.stop();
    partner?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('reaches a listed host by its name, not one that resolves to loopback, not an address it did not list, and no other name', async () => {
    const { client } = await connectHttp(gh.httpUrl, { era: 'legacy', token: gh.token });
    const plan = {
      http: [`http://api.partner.test:${port}/`, `http://sneaky.partner.test:${port}/`, `http://${NETWORK_ADDRESS}:${port}/`],
      lookups: ['api.partner.test', 'exfil.example.com'],
    };
    const report = JSON.parse(textOf(await client.callTool({ name: 'hostile__attack', arguments: plan }))) as {
      http: { ok: boolean; status?: number; body?: string; code?: string }[];
      lookups: { ok: boolean; address?: string; code?: string }[];
    };
    const [byName, sneaky, byAddress] = report.http;
    expect(byName).toMatchObject({ ok: true, status: 200, body: 'partner says hi' });
    expect(sneaky!.ok).toBe(false);
    expect(byAddress).toMatchObject({ ok: false, code: 'ENETUNREACH' });
    expect(report.lookups[0]).toMatchObject({ ok: true });
    expect(report.lookups[0]!.address).toMatch(/^127\.77\./);
    expect(report.lookups[1]).toMatchObject({ ok: false, code: 'ENOTFOUND' });

    await eventually(
      () => auditEvents(gh.paths, 'sandbox.egress').some((e) => (e.detail as { destination: string }).destination === `api.partner.test:${port}`),
      5_000,
      'the egress record',
    );
    // The relay reports a refused name to the proxy on its own connection: wait for that record too, not only the egress.
    const denied = await eventually(
      () => {
        const events = auditEvents(gh.paths, 'sandbox.denied').filter((e) => e.server === 'hostile');
        return events.some((e) => (e.detail as { kind: string }).kind === 'dns') ? events : undefined;
      },
      5_000,
      'the refused name in the audit log',
    );
    expect(denied.find((e) => (e.detail as { target: string }).target === `sneaky.partner.test:${port}`)?.reason).toBe(
      'resolves to 127.0.0.1; only a listed loopback address may reach this machine',
    );
    expect(denied.find((e) => (e.detail as { kind: string }).kind === 'dns')).toMatchObject({ detail: { target: 'exfil.example.com' } });
  });
});

describe('the egress proxy (issue 15)', () => {
  let scratch: string;
  let echo: Server;
  let echoPort: number;
  let proxy: EgressProxy;
  const records: AuditRecord[] = [];
  const events = new SandboxEvents({ clock: systemClock, append: (r) => records.push(r) });

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'gh-proxy-'));
    echo = createServer((socket) => socket.pipe(socket));
    echoPort = await listen(echo, '0.0.0.0');
    proxy = new EgressProxy({
      server: 'notes',
      socketPath: join(scratch, 'e.sock'),
      destinations: [
        { host: '127.0.0.1', port: echoPort, kind: 'loopback' },
        { host: 'echo.partner.test', port: echoPort, kind: 'name' },
        { host: 'rebound.partner.test', port: echoPort, kind: 'name' },
        { host: 'fallback.partner.test', port: echoPort, kind: 'name' },
      ],
      decoys: [{ socketPath: join(scratch, 'd0.sock'), inside: '/run/user/1000/bus', what: 'the D-Bus session bus' }],
      events,
      httpConnect: true,
      // Names resolve through this table: one "remote" name that is really this machine's echo server, one that resolves to loopback.
      lookup: async (host) => {
        const remote = NETWORK_ADDRESS ?? '192.0.2.1';
        if (host === 'fallback.partner.test')
          return [
            { address: NETWORK_ADDRESS6 ?? '', family: 6 },
            { address: remote, family: 4 },
          ];
        return [{ address: host === 'echo.partner.test' ? remote : '127.0.0.1', family: 4 }];
      },
    });
    await proxy.listen();
  });
  afterAll(async () => {
    await proxy?.close();
    echo?.close();
    events.flush();
    rmSync(scratch, { recursive: true, force: true });
  });

  /** Writes `request`, then `payload` once the proxy has answered; resolves with everything read until the stream ends or 1 s passes. */
  function exchange(path: string | { port: number }, request: string, payload = ''): Promise<string> {
    return new Promise((resolve) => {
      const socket = typeof path === 'string' ? connect(path) : connect(path.port, '127.0.0.1');
      let received = '';
      let sent = false;
      const done = (): void => {
        clearTimeout(timer);
        socket.destroy();
        resolve(received);
      };
      const timer = setTimeout(done, 1_000);
      socket.on('connect', () => socket.write(request));
      socket.on('data', (chunk) => {
        received += chunk.toString('utf8');
        if (!sent && payload !== '' && /\n/.test(received)) {
          sent = true;
          socket.write(payload);
        }
        if (sent && received.endsWith(payload)) done();
      });
      socket.on('end', done);
      socket.on('error', done);
    });
  }

  it('relays a listed loopback destination and records the egress', async () => {
    const answer = await exchange(join(scratch, 'e.sock'), JSON.stringify({ host: '127.0.0.1', port: echoPort }) + '\n', 'ping through the proxy');
    expect(answer).toBe('{"ok":true}\nping through the proxy');
    expect(records).toContainEqual(
      expect.objectContaining({ type: 'sandbox.egress', server: 'notes', detail: { destination: `127.0.0.1:${echoPort}`, count: 1 } }),
    );
  });

  it.runIf(NETWORK_ADDRESS !== undefined)('relays a listed name to the address it resolves to on the host', async () => {
    const answer = await exchange(join(scratch, 'e.sock'), JSON.stringify({ host: 'Echo.Partner.Test', port: echoPort }) + '\n', 'by name');
    expect(answer).toBe('{"ok":true}\nby name');
    expect(records).toContainEqual(expect.objectContaining({ type: 'sandbox.egress', detail: { destination: `echo.partner.test:${echoPort}`, count: 1 } }));
  });

  it.runIf(NETWORK_ADDRESS !== undefined && NETWORK_ADDRESS6 !== undefined)('tries the next address of a name when one cannot be reached', async () => {
    const answer = await exchange(join(scratch, 'e.sock'), JSON.stringify({ host: 'fallback.partner.test', port: echoPort }) + '\n', 'second address');
    expect(answer).toBe('{"ok":true}\nsecond address');
  });

  it('refuses an unlisted destination with its reason, and records the attempt', async () => {
    const answer = await exchange(join(scratch, 'e.sock'), JSON.stringify({ host: '127.0.0.1', port: 22 }) + '\n');
    expect(answer).toBe(`{"ok":false,"reason":"127.0.0.1:22 is not on this server's allow-list"}\n`);
    expect(records).toContainEqual(
      expect.objectContaining({
        type: 'sandbox.denied',
        server: 'notes',
        reason: 'not on the allow-list',
        detail: { kind: 'network', target: '127.0.0.1:22', count: 1 },
      }),
    );
  });

  it('refuses a listed name that resolves to loopback', async () => {
    const answer = await exchange(join(scratch, 'e.sock'), JSON.stringify({ host: 'rebound.partner.test', port: echoPort }) + '\n');
    expect(answer).toBe('{"ok":false,"reason":"rebound.partner.test resolves to a local address"}\n');
  });

  it('closes a request that is not JSON, or longer than 1 KiB without a newline, without an answer', async () => {
    expect(await exchange(join(scratch, 'e.sock'), 'GET / HTTP/1.1\n')).toBe('');
    expect(await exchange(join(scratch, 'e.sock'), 'x'.repeat(4096))).toBe('');
  });

  it('records a name the DNS stub refused', async () => {
    await exchange(join(scratch, 'e.sock'), JSON.stringify({ report: 'dns', name: 'exfil.example.com' }) + '\n');
    expect(records).toContainEqual(expect.objectContaining({ type: 'sandbox.denied', detail: { kind: 'dns', target: 'exfil.example.com', count: 1 } }));
  });

  it('answers HTTP CONNECT for a listed destination, 403 for another, 405 for anything but CONNECT', async () => {
    const port = { port: proxy.connectPort! };
    expect(await exchange(port, `CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: x\r\n\r\n`, 'tunnelled')).toBe(
      'HTTP/1.1 200 Connection Established\r\n\r\ntunnelled',
    );
    expect(await exchange(port, 'CONNECT evil.example.com:443 HTTP/1.1\r\n\r\n')).toMatch(
      /^HTTP\/1\.1 403 Forbidden\r\n[\s\S]*evil\.example\.com:443 is not on this server's allow-list\n$/,
    );
    expect(await exchange(port, 'GET http://127.0.0.1/ HTTP/1.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 405 /);
  });

  it('records a connection to a decoy and closes it without a byte', async () => {
    expect(await exchange(join(scratch, 'd0.sock'), '\0AUTH\r\n')).toBe('');
    expect(records).toContainEqual(
      expect.objectContaining({
        type: 'sandbox.denied',
        reason: 'tried to connect to the D-Bus session bus, which no server may reach',
        detail: { kind: 'socket', target: '/run/user/1000/bus', count: 1 },
      }),
    );
  });
});
