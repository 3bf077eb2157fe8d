/**
 * The console's pure parts (desktop issue): the renderer's arithmetic and forms, the daemon-side
 * reports, the tray, the app protocol, the `npm start` choice and where the login link is shown.
 */
import { describe, expect, it, vi } from 'vitest';
import { contentSecurityPolicy } from '../../src/common/csp.js';
import type { DaemonStatus } from '../../src/common/status.js';
import { diffBundles, policyStatements } from '../../src/node/console/policy-report.js';
import { FIT_MIN_SPAN_MS, OTHER_SERIES, fittedStart, timeline } from '../../src/node/console/reports.js';
import { terminalAnnouncer } from '../../src/node/console/announce.js';
import { bucketStarts, niceTicks, scaleTop, stacked, totals } from '../../renderer/lib/chart.js';
import { duration, relative } from '../../renderer/lib/format.js';
import { parseRoute, href } from '../../renderer/lib/routes.js';
import { EMPTY_FORM, configFromForm, formFromConfig, validateForm } from '../../renderer/lib/server-form.js';
import { snippetFor } from '../../renderer/lib/snippets.js';
import { nextRowIndex, resizedWidth } from '../../renderer/lib/table.js';
import { resolveAppRequest, appUrl } from '../../main/app-protocol.js';
import { chooseLaunch } from '../../main/start.js';
import { isWebLink, refuseNavigation } from '../../main/security.js';
import type { WebContents } from 'electron';
import { trayModel } from '../../main/tray-model.js';

describe("the table's keyboard", () => {
  it('moves the active row by arrow, page, Home and End, and never past either end', () => {
    expect(nextRowIndex('ArrowDown', 0, 10, 4)).toBe(1);
    expect(nextRowIndex('ArrowDown', 9, 10, 4)).toBe(9);
    expect(nextRowIndex('ArrowUp', 0, 10, 4)).toBe(0);
    expect(nextRowIndex('PageDown', 8, 10, 4)).toBe(9);
    expect(nextRowIndex('PageUp', 5, 10, 4)).toBe(1);
    expect(nextRowIndex('Home', 5, 10, 4)).toBe(0);
    expect(nextRowIndex('End', 5, 10, 4)).toBe(9);
    expect(nextRowIndex('a', 5, 10, 4)).toBeUndefined();
    expect(nextRowIndex('ArrowDown', 0, 0, 4)).toBeUndefined();
  });
  it('resizes a column by arrow keys on its edge, never below the minimum', () => {
    expect(resizedWidth('ArrowRight', 100, 48)).toBe(116);
    expect(resizedWidth('ArrowLeft', 60, 48)).toBe(48);
    expect(resizedWidth('ArrowRight', 100, 48, true)).toBe(164);
    expect(resizedWidth('Enter', 100, 48)).toBeUndefined();
  });
});

describe('the calls chart', () => {
  it('picks round ticks that cover the largest bar', () => {
    expect(niceTicks(7)).toEqual([0, 2, 4, 6, 8]);
    expect(niceTicks(100)).toEqual([0, 50, 100]);
    expect(niceTicks(0)).toEqual([0, 1]);
    expect(niceTicks(1)).toEqual([0, 1]);
  });
  it('sums stacked series per bucket, tallest first, so each bar overlays the one it sits on', () => {
    expect(totals([{ counts: [1, 2] }, { counts: [3, 0] }], 2)).toEqual([4, 2]);
    expect(
      stacked([
        [1, 2],
        [3, 0],
        [0, 5],
      ]),
    ).toEqual([
      [4, 7],
      [4, 2],
      [1, 2],
    ]);
  });
  it('keeps the tallest bar and the top label inside the plot: the scale ends above the largest value', () => {
    expect(scaleTop(200)).toBeGreaterThan(200);
    expect(scaleTop(7)).toBe(8);
    expect(scaleTop(8)).toBe(10);
    expect(scaleTop(0)).toBe(1);
  });
  it('places each bucket at its start, in seconds', () => {
    expect(bucketStarts('2026-11-26T09:00:00.000Z', 60_000, 3)).toEqual([1795683600, 1795683660, 1795683720]);
  });
});

describe('timeline (calls over time)', () => {
  const at = (minute: number) => new Date(Date.UTC(2026, 10, 26, 9, minute)).toISOString();
  it('counts calls per tool in equal buckets, busiest first, the rest as (other)', () => {
    const events = [
      ...Array.from({ length: 5 }, (_, i) => ({ at: at(i), server: 'memory', name: 'read_graph', client: 'cursor' })),
      { at: at(30), server: 'files', name: 'read_text_file', client: 'claude' },
      ...Array.from({ length: 9 }, (_, i) => ({ at: at(40), server: 'tool', name: `t${i}`, client: 'x' })),
      { at: at(90), server: 'memory', name: 'read_graph', client: 'cursor' },
    ];
    const result = timeline(events, { from: at(0), to: at(60), buckets: 6, by: 'tool', max: 1000 });
    expect(result.bucketMs).toBe(600_000);
    expect(result.series[0]).toEqual({
      key: 'memory__read_graph',
      counts: [5, 0, 0, 0, 0, 0],
      refused: [0, 0, 0, 0, 0, 0],
      latencyMs: [null, null, null, null, null, null],
      total: 5,
    });
    expect(result.series).toHaveLength(9);
    expect(result.series.at(-1)!.key).toBe(OTHER_SERIES);
    expect(result.total).toBe(15);
    expect(result.truncated).toBe(false);
    const byClient = timeline(events, { from: at(0), to: at(60), buckets: 2, by: 'client', max: 3 });
    expect(byClient).toMatchObject({ total: 3, truncated: true, series: [{ key: 'cursor', counts: [3, 0] }] });
  });
  it("counts refusals and the median latency per server and bucket (the Overview's activity)", () => {
    const events = [
      { at: at(1), server: 'crm', name: 'refund', decision: 'ok', latencyMs: 4 },
      { at: at(2), server: 'crm', name: 'refund', decision: 'ok', latencyMs: 10 },
      { at: at(3), server: 'crm', name: 'refund', decision: 'denied' },
      { at: at(4), server: 'crm', name: 'search', decision: 'ok', latencyMs: 6 },
      { at: at(40), server: 'memory', name: 'read_graph', decision: 'ok', latencyMs: 1.5 },
    ] as const;
    const result = timeline(events, { from: at(0), to: at(60), buckets: 2, by: 'server', max: 100 });
    expect(result.series).toEqual([
      { key: 'crm', counts: [4, 0], refused: [1, 0], latencyMs: [6, null], total: 4 },
      { key: 'memory', counts: [0, 1], refused: [0, 0], latencyMs: [null, 1.5], total: 1 },
    ]);
  });
  it('fits a range to its first call, so a burst keeps its shape, but never narrower than 2 minutes', () => {
    const day = Date.parse(at(0));
    const end = day + 86_400_000;
    // A burst an hour before the end: the chart starts at its minute, not a day earlier.
    expect(fittedStart(day, end, end - 3_600_000 + 42_000)).toBe(end - 3_600_000);
    // A burst a moment ago: 2 minutes are kept.
    expect(fittedStart(day, end, end - 5000)).toBe(end - FIT_MIN_SPAN_MS);
    // No call, or a call at the very start: the range as asked.
    expect(fittedStart(day, end, undefined)).toBe(day);
    expect(fittedStart(day, end, day)).toBe(day);
    const fitted = timeline([{ at: at(30) }], { from: at(20), to: at(60), requestedFrom: at(0), buckets: 4, by: 'tool', max: 10 });
    expect(fitted.requestedFrom).toBe(at(0));
    expect(fitted.from).toBe(at(20));
  });
});

describe('the add/edit server form', () => {
  it('turns a form into the config the daemon takes, keeping what the form does not show', () => {
    const form = {
      ...EMPTY_FORM,
      name: 'notes',
      command: 'node',
      args: 'server.js\n--root\n/tmp',
      env: 'API_KEY=${secret:notes_key}\nMODE=fast',
      enabled: false,
    };
    const { config, errors } = configFromForm(form, { type: 'stdio', command: 'old', restart: { mode: 'never' } });
    expect(errors).toEqual({});
    expect(config).toEqual({
      type: 'stdio',
      command: 'node',
      args: ['server.js', '--root', '/tmp'],
      env: { API_KEY: '${secret:notes_key}', MODE: 'fast' },
      enabled: false,
      restart: { mode: 'never' },
    });
    expect(formFromConfig('notes', config)).toMatchObject({ name: 'notes', args: 'server.js\n--root\n/tmp', enabled: false });
    expect(validateForm(form).config).toEqual({
      type: 'stdio',
      command: 'node',
      args: ['server.js', '--root', '/tmp'],
      env: { API_KEY: '${secret:notes_key}', MODE: 'fast' },
      enabled: false,
    });
  });

  it('says, per field, what the config schema refuses', () => {
    expect(validateForm({ ...EMPTY_FORM, name: 'Bad_Name', command: 'node' }).errors.name).toMatch(/lower-case/);
    expect(validateForm({ ...EMPTY_FORM, name: 'ok', command: '' }).errors.command).toMatch(/program to run/);
    expect(validateForm({ ...EMPTY_FORM, name: 'ok', command: 'node', env: 'no equals sign' }).errors.env).toMatch(/line 1/);
    expect(validateForm({ ...EMPTY_FORM, name: 'ok', command: 'node', env: '1BAD=x' }).errors.env).toMatch(/environment variable name/);
    expect(validateForm({ ...EMPTY_FORM, name: 'ok', type: 'http', url: 'ftp://example.com' }).errors.url).toMatch(/http/);
    expect(
      validateForm({ ...EMPTY_FORM, name: 'ok', type: 'http', url: 'https://mcp.example.com/mcp', headers: 'Authorization: Bearer ${secret:token}' }).config,
    ).toEqual({
      type: 'http',
      url: 'https://mcp.example.com/mcp',
      headers: { Authorization: 'Bearer ${secret:token}' },
    });
  });
});

describe('the connect snippets', () => {
  it('give each IDE the bridge command with the client name, quoted for where it goes', () => {
    expect(JSON.parse(snippetFor('claude-desktop', 'my "agent"'))).toEqual({
      mcpServers: { gatehouse: { command: 'gatehouse', args: ['connect', '--client', 'my "agent"'] } },
    });
    expect(JSON.parse(snippetFor('vscode', 'vscode'))).toEqual({
      servers: { gatehouse: { type: 'stdio', command: 'gatehouse', args: ['connect', '--client', 'vscode'] } },
    });
    expect(snippetFor('claude-code', "it's $HOME")).toBe(`claude mcp add --scope user gatehouse -- gatehouse connect --client 'it'\\''s $HOME'`);
    // With the command the daemon reports (an absolute path, so that it works under an IDE's minimal PATH).
    expect(JSON.parse(snippetFor('cursor', 'cursor', ['/usr/bin/node', '/opt/gh/bin/gatehouse.js'])).mcpServers.gatehouse).toEqual({
      command: '/usr/bin/node',
      args: ['/opt/gh/bin/gatehouse.js', 'connect', '--client', 'cursor'],
    });
    expect(snippetFor('claude-code', 'cc', ['/Applications/Gatehouse App/gatehouse'])).toBe(
      `claude mcp add --scope user gatehouse -- '/Applications/Gatehouse App/gatehouse' connect --client cc`,
    );
    expect(JSON.parse(snippetFor('cursor', 'cursor')).mcpServers.gatehouse.args).toEqual(['connect', '--client', 'cursor']);
  });
});

describe('routes and formatting', () => {
  it('reads hash routes and falls back to the overview', () => {
    expect(parseRoute('#/servers/memory')).toEqual({ screen: 'servers', rest: ['memory'] });
    expect(parseRoute('#/nowhere/x')).toEqual({ screen: 'overview', rest: [] });
    expect(parseRoute('')).toEqual({ screen: 'overview', rest: [] });
    expect(href('servers', 'a b')).toBe('#/servers/a%20b');
  });
  it('says times as people do', () => {
    const now = Date.parse('2026-11-26T10:00:00Z');
    expect(relative('2026-11-26T09:59:30Z', now)).toBe('30 s ago');
    expect(relative('2026-11-26T12:00:00Z', now)).toBe('in 2 h');
    expect(relative('2026-11-23T10:00:00Z', now)).toBe('3 days ago');
    expect(relative(undefined, now)).toBe('—');
    expect(duration(1_800_000)).toBe('30 min');
    expect(duration(86_400_000)).toBe('1 day');
  });
});

describe('policy changes between bundles', () => {
  const summary = (version: number, policies: Record<string, string>, tools: Record<string, string>, roles: Record<string, string> = {}) => ({
    version,
    digest: `d${version}`,
    policies: new Map(Object.entries(policies)),
    roles: new Map(Object.entries(roles)),
    servers: new Set(Object.keys(tools).map((t) => t.split('__')[0]!)),
    tools: new Map(Object.entries(tools)),
  });
  it('names the policies, roles, servers and tools added, removed and changed', () => {
    const before = summary(3, { a: '1', b: '1' }, { crm__search: 'h1', crm__refund: 'h2' }, { sales: 'agent' });
    const after = summary(4, { a: '2', c: '1' }, { crm__search: 'h1', crm__refund: 'h3', files__read: 'h4' }, { sales: 'agent,lead' });
    expect(diffBundles(before, after)).toEqual({
      from: '3',
      to: '4',
      policies: { added: ['c'], removed: ['b'], changed: ['a'] },
      roles: { added: [], removed: [], changed: ['sales'] },
      servers: { added: ['files'], removed: [] },
      tools: { added: ['files__read'], removed: [], repinned: ['crm__refund'] },
    });
  });
});

describe('policy statements, for telling which policy changed', () => {
  it('splits a Cedar file into its policies by @id, without comments, and ignores a ; inside a string', () => {
    const text = `// header; with a semicolon\n@id("a")\npermit (principal, action, resource)\nwhen { resource.name == "x;y" }; // trailing\n\n@approval("user")\n@id("b") forbid (principal, action, resource);`;
    expect([...policyStatements(text)]).toEqual([
      ['a', '@id("a") permit (principal, action, resource) when { resource.name == "x;y" }'],
      ['b', '@approval("user") @id("b") forbid (principal, action, resource)'],
    ]);
    const edited = policyStatements(text.replace('// trailing', '// another comment').replace('"x;y"', '"x;z"'));
    expect(edited.get('a')).not.toBe(policyStatements(text).get('a'));
    expect(edited.get('b')).toBe(policyStatements(text).get('b'));
  });
});

describe('the tray', () => {
  const status = (over: Partial<DaemonStatus> = {}): DaemonStatus =>
    ({
      servers: [
        { name: 'a', enabled: true, state: 'ready' },
        { name: 'b', enabled: true, state: 'ready' },
      ],
      policy: { mode: 'unmanaged' },
      audit: { healthy: true },
      pendingQuestions: 0,
      ...over,
    }) as DaemonStatus;
  it('shows state, servers and what waits for the person', () => {
    expect(trayModel(undefined).state).toBe('starting');
    expect(trayModel(status())).toMatchObject({ state: 'ok', waiting: 0, tooltip: 'Gatehouse — 2 of 2 servers ready · unmanaged' });
    // Every question waits on the desk: two approvals and one pairing request make three, not five.
    const waiting = trayModel(status({ approvals: { pending: [{} as never, {} as never], timeoutSeconds: 120, sessionGrants: 0 }, pendingQuestions: 3 }));
    expect(waiting).toMatchObject({ state: 'attention', waiting: 3, title: '3' });
    expect(waiting.tooltip).toContain('2 approvals waiting');
    expect(waiting.tooltip).toContain('1 pairing request waiting');
    expect(waiting.menu.find((m) => m.id === 'approvals')).toMatchObject({ label: 'Answer 3 waiting questions…', enabled: true });
    expect(trayModel(status({ servers: [{ name: 'a', enabled: true, state: 'crash-looping' }] as DaemonStatus['servers'] })).state).toBe('error');
    expect(trayModel(status({ policy: { mode: 'managed', state: 'fail-closed' } })).tooltip).toContain('policy failing closed');
  });
  it('says when an update waits, and offers to install it only once it is downloaded and verified (issue 17)', () => {
    const ready = trayModel(status(), { kind: 'ready', version: '1.3.0' });
    expect(ready.tooltip).toBe('Gatehouse — 2 of 2 servers ready · unmanaged · update 1.3.0 ready: restart to install');
    expect(ready.menu.find((m) => m.id === 'install-update')).toEqual({ id: 'install-update', label: 'Restart to install Gatehouse 1.3.0', enabled: true });
    const held = trayModel(status(), {
      kind: 'held',
      version: '1.3.0',
      reason: 'your organisation defers updates by 7 days',
      until: '2026-12-08T10:00:00.000Z',
    });
    expect(held.tooltip).toContain('update 1.3.0 held: your organisation defers updates by 7 days until 2026-12-08');
    expect(held.menu.some((m) => m.id === 'install-update')).toBe(false);
    expect(trayModel(status(), { kind: 'downloading', version: '1.3.0' }).menu.some((m) => m.id === 'install-update')).toBe(false);
    expect(trayModel(status(), { kind: 'refused', reason: 'latest-linux.yml is not signed by a key your organisation trusts for updates' }).tooltip).toContain(
      'update refused',
    );
    expect(trayModel(status(), { kind: 'idle' }).tooltip).toBe('Gatehouse — 2 of 2 servers ready · unmanaged');
  });

  it('asks for attention, not alarm, when a remote server waits for the person to sign in', () => {
    const waiting = trayModel(
      status({
        servers: [
          { name: 'a', enabled: true, state: 'ready' },
          { name: 'notes', enabled: true, state: 'needs-sign-in' },
        ] as DaemonStatus['servers'],
      }),
    );
    expect(waiting).toMatchObject({ state: 'attention', tooltip: 'Gatehouse — 1 of 2 servers ready · 1 server needs you to sign in · unmanaged' });
  });
});

describe('the app:// protocol of the desktop app', () => {
  const root = '/opt/gatehouse/dist/renderer';
  it('serves the console files with the CSP, and nothing outside them', () => {
    expect(resolveAppRequest('app://console/index.html', root)).toEqual({
      ok: true,
      file: `${root}/index.html`,
      headers: {
        'content-type': 'text/html; charset=utf-8',
        'content-security-policy': contentSecurityPolicy(),
        'x-content-type-options': 'nosniff',
        'cache-control': 'no-store',
      },
    });
    expect(resolveAppRequest('app://console/', root)).toMatchObject({ ok: true, file: `${root}/index.html` });
    expect(resolveAppRequest('app://console/assets/index-abc.js', root)).toMatchObject({ ok: true, file: `${root}/assets/index-abc.js` });
    expect(resolveAppRequest('app://console/../../../etc/passwd', root)).toMatchObject({ ok: false });
    // Encoded dots are decoded first, then the path is anchored under the root: it cannot climb out.
    expect(resolveAppRequest('app://console/%2e%2e/%2e%2e/secret.html', root)).toMatchObject({ ok: true, file: `${root}/secret.html` });
    expect(resolveAppRequest('app://console/assets%2f..%2f..%2f..%2fetc%2fpasswd.html', root)).toMatchObject({ file: `${root}/etc/passwd.html` });
    expect(resolveAppRequest('app://console/assets/x.exe', root)).toEqual({ ok: false, status: 404 });
    expect(resolveAppRequest('app://other/index.html', root)).toEqual({ ok: false, status: 403 });
    expect(resolveAppRequest('file:///etc/passwd', root)).toEqual({ ok: false, status: 403 });
    expect(appUrl('question')).toBe('app://console/index.html#/question');
  });
});

describe('links a window asks to open', () => {
  function contents() {
    let handler: ((details?: { url?: string }) => { action: string }) | undefined;
    const fake = { setWindowOpenHandler: (h: typeof handler) => (handler = h), on: () => fake };
    return { fake: fake as unknown as WebContents, open: (url: string) => handler!({ url }) };
  }
  it('are never opened in the app: http(s) ones go to the system browser, anything else is dropped', () => {
    const opened: string[] = [];
    const { fake, open } = contents();
    refuseNavigation(fake, (url) => opened.push(url));
    for (const url of [
      'https://idp.example/authorize?x=1',
      'http://127.0.0.1:5556/auth',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'https://user:pw@evil.example/',
      'app://console/index.html',
    ]) {
      expect(open(url)).toEqual({ action: 'deny' });
    }
    expect(opened).toEqual(['https://idp.example/authorize?x=1', 'http://127.0.0.1:5556/auth']);
    expect(isWebLink('not a url')).toBe(false);
  });
});

describe('npm start', () => {
  it('starts the desktop app where Electron and a display exist, else headless with the reason', () => {
    expect(chooseLaunch({ electronBinary: '/e/electron', platform: 'linux', env: { DISPLAY: ':0' } })).toEqual({ kind: 'electron', binary: '/e/electron' });
    expect(chooseLaunch({ electronBinary: '/e/electron', platform: 'darwin', env: {} })).toMatchObject({ kind: 'electron' });
    expect(chooseLaunch({ electronBinary: undefined, platform: 'linux', env: { DISPLAY: ':0' } })).toMatchObject({
      kind: 'headless',
      reason: /Electron binary is not installed/,
    });
    // The message is true (issue 17): npm ci never downloads the binary, and it names the one command that does.
    const missing = chooseLaunch({ electronBinary: undefined, platform: 'darwin', env: {} });
    expect(missing.kind === 'headless' && missing.reason).toMatch(/`npm ci` never downloads it.*run `npm run desktop:install`/);
    expect(chooseLaunch({ electronBinary: '/e/electron', platform: 'linux', env: {} })).toMatchObject({ kind: 'headless', reason: /no display/ });
    expect(chooseLaunch({ electronBinary: '/e/electron', platform: 'linux', env: { WAYLAND_DISPLAY: 'wayland-0', GATEHOUSE_HEADLESS: '1' } })).toMatchObject({
      kind: 'headless',
    });
  });
});

describe('the console sign-in code', () => {
  it("goes to the daemon's terminal, with the address to type it at", () => {
    const write = vi.fn();
    expect(terminalAnnouncer({ write })('http://127.0.0.1:5000/login', 'K7QF-2M9X')).toBe(true);
    expect(write.mock.calls.join('')).toContain('open http://127.0.0.1:5000/login and type the sign-in code K7QF-2M9X');
  });
  it('is shown nowhere when the daemon has no terminal, and says so', () => {
    expect(terminalAnnouncer(undefined)('http://127.0.0.1:5000/login', 'K7QF-2M9X')).toBe(false);
  });
});
