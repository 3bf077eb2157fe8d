/**
 * A 2026-07-28 `tools/call` over HTTP answered without the SDK's `createMcpHandler`.
 *
 * For every 2026-07-28 request the SDK's handler builds a WHATWG request and response, classifies the
 * request, connects the server it is lent to a per-request transport, runs the request through its
 * dispatch (a zod type guard per layer, the request validated twice) and closes the exchange, which
 * builds an `Error` with a stack each time (BENCHMARKS.md). A well-formed call on a server the SDK has
 * already bound to the era is served here instead, by the same handler (`DownstreamServer.callTool`,
 * through `serveCall`) and written as the SDK writes it: what the SDK checks first is checked the
 * same way (its own classifier for the envelope and the headers' agreement with the body, the
 * standard headers' presence, the server's era codec for the lifted envelope), the result is checked
 * and encoded by the era codec (`resultType`, the server's identity in `_meta`), and the answer is
 * one JSON body with its length, or an event stream once a notification (progress, a log) went
 * before it, with the SDK's headers and framing. (What the handler does only for an `McpServer`,
 * checking tools' `Mcp-Param-*` header declarations and scope challenges, does not apply to
 * Gatehouse's `Server`; the client identity it seeds on the server from each envelope is read by no
 * Gatehouse handler, and a direct call leaves it as the last request the handler served left it, on
 * a server kept for the same user and client.)
 *
 * Everything else is left to the SDK's handler, which words every refusal: any other method, a call
 * that is not well-formed, headers that are missing, disagree with the body or carry an encoded name,
 * an unsupported or malformed envelope, and a server the SDK has not served the era on yet (the
 * binding is the SDK's own, and not exported: the first request on each kept server goes through it).
 * test/integration/http-direct-calls.test.ts sends the same calls both ways and compares the bytes.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { classifyInboundRequest, isJsonContentType, ProtocolErrorCode } from '@modelcontextprotocol/server';
import { wellFormedCall, type WellFormedCall } from './direct-calls.js';

/** An SSE comment this often keeps a streamed answer open through proxies (as the SDK's per-request transport). */
const KEEP_ALIVE_MS = 15_000;

export interface ModernCall extends WellFormedCall {
  /** The envelope lifted out of `_meta` (the SDK's classifier found it valid). */
  envelope: Record<string, unknown>;
  /** The protocol revision it names, in the body and the `MCP-Protocol-Version` header alike. */
  revision: string;
}

/**
 * The request as the direct path takes it, or undefined for the SDK's handler: a JSON body holding
 * one well-formed `tools/call` (direct-calls.ts), which the SDK's classifier routes to the modern era
 * (a valid envelope claim, headers that agree with the body), with the standard headers the SDK then
 * requires all present, and an `Mcp-Name` that is the tool's name as it is (an encoded one is the
 * SDK's to decode).
 */
export function modernCall(headers: IncomingHttpHeaders, body: unknown): ModernCall | undefined {
  const call = wellFormedCall(body);
  if (!call?.envelope || !isJsonContentType(first(headers['content-type']) ?? null)) return undefined;
  const protocolVersionHeader = first(headers['mcp-protocol-version']);
  const mcpMethodHeader = first(headers['mcp-method']);
  const mcpNameHeader = first(headers['mcp-name']);
  if (protocolVersionHeader === undefined || mcpMethodHeader === undefined || mcpNameHeader === undefined) return undefined;
  const name = stripOws(mcpNameHeader);
  if (name !== call.params.name || name.startsWith('=?')) return undefined;
  const route = classifyInboundRequest({ httpMethod: 'POST', protocolVersionHeader, mcpMethodHeader, mcpNameHeader, body });
  if (route.kind !== 'modern' || route.messageKind !== 'request' || route.classification.revision === undefined) return undefined;
  return { ...call, envelope: call.envelope, revision: route.classification.revision };
}

/**
 * One call's answer on Node's response, as the SDK's per-request transport makes it and the listener
 * writes it (`writeResponse`): the answer alone is one JSON body with its length (an error the
 * protocol says is the client's, a missing capability, with 400); a notification before it turns the
 * answer into an event stream, whose headers leave with its first event and which ends after the
 * answer. Nothing is written once the answer is, or once the client has gone.
 */
export class ModernAnswer {
  private streaming = false;
  private done = false;
  private keepAlive: NodeJS.Timeout | undefined;

  constructor(private readonly res: ServerResponse) {}

  async send(message: Record<string, unknown>): Promise<void> {
    const { res } = this;
    if (this.done || res.destroyed) return;
    if ('method' in message) {
      if (!this.streaming) this.stream();
      this.event(message);
      return;
    }
    this.done = true;
    if (this.streaming) {
      this.event(message);
      clearInterval(this.keepAlive);
      res.end();
      return;
    }
    const code = (message.error as { code?: unknown } | undefined)?.code;
    const text = JSON.stringify(message);
    res.statusCode = code === ProtocolErrorCode.MissingRequiredClientCapability ? 400 : 200;
    res.setHeader('content-type', 'application/json');
    res.setHeader('content-length', Buffer.byteLength(text));
    res.end(text);
  }

  /** The client went away: nothing more is written. */
  close(): void {
    this.done = true;
    clearInterval(this.keepAlive);
  }

  /**
   * The exchange ends without an answer (the daemon ended the request's session), as the SDK ends one
   * whose transport closed first: a stream already under way just ends; otherwise the answer is
   * status 499 with no body.
   */
  abandon(): void {
    const { res } = this;
    if (this.done || res.destroyed) return;
    this.done = true;
    clearInterval(this.keepAlive);
    if (!this.streaming) res.statusCode = 499;
    res.end();
  }

  private stream(): void {
    this.streaming = true;
    const { res } = this;
    res.statusCode = 200;
    // The SDK's headers, in the order its WHATWG `Headers` gives them to the listener (sorted by name).
    res.setHeader('cache-control', 'no-cache, no-transform');
    res.setHeader('connection', 'keep-alive');
    res.setHeader('content-type', 'text/event-stream');
    res.setHeader('x-accel-buffering', 'no');
    this.keepAlive = setInterval(() => {
      if (!res.destroyed && !res.writableEnded) res.write(': keepalive\n\n');
    }, KEEP_ALIVE_MS);
    this.keepAlive.unref();
  }

  /** One SSE event; events written in the same tick leave in one packet (with the headers, for the first). */
  private event(message: Record<string, unknown>): void {
    const { res } = this;
    if (!res.writableCorked) {
      res.cork();
      process.nextTick(() => res.uncork());
    }
    res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
  }
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The header value without the spaces and tabs around it, as the SDK compares it (in linear time: a header is up to 16 KiB). */
function stripOws(value: string): string {
  const blank = (at: number): boolean => value[at] === ' ' || value[at] === '\t';
  let start = 0;
  let end = value.length;
  while (start < end && blank(start)) start++;
  while (end > start && blank(end - 1)) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}
