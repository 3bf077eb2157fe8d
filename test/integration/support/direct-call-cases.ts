/**
 * The calls both direct-path tests send through the SDK's path and the direct one, on the socket
 * (direct-calls.test.ts) and over HTTP (http-direct-calls.test.ts): one list, so that both
 * endpoints are held to the same cases.
 */

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
