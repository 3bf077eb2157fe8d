/**
 * The headless console's server (`gatehouse daemon --ui`, desktop issue): the one-time login link,
 * the session it trades for (HttpOnly SameSite=Strict cookie plus a token the page must present),
 * Host and Origin checks against DNS rebinding and cross-site use, the CSP on every page, and the
 * WebSocket that carries the control contract. Then the real command: the link is printed on the
 * daemon's terminal (a pseudo-terminal here), works once, and is written to no file.
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

function request(origin: string, path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  const url = new URL(origin);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: url.port, path, method: options.method ?? 'GET', headers: options.headers ?? {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
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

/** Logs in with a fresh link; returns the cookie header and the page's session token. */
async function login(): Promise<{ cookie: string; token: string }> {
  const link = new URL(server.newLoginUrl());
  const res = await request(server.origin, `${link.pathname}${link.search}`);
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
  it('refuses the console without a session, and says where the link is', async () => {
    const res = await request(server.origin, '/');
    expect(res.status).toBe(401);
    expect(res.body).toContain('gatehouse daemon --ui');
    expect(res.headers['content-security-policy']).toBe(contentSecurityPolicy());
  });

  it('trades a one-time link for an HttpOnly SameSite=Strict cookie and a session token in the fragment, once', async () => {
    const link = new URL(server.newLoginUrl());
    expect(link.origin).toBe(server.origin);
    const first = await request(server.origin, `${link.pathname}${link.search}`);
    expect(first.status).toBe(303);
    expect(String(first.headers['set-cookie'])).toMatch(new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9_-]{40,}; HttpOnly; SameSite=Strict; Path=/; Max-Age=\\d+$`));
    expect(first.headers.location).toMatch(/^\/#session=[A-Za-z0-9_-]{40,}$/);
    expect(first.headers['referrer-policy']).toBe('no-referrer');
    const again = await request(server.origin, `${link.pathname}${link.search}`);
    expect(again.status).toBe(403);
    expect(again.body).toContain('already opened');
    expect(again.headers['set-cookie']).toBeUndefined();
  });

  it('refuses a wrong key, and a later link once its ten minutes are over', async () => {
    expect((await request(server.origin, '/login?k=not-the-key')).status).toBe(403);
    const later = new URL(server.newLoginUrl());
    now += 11 * 60_000;
    expect((await request(server.origin, `${later.pathname}${later.search}`)).status).toBe(403);
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
    expect((await request(server.origin, '/../../../etc/passwd', { headers: { cookie } })).status).toBe(404);
    expect((await request(server.origin, '/%2e%2e/%2e%2e/etc/hosts', { headers: { cookie } })).status).toBe(404);
    expect((await request(server.origin, '/index.html', { headers: { cookie: `${SESSION_COOKIE}=forged` } })).status).toBe(401);
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

  it('prints a one-time login link on its terminal that opens the console once, never writes it to a file, and prints another for `gatehouse console`', async () => {
    // `script` gives the daemon a pseudo-terminal, as a person's terminal would.
    child = spawn('script', ['-qfec', `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} daemon --ui`, '/dev/null'], { env: { ...home.env, TERM: 'dumb' }, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (c: string) => (output += c));
    const link = await eventually(() => /(http:\/\/127\.0\.0\.1:\d+\/login\?k=[A-Za-z0-9_-]+)/.exec(output)?.[1], 30_000, 'the login link on the terminal');
    const url = new URL(link);
    const first = await request(url.origin, `${url.pathname}${url.search}`);
    expect(first.status).toBe(303);
    expect((await request(url.origin, `${url.pathname}${url.search}`)).status).toBe(403);
    const page = await request(url.origin, '/', { headers: { cookie: String(first.headers['set-cookie']).split(';')[0]! } });
    expect(page.status).toBe(200);
    expect(page.body).toContain('<div id="root">');

    const key = url.searchParams.get('k')!;
    const hits = filesUnder(home.home).filter((file) => readFileSync(file).includes(key));
    expect(hits).toEqual([]);

    const before = output.length;
    const asked = spawn(process.execPath, [BIN, 'console'], { env: home.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let said = '';
    asked.stdout!.on('data', (c: Buffer) => (said += c.toString()));
    const code = await new Promise((resolve) => asked.once('exit', resolve));
    expect(code).toBe(0);
    expect(said).toContain('on the daemon\'s terminal');
    expect(said).not.toContain('/login?k=');
    const second = await eventually(() => /(http:\/\/127\.0\.0\.1:\d+\/login\?k=[A-Za-z0-9_-]+)/.exec(output.slice(before))?.[1], 10_000, 'a second link');
    expect(second).not.toBe(link);
    const secondUrl = new URL(second);
    expect((await request(secondUrl.origin, `${secondUrl.pathname}${secondUrl.search}`)).status).toBe(303);
  });
});
