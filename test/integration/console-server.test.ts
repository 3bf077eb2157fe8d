/**
 * The headless console's server (`gatehouse daemon --ui`, desktop issue): the one-time sign-in code,
 * the session it trades for (HttpOnly SameSite=Strict cookie plus a token the page must present),
 * Host and Origin checks against DNS rebinding and cross-site use, the CSP on every page, and the
 * WebSocket that carries the control contract. Then the real command: the address and the code are
 * printed on the daemon's terminal (a pseudo-terminal here), the code works once, and it is written
 * to no file. Issue 10: no secret in any address, so none in a browser's command line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { contentSecurityPolicy } from '../../src/common/csp.js';
import type { DaemonStatus } from '../../src/common/status.js';
import type { ControlHandlers } from '../../src/node/control/control-server.js';
import { ConsoleHub } from '../../src/node/console/hub.js';
import { ConsoleServer, SESSION_COOKIE } from '../../src/node/console/server.js';
import { runtimeInfoFile } from '../../src/node/daemon.js';
import { BIN, eventually, makeHome } from './support/gatehouse.js';
import { ensureConsoleBuilt } from '../e2e/support.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(origin: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  const url = new URL(origin);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: url.port, path, method: options.method ?? 'GET', headers: options.headers ?? {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Types a code into the sign-in form, as a browser posts it. */
function typeCode(origin: string, code: string, headers: Record<string, string> = {}): Promise<Reply> {
  return request(origin, '/login', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin, ...headers },
    body: new URLSearchParams({ code }).toString(),
  });
}

const STATUS = { version: 'test', servers: [] } as unknown as DaemonStatus;
let now = Date.now();
let server: ConsoleServer;
let staticDir: string;

beforeAll(async () => {
  staticDir = mkdtempSync(join(tmpdir(), 'gh-console-static-'));
  mkdirSync(join(staticDir, 'assets'));
  writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>console</title>');
  writeFileSync(join(staticDir, 'assets', 'app.js'), 'console.log(1)');
  const handlers = new Proxy({} as ControlHandlers, {
    get: (_t, method: string) => async (params: unknown) => (method === 'status' ? STATUS : { method, params }),
  });
  server = new ConsoleServer({ hub: new ConsoleHub(handlers, () => STATUS), staticDir, logger: { log: () => undefined }, now: () => now });
  await server.listen();
});
afterAll(async () => {
  await server?.close();
  rmSync(staticDir, { recursive: true, force: true });
});

/** Signs in with a fresh code; returns the cookie header and the page's session token. */
async function login(): Promise<{ cookie: string; token: string }> {
  const res = await typeCode(server.origin, server.newLoginCode().code);
  expect(res.status).toBe(303);
  const setCookie = String(res.headers['set-cookie']);
  return { cookie: setCookie.split(';')[0]!, token: /#session=(.+)$/.exec(String(res.headers.location))![1]! };
}

/** A WebSocket to the console; `origin: null` sends none. */
function socket(headers: Record<string, string>, origin: string | null = server.origin): WebSocket {
  return new WebSocket(`${server.origin.replace('http', 'ws')}/api/ws`, { headers, ...(origin ? { origin } : {}) });
}

function refusal(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('error', () => resolve(-1));
  });
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.on('close', (code) => resolve(code)));
}

describe('signing in to the console', () => {
  it("sends a visitor without a session to the sign-in form, which asks for the code on the daemon's terminal", async () => {
    const res = await request(server.origin, '/');
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/login');
    const form = await request(server.origin, '/login');
    expect(form.status).toBe(200);
    expect(form.body).toContain('gatehouse daemon --ui');
    expect(form.body).toContain('name="code"');
    expect(form.headers['x-frame-options']).toBe('DENY');
  });

  it('trades a one-time code for an HttpOnly SameSite=Strict cookie and a session token in the fragment, once', async () => {
    const { url, code } = server.newLoginCode();
    expect(url).toBe(`${server.origin}/login`);
    expect(code).toMatch(/^[0-9A-Z]{4}-[0-9A-Z]{4}$/);
    // Typed the way people type: lower case, without the dash.
    const first = await typeCode(server.origin, code.toLowerCase().replace('-', ''));
    expect(first.status).toBe(303);
    expect(String(first.headers['set-cookie'])).toMatch(new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9_-]{40,}; HttpOnly; SameSite=Strict; Path=/; Max-Age=\\d+$`));
    expect(first.headers.location).toMatch(/^\/#session=[A-Za-z0-9_-]{40,}$/);
    const again = await typeCode(server.origin, code);
    expect(again.status).toBe(403);
    expect(again.headers['set-cookie']).toBeUndefined();
  });

  it('refuses a wrong code, a code typed from another site, and a later code once its ten minutes are over', async () => {
    expect((await typeCode(server.origin, 'not-the-code')).status).toBe(403);
    const { code } = server.newLoginCode();
    expect((await typeCode(server.origin, code, { origin: 'https://evil.example' })).status).toBe(403);
    const later = server.newLoginCode();
    now += 11 * 60_000;
    expect((await typeCode(server.origin, later.code)).status).toBe(403);
  });

  it('voids every waiting code after ten wrong ones', async () => {
    const { code } = server.newLoginCode();
    for (let i = 0; i < 10; i++) expect((await typeCode(server.origin, `0000-000${i % 10}`)).status).toBe(403);
    expect((await typeCode(server.origin, code)).status).toBe(403);
    expect((await typeCode(server.origin, server.newLoginCode().code)).status).toBe(303);
  });

  it('serves the console with its session, with the CSP and no framing', async () => {
    const { cookie } = await login();
    const page = await request(server.origin, '/', { headers: { cookie } });
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>console</title>');
    expect(page.headers['content-security-policy']).toBe(contentSecurityPolicy());
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    const script = await request(server.origin, '/assets/app.js', { headers: { cookie } });
    expect(script).toMatchObject({ status: 200, headers: { 'content-type': 'text/javascript; charset=utf-8' } });
  });
});

describe('what the console server refuses', () => {
  it('a Host other than its own loopback address (DNS rebinding)', async () => {
    const { cookie } = await login();
    const port = new URL(server.origin).port;
    for (const host of [`evil.example:${port}`, `127.0.0.1:${Number(port) + 1}`, 'localhost']) {
      expect((await request(server.origin, '/', { headers: { host, cookie } })).status, host).toBe(403);
    }
    expect((await request(server.origin, '/', { headers: { host: `localhost:${port}`, cookie } })).status).toBe(200);
  });

  it('a request another site makes, anything but GET and HEAD, and paths outside the console', async () => {
    const { cookie } = await login();
    expect((await request(server.origin, '/', { headers: { cookie, 'sec-fetch-site': 'cross-site' } })).status).toBe(403);
    expect((await request(server.origin, '/', { method: 'POST', headers: { cookie } })).status).toBe(405);
    expect((await request(server.origin, '/login', { method: 'PUT', headers: { cookie } })).status).toBe(405);
    expect((await request(server.origin, '/../../../etc/passwd', { headers: { cookie } })).status).toBe(404);
    expect((await request(server.origin, '/%2e%2e/%2e%2e/etc/hosts', { headers: { cookie } })).status).toBe(404);
    expect((await request(server.origin, '/index.html', { headers: { cookie: `${SESSION_COOKIE}=forged` } })).status).toBe(303);
  });

  it('a WebSocket from another origin, without an origin, or without a session', async () => {
    const { cookie } = await login();
    expect(await refusal(socket({ cookie }, 'https://evil.example'))).toBe(403);
    expect(await refusal(socket({ cookie }, `http://127.0.0.1:1`))).toBe(403);
    expect(await refusal(socket({ cookie }, null))).toBe(403);
    expect(await refusal(socket({}))).toBe(401);
  });

  it('a WebSocket whose first message is not the session token (a stolen cookie alone is not enough)', async () => {
    const { cookie } = await login();
    const ws = socket({ cookie });
    const code = closed(ws);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', token: 'someone-elses' })));
    expect(await code).toBe(4401);
    const other = socket({ cookie });
    const otherCode = closed(other);
    other.on('open', () => other.send(JSON.stringify({ id: 1, method: 'status' })));
    expect(await otherCode).toBe(4401);
  });
});

describe('the console WebSocket', () => {
  it('answers the control contract after the hello, refusing bad params and methods the console may not use', async () => {
    const { cookie, token } = await login();
    const ws = socket({ cookie });
    const messages: Record<string, unknown>[] = [];
    const next = (match: (m: Record<string, unknown>) => boolean) => eventually(() => messages.find(match), 5000, 'a message');
    ws.on('message', (data) => messages.push(JSON.parse(String(data)) as Record<string, unknown>));
    await new Promise((resolve) => ws.on('open', resolve));
    ws.send(JSON.stringify({ type: 'hello', token }));
    await next((m) => m.welcome === true);
    ws.send(JSON.stringify({ id: 1, method: 'status', params: {} }));
    ws.send(JSON.stringify({ id: 2, method: 'servers.restart', params: { name: '../../etc' } }));
    ws.send(JSON.stringify({ id: 3, method: 'clients.pair', params: { name: 'x' } }));
    ws.send(JSON.stringify({ id: 4, method: 'clients.revoke', params: { name: 'cursor' } }));
    expect(await next((m) => m.id === 1)).toEqual({ id: 1, ok: true, result: STATUS });
    expect(await next((m) => m.id === 2)).toMatchObject({ ok: false, error: { code: 'invalid_params' } });
    expect(await next((m) => m.id === 3)).toMatchObject({ ok: false, error: { code: 'unknown_method' } });
    expect(await next((m) => m.id === 4)).toMatchObject({ ok: true, result: { method: 'clients.revoke', params: { name: 'cursor' } } });
    // A change pushes the status to every open console.
    expect(await next((m) => (m.event as { type?: string } | undefined)?.type === 'status')).toMatchObject({ event: { status: STATUS } });
    ws.close();
  });
});

// ---------------------------------------------------------------------------------------------

/** Every file under a directory, recursively (sockets and the like skipped). */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const info = statSync(path, { throwIfNoEntry: false });
    if (info?.isDirectory()) out.push(...filesUnder(path));
    else if (info?.isFile()) out.push(path);
  }
  return out;
}

describe('gatehouse daemon --ui', () => {
  let child: ChildProcess | undefined;
  let output = '';
  let home: ReturnType<typeof makeHome>;

  beforeAll(() => {
    ensureConsoleBuilt();
    home = makeHome('gh-console-cli-');
    writeFileSync(home.paths.configFile, JSON.stringify({ servers: {}, listen: { http: { enabled: false, port: 0 } } }), { mode: 0o600 });
  });
  afterAll(async () => {
    if (child && child.exitCode === null) {
      try {
        const { pid } = JSON.parse(readFileSync(runtimeInfoFile(home.paths), 'utf8')) as { pid: number };
        process.kill(pid, 'SIGTERM');
      } catch {
        child.kill('SIGTERM');
      }
      const timer = setTimeout(() => child?.kill('SIGKILL'), 10_000);
      await new Promise((resolve) => child!.once('exit', resolve));
      clearTimeout(timer);
    }
    rmSync(home.home, { recursive: true, force: true });
  });

  it('prints the address and a one-time sign-in code on its terminal, writes the code to no file, and prints another for `gatehouse console`', async () => {
    // `script` gives the daemon a pseudo-terminal, as a person's terminal would.
    child = spawn('script', ['-qfec', `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} daemon --ui`, '/dev/null'], {
      env: { ...home.env, TERM: 'dumb' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (c: string) => (output += c));
    const SHOWN = /open (http:\/\/127\.0\.0\.1:\d+)\/login and type the sign-in code ([0-9A-Z]{4}-[0-9A-Z]{4})/;
    const [, origin, code] = await eventually(() => SHOWN.exec(output) ?? undefined, 30_000, 'the sign-in code on the terminal');
    const first = await typeCode(origin!, code!);
    expect(first.status).toBe(303);
    expect((await typeCode(origin!, code!)).status).toBe(403);
    const page = await request(origin!, '/', { headers: { cookie: String(first.headers['set-cookie']).split(';')[0]! } });
    expect(page.status).toBe(200);
    expect(page.body).toContain('<div id="root">');

    const hits = filesUnder(home.home).filter((file) => readFileSync(file).includes(code!));
    expect(hits).toEqual([]);

    const before = output.length;
    const asked = spawn(process.execPath, [BIN, 'console'], { env: home.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let said = '';
    asked.stdout!.on('data', (c: Buffer) => (said += c.toString()));
    const exit = await new Promise((resolve) => asked.once('exit', resolve));
    expect(exit).toBe(0);
    expect(said).toContain("on the daemon's terminal");
    expect(said).not.toMatch(/[0-9A-Z]{4}-[0-9A-Z]{4}/);
    const second = await eventually(() => SHOWN.exec(output.slice(before))?.[2], 10_000, 'a second code');
    expect(second).not.toBe(code);
    expect((await typeCode(origin!, second)).status).toBe(303);
  });

  it('`gatehouse console` fails, saying why, when the daemon has no terminal to show a code on', async () => {
    const quiet = makeHome('gh-console-quiet-');
    writeFileSync(quiet.paths.configFile, JSON.stringify({ servers: {}, listen: { http: { enabled: false, port: 0 } } }), { mode: 0o600 });
    // No terminal at all: stdio are pipes and there is no controlling terminal (setsid).
    const daemon = spawn('setsid', [process.execPath, BIN, 'daemon', '--ui'], { env: quiet.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    daemon.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    try {
      await eventually(() => err.includes('is running'), 30_000, 'the daemon to start');
      const asked = spawn(process.execPath, [BIN, 'console'], { env: quiet.env, stdio: ['ignore', 'pipe', 'pipe'] });
      let said = '';
      asked.stderr!.on('data', (c: Buffer) => (said += c.toString()));
      const exit = await new Promise((resolve) => asked.once('exit', resolve));
      expect(exit).toBe(1);
      expect(said).toMatch(/no terminal to show a sign-in code on/);
      expect(err).not.toMatch(/sign-in code [0-9A-Z]{4}-[0-9A-Z]{4}/);
    } finally {
      daemon.kill('SIGTERM');
      await new Promise((resolve) => daemon.once('exit', resolve));
      rmSync(quiet.home, { recursive: true, force: true });
    }
  });
});
