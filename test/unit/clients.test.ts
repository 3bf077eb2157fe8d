/**
 * The clients capability's knowledge and planning (src/node/clients/): where each client keeps its
 * config on Linux, macOS and Windows, the environment it gives a stdio server, edits that keep
 * comments and everything else, the import plan (credentials out of plain files), and the listing
 * of configured servers without secret values. End to end with every client:
 * test/integration/clients-setup.test.ts.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLIENT_APP_IDS } from '../../src/common/control-api.js';
import { gatehouseServerName, listConfiguredServers, looksLikeCredential, planImport, planSetup, serverEntries } from '../../src/node/clients/clients.js';
import { applyChanges, describeChange, lastOperation, undoOperation } from '../../src/node/clients/files.js';
import { bridgeLaunch } from '../../src/node/clients/launch.js';
import { CLIENTS, CLIENT_IDS, launchEnvironmentOf, type Place } from '../../src/node/clients/registry.js';

const scratch = mkdtempSync(join(tmpdir(), 'gh-clients-unit-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const linux: Place = { platform: 'linux', home: '/home/ann', env: {} };
const mac: Place = { platform: 'darwin', home: '/Users/ann', env: {} };
const win: Place = { platform: 'win32', home: 'C:\\Users\\ann', env: { APPDATA: 'C:\\Users\\ann\\AppData\\Roaming' } };

describe('where each client keeps its config', () => {
  it.each([
    [
      'claude-desktop',
      '/home/ann/.config/Claude/claude_desktop_config.json',
      '/Users/ann/Library/Application Support/Claude/claude_desktop_config.json',
      'C:\\Users\\ann\\AppData\\Roaming\\Claude\\claude_desktop_config.json',
    ],
    ['claude-code', '/home/ann/.claude.json', '/Users/ann/.claude.json', 'C:\\Users\\ann\\.claude.json'],
    ['cursor', '/home/ann/.cursor/mcp.json', '/Users/ann/.cursor/mcp.json', 'C:\\Users\\ann\\.cursor\\mcp.json'],
    [
      'vscode',
      '/home/ann/.config/Code/User/mcp.json',
      '/Users/ann/Library/Application Support/Code/User/mcp.json',
      'C:\\Users\\ann\\AppData\\Roaming\\Code\\User\\mcp.json',
    ],
    [
      'windsurf',
      '/home/ann/.codeium/windsurf/mcp_config.json',
      '/Users/ann/.codeium/windsurf/mcp_config.json',
      'C:\\Users\\ann\\.codeium\\windsurf\\mcp_config.json',
    ],
    ['zed', '/home/ann/.config/zed/settings.json', '/Users/ann/.config/zed/settings.json', 'C:\\Users\\ann\\AppData\\Roaming\\Zed\\settings.json'],
    ['codex', '/home/ann/.codex/config.toml', '/Users/ann/.codex/config.toml', 'C:\\Users\\ann\\.codex\\config.toml'],
    ['gemini-cli', '/home/ann/.gemini/settings.json', '/Users/ann/.gemini/settings.json', 'C:\\Users\\ann\\.gemini\\settings.json'],
  ] as const)('%s: on Linux, macOS and Windows', (id, onLinux, onMac, onWindows) => {
    expect(CLIENTS[id].configFile(linux)).toBe(onLinux);
    expect(CLIENTS[id].configFile(mac)).toBe(onMac);
    expect(CLIENTS[id].configFile(win)).toBe(onWindows);
  });

  it('follows XDG_CONFIG_HOME and CODEX_HOME when they are absolute, and ignores them when not', () => {
    expect(CLIENTS['claude-desktop'].configFile({ ...linux, env: { XDG_CONFIG_HOME: '/cfg' } })).toBe('/cfg/Claude/claude_desktop_config.json');
    expect(CLIENTS['claude-desktop'].configFile({ ...linux, env: { XDG_CONFIG_HOME: 'relative' } })).toBe(
      '/home/ann/.config/Claude/claude_desktop_config.json',
    );
    expect(CLIENTS.codex.configFile({ ...linux, env: { CODEX_HOME: '/opt/codex' } })).toBe('/opt/codex/config.toml');
  });

  it('is the same list the control API accepts', () => {
    expect([...CLIENT_APP_IDS]).toEqual([...CLIENT_IDS]);
  });
});

describe('the environment each client gives the bridge', () => {
  const parent = {
    HOME: '/home/ann',
    PATH: '/usr/bin',
    USER: 'ann',
    LOGNAME: 'ann',
    SHELL: '/bin/bash',
    TERM: 'xterm',
    XDG_RUNTIME_DIR: '/run/user/1000',
    DBUS_SESSION_BUS_ADDRESS: 'unix:path=/run/user/1000/bus',
    LANG: 'C.UTF-8',
    BASH_FUNC_x: '() { :; }',
  };

  it("Claude Desktop, Cursor and Windsurf pass the MCP SDK's allow-list only: no XDG_RUNTIME_DIR, no session bus", () => {
    for (const id of ['claude-desktop', 'cursor', 'windsurf'] as const) {
      expect(launchEnvironmentOf(CLIENTS[id], linux, parent, { GATEHOUSE_HOME: '/g' })).toEqual({
        HOME: '/home/ann',
        PATH: '/usr/bin',
        USER: 'ann',
        LOGNAME: 'ann',
        SHELL: '/bin/bash',
        TERM: 'xterm',
        GATEHOUSE_HOME: '/g',
      });
    }
  });

  it('Codex CLI passes its own allow-list; VS Code, Claude Code, Zed and Gemini CLI pass their whole environment (less exported functions)', () => {
    expect(launchEnvironmentOf(CLIENTS.codex, linux, parent, {})).toEqual({
      HOME: '/home/ann',
      PATH: '/usr/bin',
      USER: 'ann',
      LOGNAME: 'ann',
      SHELL: '/bin/bash',
      TERM: 'xterm',
      LANG: 'C.UTF-8',
    });
    const { BASH_FUNC_x: _dropped, ...rest } = parent;
    expect(launchEnvironmentOf(CLIENTS.vscode, linux, parent, {})).toEqual(rest);
  });
});

describe('setting up a client', () => {
  const launch = bridgeLaunch({ command: '/usr/bin/node', args: ['/opt/gatehouse/bin/gatehouse.js'] }, 'vscode', { env: {} });

  it('names the bridge by absolute path and takes more bridge arguments as data', () => {
    expect(launch).toEqual({ command: '/usr/bin/node', args: ['/opt/gatehouse/bin/gatehouse.js', 'connect', '--client', 'vscode'], env: {} });
    const single = bridgeLaunch({ command: '/usr/bin/gatehouse', args: [] }, 'zed', { env: { GATEHOUSE_HOME: '/srv/gh' }, extraArgs: ['--server', 'memory'] });
    expect(single).toEqual({ command: '/usr/bin/gatehouse', args: ['connect', '--client', 'zed', '--server', 'memory'], env: { GATEHOUSE_HOME: '/srv/gh' } });
  });

  it('adds the entry to a JSONC file and keeps its comments, trailing commas and other settings', async () => {
    const home = join(scratch, 'vs');
    const file = CLIENTS.vscode.configFile({ ...linux, home });
    mkdirSync(dirname(file), { recursive: true });
    const before = '{\n  // my inputs\n  "inputs": [],\n  "servers": {\n    "docs": { "type": "stdio", "command": "docs-mcp" }, // mine\n  },\n}\n';
    writeFileSync(file, before);
    const { change } = await planSetup(CLIENTS.vscode, { ...linux, home }, launch);
    expect(change.after).toContain('// my inputs');
    expect(change.after).toContain('// mine');
    expect(serverEntries(CLIENTS.vscode, CLIENTS.vscode.format.read(change.after, file)).map((e) => e.name)).toEqual(['docs', 'gatehouse']);
    expect(describeChange(change)).toMatch(/^\+\s+"gatehouse": \{/m);
  });

  it('adds a [mcp_servers.gatehouse] table to config.toml and keeps the rest as written', async () => {
    const home = join(scratch, 'codex');
    const file = CLIENTS.codex.configFile({ ...linux, home });
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, 'model = "o3" # the model\n\n[mcp_servers.docs]\ncommand = "docs-mcp"\n');
    const { change } = await planSetup(CLIENTS.codex, { ...linux, home }, launch);
    expect(change.after.startsWith('model = "o3" # the model\n\n[mcp_servers.docs]\ncommand = "docs-mcp"\n')).toBe(true);
    expect(change.after).toContain(
      '[mcp_servers.gatehouse]\ncommand = "/usr/bin/node"\nargs = ["/opt/gatehouse/bin/gatehouse.js", "connect", "--client", "vscode"]',
    );
  });

  it('changes nothing when the entry is already there, and refuses a broken file with its line, changing nothing', async () => {
    const home = join(scratch, 'twice');
    const file = CLIENTS.cursor.configFile({ ...linux, home });
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify({ mcpServers: { gatehouse: CLIENTS.cursor.entry(launch) } }));
    const { change } = await planSetup(CLIENTS.cursor, { ...linux, home }, launch);
    expect(change.after).toBe(change.before);
    writeFileSync(file, '{\n  "mcpServers": {\n    "x": \n}\n');
    await expect(planSetup(CLIENTS.cursor, { ...linux, home }, launch)).rejects.toThrow(
      /mcp\.json: line 4: ValueExpected; fix the file \(nothing was changed\)/,
    );
  });

  it('writes atomically with a backup, and undo restores the bytes, or refuses when the file changed since', async () => {
    const state = join(scratch, 'state');
    const file = join(scratch, 'undo', 'mcp.json');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, '{"mcpServers":{}}  \n');
    await applyChanges(state, { client: 'cursor', kind: 'setup' }, [{ file, before: '{"mcpServers":{}}  \n', after: '{"mcpServers":{"gatehouse":{}}}\n' }]);
    writeFileSync(file, 'edited by hand\n');
    const op = (await lastOperation(state, 'cursor'))!;
    await expect(undoOperation(state, op)).rejects.toThrow(/was changed after Gatehouse wrote it, so it is not overwritten; its earlier content is in/);
    writeFileSync(file, '{"mcpServers":{"gatehouse":{}}}\n');
    await undoOperation(state, op);
    expect(readFileSync(file, 'utf8')).toBe('{"mcpServers":{}}  \n');
    expect(await lastOperation(state, 'cursor')).toBeUndefined();
  });
});

describe('planning an import', () => {
  it("moves credentials into secrets and keeps other values, escaping $ for Gatehouse's config", () => {
    const plan = planImport(
      [
        {
          name: 'GitHub Tools',
          type: 'stdio',
          command: 'npx',
          args: ['-y', 'gh-mcp'],
          env: { GITHUB_TOKEN: 'ghp_abcdefghijklmnop', REGION: 'eu$1' },
          disabled: false,
        },
        { name: 'remote', type: 'http', url: 'https://mcp.example.com/mcp', headers: { Authorization: 'Bearer abcdefghijklmnop' }, disabled: true },
      ],
      { existing: {}, secrets: 'store', client: 'cursor' },
    );
    expect(plan.add['github-tools']).toEqual({
      type: 'stdio',
      command: 'npx',
      args: ['-y', 'gh-mcp'],
      env: { GITHUB_TOKEN: '${secret:github-tools_GITHUB_TOKEN}', REGION: 'eu$$1' },
    });
    expect(plan.add.remote).toEqual({
      type: 'http',
      url: 'https://mcp.example.com/mcp',
      headers: { Authorization: '${secret:remote_Authorization}' },
      enabled: false,
    });
    expect(plan.secrets.map((s) => s.name)).toEqual(['github-tools_GITHUB_TOKEN', 'remote_Authorization']);
  });

  it('leaves alone what only the client can fill in, and what Gatehouse already has under that name differently', () => {
    const plan = planImport(
      [
        { name: 'asks', type: 'stdio', command: 'x', env: { KEY: '${input:key}' }, disabled: false },
        { name: 'memory', type: 'stdio', command: 'other', disabled: false },
      ],
      { existing: { memory: { type: 'stdio', command: 'node' }, 'memory-cursor': { type: 'stdio', command: 'else' } }, secrets: 'store', client: 'cursor' },
    );
    expect(plan.leftAlone).toEqual([
      { entry: 'asks', reason: 'it uses ${…} values only this client can fill in' },
      { entry: 'memory', reason: 'Gatehouse already has different servers named "memory" and "memory-cursor"' },
    ]);
  });

  it("in managed mode moves only the catalog's servers and lists the others", () => {
    const plan = planImport(
      [
        { name: 'crm', type: 'stdio', command: 'crm-mcp', disabled: false },
        { name: 'shadow', type: 'stdio', command: 'shadow-mcp', disabled: false },
      ],
      { existing: {}, secrets: 'store', client: 'cursor', managed: { servers: ['crm'] } },
    );
    expect(plan.add).toEqual({});
    expect(plan.moved).toEqual([{ entry: 'crm', server: 'crm', note: "provided by the organisation's catalog" }]);
    expect(plan.leftAlone).toEqual([{ entry: 'shadow', reason: 'the managed policy does not allow it (not in the catalog)' }]);
  });

  it('tells credentials by name or by shape, and makes server names Gatehouse accepts', () => {
    expect(looksLikeCredential('API_KEY', 'abcdefgh')).toBe(true);
    expect(looksLikeCredential('REGION', 'sk-abcdefghijkl')).toBe(true);
    expect(looksLikeCredential('REGION', 'eu-west-1')).toBe(false);
    expect(gatehouseServerName('My_Fancy Server!')).toBe('my-fancy-server');
    expect(gatehouseServerName('***')).toBe('server');
  });
});

describe('listing the servers configured in clients', () => {
  it('names every server of every installed client without the values of its environment, headers or URL credentials', async () => {
    const home = join(scratch, 'listed');
    const place = { ...linux, home };
    const cursor = CLIENTS.cursor.configFile(place);
    mkdirSync(dirname(cursor), { recursive: true });
    writeFileSync(
      cursor,
      JSON.stringify({
        mcpServers: {
          docs: { command: 'docs', env: { TOKEN: 'canary-value-1' } },
          web: { url: 'https://u:canary-value-2@x.example/mcp?key=canary-value-3', headers: { Authorization: 'canary-value-4' } },
        },
      }),
    );
    const found = await listConfiguredServers(place);
    expect(found.map((f) => f.client)).toEqual(['cursor']);
    expect(found[0]!.servers.map((s) => [s.name, s.envKeys, s.headerNames])).toEqual([
      ['docs', ['TOKEN'], []],
      ['web', [], ['Authorization']],
    ]);
    expect(JSON.stringify(found)).not.toMatch(/canary-value/);
  });
});
