/**
 * The audit sync's HTTP client to the hub, at the edges a slow or stopping run meets: the time limit
 * and Gatehouse's stop cover the whole exchange, the answer's body included, and what the body says
 * is told as it is. The hub itself (a real server on PostgreSQL) is exercised by
 * test/integration/hub-ingest.test.ts; here `fetch` stands in for it, to stall on demand.
 */
import { describe, expect, it } from 'vitest';
import { loadDeviceKey } from '../../src/core/audit/device-key.js';
import { HubClient, HubError } from '../../src/node/audit/hub-client.js';
import { MemorySecretStore } from '../../src/core/secrets.js';

/** A hub that answers 200 at once and then sends `body` (or nothing, ever, until the request is aborted). */
function hub(body?: string): typeof fetch {
  return async (_url, init) =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          if (body !== undefined) {
            controller.enqueue(new TextEncoder().encode(body));
            controller.close();
            return;
          }
          init?.signal?.addEventListener('abort', () => controller.error(init.signal!.reason), { once: true });
        },
      }),
      { status: 200, headers: { 'content-type': 'application/json' } },
    );
}

async function client(fetchImpl: typeof fetch, timeoutMs = 15_000): Promise<HubClient> {
  const key = await loadDeviceKey(new MemorySecretStore(), 'device-1', { create: true });
  return new HubClient({ url: 'http://hub.invalid', key, timeoutMs, fetch: fetchImpl });
}

describe('the hub client', () => {
  it('gives up on a hub that sends its headers and then stalls, within its time limit', async () => {
    const error = (await (await client(hub(), 50)).state().catch((e: unknown) => e)) as HubError;
    expect(error).toBeInstanceOf(HubError);
    expect([error.code, error.message]).toEqual(['hub_timeout', 'the hub at http://hub.invalid did not answer within 50 ms']);
  });

  it('abandons a request whose answer is still coming when Gatehouse stops', async () => {
    const stop = new AbortController();
    const pending = (await client(hub())).sendBatch({ device: 'device-1', events: [], checkpoints: [] }, stop.signal).catch((e: unknown) => e);
    setTimeout(() => stop.abort(), 10);
    const error = (await pending) as HubError;
    expect([error.code, error.message]).toEqual(['stopped', 'the request was abandoned because Gatehouse is stopping']);
  });

  it('reads an answer that came whole, and tells one that is not JSON as it is', async () => {
    await expect((await client(hub('{"device":"device-1","ack":7}'))).state()).resolves.toEqual({ device: 'device-1', ack: 7 });
    await expect((await client(hub('not json'))).state()).rejects.toBeInstanceOf(SyntaxError);
  });
});
