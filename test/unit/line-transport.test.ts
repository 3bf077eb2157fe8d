/**
 * Newline-delimited JSON-RPC over a pair of streams (src/node/line-transport.ts): what a line becomes,
 * for upstream children and downstream socket clients alike.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ListTexts } from '../../src/node/downstream/wire-json.js';
import { LineTransport } from '../../src/node/line-transport.js';

function open(maxMessageBytes = 1024) {
  const input = new PassThrough();
  const output = new PassThrough();
  const messages: unknown[] = [];
  const garbage: { line: string; problem: string }[] = [];
  const oversized: { bytes: number; id: string | number | undefined }[] = [];
  const transport = new LineTransport(input, output, {
    maxMessageBytes,
    onGarbage: (line, problem) => garbage.push({ line, problem }),
    onOversized: (bytes, id) => oversized.push({ bytes, id }),
  });
  transport.onmessage = (message) => messages.push(message);
  return { input, output, transport, messages, garbage, oversized };
}

const ping = { jsonrpc: '2.0', id: 1, method: 'ping' };

describe('the line transport', () => {
  it('delivers a message whose line ends in CRLF, and one split across chunks', async () => {
    const t = open();
    await t.transport.start();
    t.input.write(JSON.stringify(ping) + '\r\n');
    const text = JSON.stringify({ jsonrpc: '2.0', id: 2, result: { ok: true } });
    t.input.write(text.slice(0, 10));
    t.input.write(text.slice(10) + '\n');
    expect(t.messages).toEqual([ping, { jsonrpc: '2.0', id: 2, result: { ok: true } }]);
    expect(t.garbage).toEqual([]);
  });

  it('passes over empty, blank and bare carriage-return lines without calling them garbage', async () => {
    const t = open();
    await t.transport.start();
    t.input.write('\n  \n\r\n\t \r\n' + JSON.stringify(ping) + '\n');
    expect(t.messages).toEqual([ping]);
    expect(t.garbage).toEqual([]);
  });

  it('reports a line that is not JSON, and JSON that is not a JSON-RPC message, and goes on reading', async () => {
    const t = open();
    await t.transport.start();
    t.input.write('Server listening on stdout\n[1,2]\n' + JSON.stringify(ping) + '\n');
    expect(t.garbage).toEqual([
      { line: 'Server listening on stdout', problem: 'not JSON' },
      { line: '[1,2]', problem: 'not a JSON-RPC 2.0 message' },
    ]);
    expect(t.messages).toEqual([ping]);
  });

  it('discards a line over the limit, names the id its start revealed, and reads the next line whole', async () => {
    const t = open(64);
    await t.transport.start();
    t.input.write(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { text: 'x'.repeat(200) } }) + '\n');
    t.input.write(JSON.stringify(ping) + '\n');
    expect(t.oversized).toHaveLength(1);
    expect(t.oversized[0]!.id).toBe(7);
    expect(t.oversized[0]!.bytes).toBeGreaterThan(64);
    expect(t.messages).toEqual([ping]);
  });

  it('writes each message as one line', async () => {
    const t = open();
    await t.transport.start();
    const lines: string[] = [];
    t.output.on('data', (chunk: Buffer) => lines.push(chunk.toString('utf8')));
    await t.transport.send({ jsonrpc: '2.0', id: 3, result: { text: 'a\nb' } });
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.join('')).toBe('{"jsonrpc":"2.0","id":3,"result":{"text":"a\\nb"}}\n');
  });

  it('writes a kept tools list as one line, byte for byte what JSON.stringify writes', async () => {
    const t = open();
    await t.transport.start();
    const chunks: Buffer[] = [];
    t.output.on('data', (chunk: Buffer) => chunks.push(chunk));
    const tools = [
      { name: 'naïve 工具', inputSchema: { type: 'object' } },
      { name: 'two', description: 'a "quoted"\nline' },
    ];
    await t.transport.send({ jsonrpc: '2.0', id: 4, result: { tools: new ListTexts().mark([...tools]) } } as never);
    await new Promise((resolve) => setImmediate(resolve));
    expect(Buffer.concat(chunks).toString('utf8')).toBe(JSON.stringify({ jsonrpc: '2.0', id: 4, result: { tools } }) + '\n');
  });
});
