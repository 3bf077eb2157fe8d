/**
 * Log messages a server sends while it runs a call reach the calling client at the level the client
 * asked for, in both eras: a 2025-era client sets its level once (`logging/setLevel`), a 2026-07-28
 * client names it in each request's `_meta` envelope (`io.modelcontextprotocol/logLevel`), which the
 * SDK lifts out of `_meta` before a handler sees it. Gatehouse must read it there, on the socket
 * bridge and over HTTP, and must pass it on to the server, whose own SDK drops messages below it.
 *
 * The server is the conformance fixture: its `test_tool_with_logging` sends three `info` messages.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LOG_LEVEL_META_KEY } from '../../src/core/ports.js';
import { closeAll, connectBridge, connectHttp, type Connected, type Era } from './support/clients.js';
import { startGatehouse, type RunningGatehouse } from './support/gatehouse.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/conformance-server.mjs', import.meta.url));
const TOOL = 'conformance__test_tool_with_logging';

let gh: RunningGatehouse;
beforeAll(async () => {
  gh = await startGatehouse({ servers: { conformance: { type: 'stdio', command: process.execPath, args: [FIXTURE] } }, clients: ['ide'] });
});
afterAll(async () => gh?.stop());
afterEach(closeAll);

type Endpoint = 'bridge' | 'http';
const connect = (endpoint: Endpoint, era: Era): Promise<Connected> =>
  endpoint === 'bridge' ? connectBridge(gh.env, { era, client: 'ide', token: gh.tokens.ide }) : connectHttp(gh.httpUrl, { era, token: gh.tokens.ide });

/** Calls the logging tool and returns the data of every log message the client received during the call. */
async function logsOfCall(connected: Connected, meta?: Record<string, unknown>): Promise<string[]> {
  const seen: string[] = [];
  connected.client.setNotificationHandler('notifications/message', (n: { params: { level: string; data: unknown } }) => {
    seen.push(`${n.params.level}: ${String(n.params.data)}`);
  });
  const result = (await connected.client.callTool({ name: TOOL, arguments: {}, ...(meta ? { _meta: meta } : {}) })) as { isError?: boolean };
  expect(result.isError).toBeFalsy();
  return seen;
}

const ALL_THREE = ['info: Tool execution started', 'info: Tool processing data', 'info: Tool execution completed'];

describe.each<Endpoint>(['bridge', 'http'])('over %s', (endpoint) => {
  describe('a 2026-07-28 client', () => {
    it('receives the messages at or above the level its request names', async () => {
      const connected = await connect(endpoint, 'modern');
      expect(await logsOfCall(connected, { [LOG_LEVEL_META_KEY]: 'info' })).toEqual(ALL_THREE);
      expect(await logsOfCall(connected, { [LOG_LEVEL_META_KEY]: 'debug' })).toEqual(ALL_THREE);
    });

    it('receives none below the level its request names', async () => {
      const connected = await connect(endpoint, 'modern');
      expect(await logsOfCall(connected, { [LOG_LEVEL_META_KEY]: 'warning' })).toEqual([]);
    });

    it('receives none when its request names no level', async () => {
      const connected = await connect(endpoint, 'modern');
      expect(await logsOfCall(connected)).toEqual([]);
    });
  });

  describe('a 2025-era client', () => {
    it('receives none until it sets a level, and then those at or above it', async () => {
      const connected = await connect(endpoint, 'legacy');
      expect(await logsOfCall(connected)).toEqual([]);
      await connected.client.setLoggingLevel('info');
      expect(await logsOfCall(connected)).toEqual(ALL_THREE);
      await connected.client.setLoggingLevel('error');
      expect(await logsOfCall(connected)).toEqual([]);
    });
  });
});
