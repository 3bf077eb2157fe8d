/**
 * `gatehouse connect`: the stdio bridge an IDE launches. It says hello on the daemon's socket
 * (client name, credential, optional single-server or search view), then copies bytes both ways: the IDE's
 * MCP traffic is carried unchanged, and governed by the daemon.
 */
import { createConnection, type Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { ToolView } from '../common/config.js';
import { GatehouseError, RpcErrorCode, errorMessage } from '../common/errors.js';
import { HELLO_VERSION, type Hello, type HelloReply } from '../node/downstream/hello.js';
import type { CredentialKeeper } from '../node/identity/bridge-credentials.js';

export interface BridgeOptions {
  socketPath: string;
  client: string;
  token?: string;
  server?: string;
  /** The view asked for (`--view`); absent: the client's setting in the daemon's config. */
  view?: ToolView;
  stdin: Readable;
  stdout: Writable;
  /** What to tell the person about the launching program when pairing (self-reported). */
  about?: string;
  /** Where the bridge keeps its own credential after pairing (the OS keychain); used when no token was given. */
  credentials?: CredentialKeeper;
  /** Lines for the person (the bridge's stderr, which IDEs show in their MCP log). */
  say?: (line: string) => void;
}


/**
 * Resolves with the exit code once either side has closed. When the daemon cannot be reached or
 * refuses the hello, the IDE's first request is answered with a JSON-RPC error that carries the
 * reason (an IDE shows that, not the bridge's stderr), then the bridge fails with the same reason.
 */
export async function runBridge(options: BridgeOptions): Promise<number> {
  try {
    return await bridge(options);
  } catch (error) {
    if (error instanceof GatehouseError) await answerFirstRequest(options.stdin, options.stdout, error.message);
    throw error;
  }
}

async function bridge(options: BridgeOptions): Promise<number> {
  const say = options.say ?? (() => undefined);
  let token = options.token;
  let stored = false;
  if (token === undefined && options.credentials) {
    // No keychain means no kept credential: the daemon then asks to pair (or refuses a paired name), and says why.
    token = await options.credentials.load().catch(() => undefined);
    stored = token !== undefined;
  }
  let { socket, reply, rest } = await greet(options, token, say);
  if (reply.gatehouse === 'refused' && stored) {
    // The kept credential was revoked or has expired: forget it and ask to pair again.
    socket.destroy();
    await options.credentials!.forget().catch(() => undefined);
    ({ socket, reply, rest } = await greet(options, undefined, say));
  }
  if (reply.gatehouse === 'refused') {
    socket.destroy();
    throw new GatehouseError('refused', `Gatehouse refused the connection: ${reply.reason}`);
  }
  if (reply.gatehouse === 'welcome' && reply.credential !== undefined) {
    if (options.credentials) {
      try {
        await options.credentials.save(reply.credential);
        say(`gatehouse connect: paired as "${options.client}"; the credential is kept in the keychain`);
      } catch (error) {
        say(
          `gatehouse connect: paired as "${options.client}", but the credential could not be kept in the keychain (${errorMessage(error)}); ` +
            `this session works, and the next one must be paired again after \`gatehouse clients revoke "${options.client}"\``,
        );
      }
    } else {
      say(
        `gatehouse connect: paired as "${options.client}", but this bridge has nowhere to keep the credential; ` +
          `the next session must be paired again after \`gatehouse clients revoke "${options.client}"\``,
      );
    }
  }
  // Not a refusal: the session opens, but the IDE's MCP log (this stderr) should say why it lists nothing.
  if (reply.gatehouse === 'welcome' && reply.notice !== undefined) say(`gatehouse connect: ${reply.notice}`);
  if (rest.length > 0) options.stdout.write(rest);
  return new Promise<number>((resolve) => {
    let done = false;
    const finish = (code: number): void => {
      if (done) return;
      done = true;
      resolve(code);
    };
    socket.pipe(options.stdout, { end: false });
    options.stdin.pipe(socket);
    // The IDE closed its end: finish sending, then let the daemon close.
    options.stdin.once('end', () => socket.end());
    socket.once('close', () => finish(0));
    socket.once('error', () => finish(1));
  });
}

/** Says hello and reads the answer, waiting through a pairing request (the person is asked meanwhile). */
async function greet(
  options: BridgeOptions,
  token: string | undefined,
  say: (line: string) => void,
): Promise<{ socket: Socket; reply: HelloReply; rest: Buffer }> {
  const socket = await open(options.socketPath);
  const hello: Hello = { gatehouse: 'hello', version: HELLO_VERSION, client: options.client };
  if (token !== undefined) hello.token = token;
  if (options.server !== undefined) hello.server = options.server;
  if (options.view !== undefined) hello.view = options.view;
  if (token === undefined && options.about !== undefined) hello.about = options.about.slice(0, 300);
  socket.write(JSON.stringify(hello) + '\n');
  let answer = await readReply(socket, Buffer.alloc(0), 10_000);
  while (answer.reply.gatehouse === 'pairing') {
    const { code, deadline } = answer.reply;
    say(
      `gatehouse connect: "${options.client}" is not paired yet. Approve it on the Gatehouse pairing page ` +
        `(see the desktop notification or the daemon's terminal); check that it shows the code ${code}. Waiting until ${deadline}.`,
    );
    const waitMs = Math.max(1000, Date.parse(deadline) - Date.now()) + 15_000;
    answer = await readReply(socket, answer.rest, waitMs);
  }
  return { socket, ...answer };
}

function open(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.once('connect', () => resolve(socket));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') {
        reject(new GatehouseError('daemon_not_running', `Gatehouse is not running (no daemon on ${path}); start it with \`gatehouse daemon\``));
      } else reject(error);
    });
  });
}

function readReply(socket: Socket, pending: Buffer, timeoutMs: number): Promise<{ reply: HelloReply; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    const timer = setTimeout(
      () => fail(new GatehouseError('timeout', `the daemon did not answer the hello within ${Math.round(timeoutMs / 1000)} seconds`)),
      timeoutMs,
    );
    const fail = (error: Error): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.destroy();
      reject(error);
    };
    const onClose = (): void => fail(new GatehouseError('closed', 'the daemon closed the connection before answering'));
    const onData = (chunk: Buffer): void => {
      buffer = Buffer.concat([buffer, chunk]);
      const nl = buffer.indexOf(0x0a);
      if (nl === -1) {
        if (buffer.length > 8192) fail(new GatehouseError('protocol', 'the daemon sent an unexpected answer'));
        return;
      }
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      try {
        const reply = JSON.parse(buffer.subarray(0, nl).toString('utf8')) as HelloReply;
        resolve({ reply, rest: buffer.subarray(nl + 1) });
      } catch {
        reject(new GatehouseError('protocol', 'the daemon sent an unexpected answer'));
      }
    };
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.resume();
    if (pending.length > 0) onData(pending);
  });
}

/** Reads the client's first line and, if it is a request, answers it with an error; gives up after `timeoutMs`. */
export function answerFirstRequest(stdin: Readable, stdout: Writable, message: string, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    let buffer = '';
    const finish = (): void => {
      clearTimeout(timer);
      stdin.off('data', onData);
      stdin.off('end', finish);
      stdin.pause();
      resolve();
    };
    const timer = setTimeout(finish, timeoutMs);
    const onData = (chunk: Buffer | string): void => {
      buffer += chunk.toString();
      const nl = buffer.indexOf('\n');
      if (nl === -1 && buffer.length < 65_536) return;
      try {
        const request = JSON.parse(buffer.slice(0, nl === -1 ? undefined : nl)) as { id?: unknown; method?: unknown };
        if (typeof request.method === 'string' && (typeof request.id === 'string' || typeof request.id === 'number')) {
          stdout.write(JSON.stringify({ jsonrpc: '2.0', id: request.id, error: { code: RpcErrorCode.Unauthorized, message } }) + '\n');
        }
      } catch {
        // Not JSON-RPC: nothing to answer.
      }
      finish();
    };
    stdin.on('data', onData);
    stdin.once('end', finish);
  });
}
