/**
 * What both direct-path tests share, on the socket (direct-calls.test.ts) and over HTTP
 * (http-direct-calls.test.ts): the servers, the calls each sends through the SDK's path and the
 * direct one (one list, so that both endpoints are held to the same cases), and the count of the
 * calls the SDK dispatched, which tells the two paths apart.
 */
import { fileURLToPath } from 'node:url';
import { vi } from 'vitest';
import { Protocol } from '@modelcontextprotocol/server';
import type { ConfigInput } from '../../../src/common/config.js';
import { EVERYTHING } from '../../support/servers.js';

const MISBEHAVING = fileURLToPath(new URL('../../fixtures/misbehaving-server.mjs', import.meta.url));
const LAB = fileURLToPath(new URL('../../fixtures/lab-server.mjs', import.meta.url));

/** server-everything, the misbehaving fixture as `srv` (with a tool whose result is malformed), the lab fixture as `lab`. */
export const SERVERS: NonNullable<ConfigInput['servers']> = {
  everything: { type: 'stdio', command: process.execPath, args: [EVERYTHING(), 'stdio'] },
  srv: { type: 'stdio', command: process.execPath, args: [MISBEHAVING, '--name', 'srv', '--malformed-tool'] },
  lab: { type: 'stdio', command: process.execPath, args: [LAB, '--legacy'] },
};

/**
 * A 2026-07-28 `Mcp-Name` header value that sends the call through the SDK's handler over HTTP: the
 * SDK decodes an encoded name, and the direct path (modern-calls.ts) leaves such a call to it.
 */
export function nameForSdkPath(name: string): string {
  return `=?base64?${Buffer.from(name, 'utf8').toString('base64')}?=`;
}

/**
 * Counts the `tools/call` requests the SDK's dispatch receives in this process (the daemon's
 * downstream servers run in the test's process), from now until `restore()`.
 */
export function countSdkToolCalls(): { count(): number; restore(): void } {
  const dispatched = vi.spyOn(Protocol.prototype as unknown as { _onrequest(request: { method: string }, extra?: unknown): void }, '_onrequest');
  return {
    count: () => dispatched.mock.calls.filter(([request]) => request.method === 'tools/call').length,
    restore: () => dispatched.mockRestore(),
  };
}

/** Results of every shape real servers give (server-everything, the misbehaving fixture as `srv`). */
export const RESULT_CALLS = [
  { name: 'everything__echo', arguments: { message: 'hello, direct path' } },
  { name: 'everything__get-sum', arguments: { a: 2, b: 40 } },
  { name: 'everything__get-structured-content', arguments: { location: 'Chicago' } },
  { name: 'everything__get-annotated-message', arguments: { messageType: 'error', includeImage: true } },
  { name: 'everything__get-resource-links', arguments: { count: 2 } },
  { name: 'everything__get-tiny-image', arguments: {} },
  { name: 'srv__echo', arguments: { text: 'ünïcødé ✓ "quoted" \\ \u2028' } },
  { name: 'srv__echo', arguments: { text: 'with meta' }, _meta: { 'example.com/trace': 'abc' } },
];

/** Tool errors, unknown tools, bad arguments, and a result the server got wrong. */
export const ERROR_CALLS = [
  { name: 'srv__no-such-tool', arguments: {} },
  { name: 'nobody__nothing', arguments: {} },
  { name: 'everything__get-sum', arguments: { a: 'not a number', b: 1 } },
  { name: 'srv__malformed', arguments: {} },
];

/** Progress before the result (the lab fixture as `lab`). */
export const PROGRESS_CALL = { name: 'lab__count', arguments: { steps: 3, gapMs: 5 }, _meta: { progressToken: 'p-1' } };
