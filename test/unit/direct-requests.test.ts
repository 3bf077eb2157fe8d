/**
 * Governed requests to a 2025-era stdio server without the SDK client's pipeline: what is sent,
 * what is taken back, and how a request ends. The codec here stands in for the SDK's era codec; the
 * real one, against real servers (timeouts, cancellations, crashes, oversized and malformed answers),
 * is exercised by test/integration/faults.test.ts, aggregation.test.ts and direct-calls.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ProtocolError, SdkError, SdkErrorCode } from '@modelcontextprotocol/client';
import { DirectRequests, type ResultCodec } from '../../src/node/upstream/direct-requests.js';

type Validation = { ok: true; value: unknown } | { ok: false; reason: string; message?: string };

function setUp(validate: (raw: unknown) => Validation = (raw) => ({ ok: true, value: raw })) {
  const sent: Record<string, unknown>[] = [];
  let counter = 7;
  const codec: ResultCodec = { decodeResult: (_method, raw) => ({ kind: 'complete', result: raw }), validateResult: (_method, raw) => validate(raw) };
  const direct = new DirectRequests({ send: async (message) => void sent.push(message) }, codec, () => counter++);
  return { direct, sent };
}

const options = (extra: Partial<Parameters<DirectRequests['request']>[2]> = {}) => ({
  signal: new AbortController().signal,
  timeoutMs: 1_000,
  maxTotalTimeoutMs: 4_000,
  ...extra,
});

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('direct requests to a 2025-era server', () => {
  it('sends each request with the next id of the shared counter, and a progress token (the id) only when progress is wanted', async () => {
    const { direct, sent } = setUp();
    void direct.request('tools/call', { name: 'echo', arguments: { text: 'a' } }, options());
    void direct.request('tools/call', { name: 'echo', _meta: { trace: 'x' } }, options({ onProgress: () => undefined }));
    expect(sent).toEqual([
      { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { text: 'a' } } },
      { jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'echo', _meta: { trace: 'x', progressToken: 8 } } },
    ]);
  });

  it('resolves with the result as the era codec checked it, and refuses one it does not accept with the SDK’s wording', async () => {
    const { direct } = setUp((raw) =>
      (raw as { content?: unknown }).content === 'bad'
        ? { ok: false, reason: 'invalid', message: 'content: expected array' }
        : { ok: true, value: { ...(raw as object), checked: true } },
    );
    const good = direct.request('tools/call', { name: 'a' }, options());
    const bad = direct.request('tools/call', { name: 'b' }, options());
    expect(direct.take({ jsonrpc: '2.0', id: 7, result: { content: [] } })).toBe(true);
    expect(direct.take({ jsonrpc: '2.0', id: 8, result: { content: 'bad' } })).toBe(true);
    await expect(good).resolves.toEqual({ content: [], checked: true });
    const error = await bad.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SdkError);
    expect((error as SdkError).code).toBe(SdkErrorCode.InvalidResult);
    expect((error as Error).message).toContain('Invalid result for tools/call: content: expected array');
  });

  it("rejects with the server's own JSON-RPC error, code and data kept", async () => {
    const { direct } = setUp();
    const call = direct.request('tools/call', { name: 'a' }, options());
    direct.take({ jsonrpc: '2.0', id: 7, error: { code: -32000, message: 'the server says no', data: { why: 'because' } } });
    const error = (await call.catch((e: unknown) => e)) as ProtocolError;
    expect(error).toBeInstanceOf(ProtocolError);
    expect([error.code, error.message.includes('the server says no'), error.data]).toEqual([-32000, true, { why: 'because' }]);
  });

  it('leaves every other message to the SDK client: its own answers, the server’s requests and other notifications', () => {
    const { direct } = setUp();
    void direct.request('tools/call', { name: 'a' }, options({ onProgress: () => undefined }));
    expect(direct.take({ jsonrpc: '2.0', id: 3, result: {} })).toBe(false);
    expect(direct.take({ jsonrpc: '2.0', id: 7, method: 'roots/list' })).toBe(false);
    expect(direct.take({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 99, progress: 1 } })).toBe(false);
    expect(direct.take({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'x' } })).toBe(false);
  });

  it('hands progress on without its token and restarts the timeout, up to the total limit, then gives up and tells the server', async () => {
    const { direct, sent } = setUp();
    const seen: unknown[] = [];
    const call = direct.request('tools/call', { name: 'a' }, options({ onProgress: (p) => seen.push(p) }));
    call.catch(() => undefined);
    for (let step = 1; step <= 4; step++) {
      await vi.advanceTimersByTimeAsync(900);
      expect(direct.take({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 7, progress: step, total: 9 } })).toBe(true);
    }
    expect(seen).toEqual([1, 2, 3, 4].map((progress) => ({ progress, total: 9 })));
    await vi.advanceTimersByTimeAsync(900);
    // 4,500 ms after it started, past the total limit of 4,000, though never 1,000 ms without progress: the next progress ends it.
    direct.take({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 7, progress: 5 } });
    await expect(call).rejects.toThrow('Maximum total timeout exceeded');
    expect(sent.at(-1)).toMatchObject({ method: 'notifications/cancelled', params: { requestId: 7 } });
  });

  it('times out as the SDK client does: the server is told to cancel, and the error is a request timeout', async () => {
    const { direct, sent } = setUp();
    const call = direct.request('tools/call', { name: 'hang' }, options());
    call.catch(() => undefined);
    await vi.advanceTimersByTimeAsync(1_000);
    const error = (await call.catch((e: unknown) => e)) as SdkError;
    expect([error.code, error.message]).toEqual([SdkErrorCode.RequestTimeout, 'Request timed out']);
    expect(sent.at(-1)).toEqual({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7, reason: String(error) } });
    // Its late answer is no longer this request's: the SDK client reports it as unknown.
    expect(direct.take({ jsonrpc: '2.0', id: 7, result: {} })).toBe(false);
  });

  it('cancels upstream when the caller aborts, with the reason, and refuses a request whose caller already left', async () => {
    const { direct, sent } = setUp();
    const controller = new AbortController();
    const call = direct.request('tools/call', { name: 'slow' }, options({ signal: controller.signal }));
    controller.abort('the user pressed stop');
    await expect(call).rejects.toThrow('the user pressed stop');
    expect(sent.at(-1)).toEqual({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7, reason: 'the user pressed stop' } });
    await expect(direct.request('tools/call', { name: 'x' }, options({ signal: controller.signal }))).rejects.toBeInstanceOf(SdkError);
    expect(sent).toHaveLength(2);
  });

  it('cancels upstream when Gatehouse stops, with its reason, leaving the caller’s own signal alone, and sends nothing once stopped', async () => {
    const { direct, sent } = setUp();
    const caller = new AbortController();
    const stop = new AbortController();
    const call = direct.request('tools/call', { name: 'slow' }, options({ signal: caller.signal, stop: stop.signal }));
    stop.abort(new Error('Gatehouse is stopping'));
    await expect(call).rejects.toThrow('Gatehouse is stopping');
    expect(sent.at(-1)).toEqual({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7, reason: 'Error: Gatehouse is stopping' } });
    expect(caller.signal.aborted).toBe(false);
    await expect(direct.request('tools/call', { name: 'x' }, options({ stop: stop.signal }))).rejects.toThrow('Gatehouse is stopping');
    expect(sent).toHaveLength(2);
  });

  it('stops listening for Gatehouse’s stop once its connection closes (the signal outlives every connection)', () => {
    const { direct } = setUp();
    const stop = new AbortController();
    const added = vi.spyOn(stop.signal, 'addEventListener');
    const removed = vi.spyOn(stop.signal, 'removeEventListener');
    void direct.request('tools/call', { name: 'a' }, options({ stop: stop.signal })).catch(() => undefined);
    void direct.request('tools/call', { name: 'b' }, options({ stop: stop.signal })).catch(() => undefined);
    expect(added).toHaveBeenCalledTimes(1);
    direct.close();
    expect(removed).toHaveBeenCalledWith('abort', added.mock.calls[0]![1]);
  });

  it('fails every request in flight when the connection closes, and every later one at once', async () => {
    const { direct } = setUp();
    const call = direct.request('tools/call', { name: 'a' }, options());
    direct.close();
    const error = (await call.catch((e: unknown) => e)) as SdkError;
    expect([error.code, error.message]).toEqual([SdkErrorCode.ConnectionClosed, 'Connection closed']);
    await expect(direct.request('tools/call', { name: 'b' }, options())).rejects.toThrow('Connection closed');
  });
});
