/**
 * MCP clients for integration tests, built with the SDK exactly as an IDE would build them:
 * over `gatehouse connect` (the stdio bridge, a child process) or over Streamable HTTP, in either
 * protocol era. Every client a test opens is closed by `closeAll()` (call it in `afterEach`).
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { BIN } from './gatehouse.js';

/** `legacy`: the 2025 `initialize` handshake (the SDK's default). `modern`: pinned to 2026-07-28. */
export type Era = 'legacy' | 'modern';
export const ERAS: readonly Era[] = ['legacy', 'modern'];
export const MODERN_VERSION = '2026-07-28';

export interface ClientOptions {
  era: Era;
  /** Answers `elicitation/create` (declares the capability when given). */
  onElicit?: (params: Record<string, unknown>) => Promise<Record<string, unknown>> | Record<string, unknown>;
  /** Leave it out of `closeAll()`: the caller closes it (a client shared by the tests of a describe). */
  shared?: boolean;
}

export function newClient(options: ClientOptions): Client {
  const client = new Client(
    { name: 'gatehouse-test', version: '1.0.0' },
    {
      capabilities: options.onElicit ? { elicitation: { form: {} } } : {},
      ...(options.era === 'modern' ? { versionNegotiation: { mode: { pin: MODERN_VERSION } } } : {}),
    },
  );
  if (options.onElicit) {
    const answer = options.onElicit;
    client.setRequestHandler('elicitation/create', async (request) => (await answer(request.params as Record<string, unknown>)) as never);
  }
  return client;
}

export interface Connected {
  client: Client;
  /** What the bridge wrote on stderr so far (empty for HTTP). */
  stderr(): string;
  close(): Promise<void>;
}

const open = new Set<Connected>();

/** Closes every client opened since the last call. */
export async function closeAll(): Promise<void> {
  const all = [...open];
  open.clear();
  await Promise.allSettled(all.map((c) => c.close()));
}

/** The environment a bridge gets: enough to run node, plus where Gatehouse lives, plus what the test adds. */
export function bridgeEnv(gatehouseEnv: NodeJS.ProcessEnv, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', GATEHOUSE_HOME: gatehouseEnv.GATEHOUSE_HOME ?? '' };
  if (process.env.HOME) env.HOME = process.env.HOME;
  return { ...env, ...extra };
}

export interface BridgeOptions extends ClientOptions {
  /** `--client NAME`; omitted when undefined. */
  client?: string;
  server?: string;
  /** `--view search|aggregate`; omitted when undefined. */
  view?: string;
  /** Passed as GATEHOUSE_CLIENT_TOKEN. */
  token?: string;
}

/** An SDK client whose server is `node bin/gatehouse.js connect ...`, launched by the SDK's stdio transport. */
export async function connectBridge(gatehouseEnv: NodeJS.ProcessEnv, options: BridgeOptions): Promise<Connected> {
  const args = [BIN, 'connect'];
  if (options.client !== undefined) args.push('--client', options.client);
  if (options.server !== undefined) args.push('--server', options.server);
  if (options.view !== undefined) args.push('--view', options.view);
  const transport = new StdioClientTransport({
    command: process.execPath,
    args,
    env: bridgeEnv(gatehouseEnv, options.token !== undefined ? { GATEHOUSE_CLIENT_TOKEN: options.token } : {}),
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  // A pinned 2026-07-28 client probes on a sibling process and may never start this transport.
  let started = false;
  const start = transport.start.bind(transport);
  transport.start = () => {
    started = true;
    return start();
  };
  const client = newClient(options);
  const connected: Connected = { client, stderr: () => stderr, close: () => client.close() };
  if (!options.shared) open.add(connected);
  try {
    await client.connect(transport, { timeout: 15_000 });
  } catch (error) {
    open.delete(connected);
    // The bridge's reason is on its stderr; wait for the stream to end so none of it is lost.
    const stream = transport.stderr as Readable | null;
    if (started && stream && !stream.readableEnded) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2000);
        stream.once('end', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    await client.close().catch(() => undefined);
    throw Object.assign(new Error(`${stderr.trim() || '(no stderr)'} [client: ${(error as Error).message}]`), { cause: error });
  }
  return connected;
}

export interface HttpOptions extends ClientOptions {
  /** `/mcp` (default) or `/mcp/<server>`. */
  path?: string;
  token?: string;
  headers?: Record<string, string>;
}

/** An SDK client over Streamable HTTP to the daemon's loopback endpoint. */
export async function connectHttp(httpUrl: string, options: HttpOptions): Promise<Connected & { transport: StreamableHTTPClientTransport }> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const transport = new StreamableHTTPClientTransport(new URL(`${httpUrl}${options.path ?? '/mcp'}`), {
    requestInit: { headers },
    reconnectionOptions: { maxReconnectionDelay: 1000, initialReconnectionDelay: 100, reconnectionDelayGrowFactor: 1.5, maxRetries: 0 },
  });
  const client = newClient(options);
  const close = async (): Promise<void> => {
    // A 2025-era session lives until the client deletes it; the SDK's close() alone leaves it open.
    if (transport.sessionId) await transport.terminateSession().catch(() => undefined);
    await client.close();
  };
  const connected = { client, transport, stderr: () => '', close };
  if (!options.shared) open.add(connected);
  try {
    await client.connect(transport, { timeout: 15_000 });
  } catch (error) {
    open.delete(connected);
    await client.close().catch(() => undefined);
    throw error;
  }
  return connected;
}

export interface CommandRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; `input` (or nothing) is written to its stdin, which is then closed. */
export function runCommand(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number, input?: string): Promise<CommandRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish within ${timeoutMs} ms\nstderr: ${stderr}`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

/** Runs `gatehouse <args>` to completion (for refusals and CLI commands); stdin gets `input`, then is closed. */
export function runGatehouse(args: string[], env: Record<string, string>, timeoutMs = 15_000, input?: string): Promise<CommandRun> {
  return runCommand(process.execPath, [BIN, ...args], env, timeoutMs, input);
}

/** The text of a tool result's first text block. */
export function textOf(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content ?? [];
  return content
    .filter((c) => c.type === 'text')
    .map((c) => c.text ?? '')
    .join('\n');
}
