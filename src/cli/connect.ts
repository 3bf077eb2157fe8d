/**
 * `gatehouse connect`: the stdio bridge an IDE launches. It says hello on the daemon's socket
 * (client name, credential, optional single-server or search view), then copies bytes both ways: the IDE's
 * MCP traffic is carried unchanged, and governed by the daemon.
 */
import { randomBytes } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { ToolView } from '../common/config.js';
import { GatehouseError, RpcErrorCode, errorMessage } from '../common/errors.js';
import { GATEHOUSE_LINE_PREFIX, HELLO_VERSION, type Hello, type HelloReply, type PairingOutcomeLine } from '../node/downstream/hello.js';
import type { CredentialKeeper } from '../node/identity/bridge-credentials.js';

export interface BridgeOptions {
  /** The daemon sockets to try, in order (`src/node/discovery.ts`); the first that accepts is used. */
  sockets: string[];
  /** What to say when none accepts: where the bridge looked, and where a daemon was last seen. */
  notRunning: string;
  client: string;
  token?: string;
  server?: string;
  /** The view asked for (`--view`); absent: the client's setting in the daemon's config. */
  view?: ToolView;
  stdin: Readable;
  stdout: Writable;
  /** What to tell the person about the launching program when pairing (self-reported). */
  about?: string;
  /** Where the bridge keeps its credential and its pairing claim for the daemon on `socketPath`; used when no token was given. */
  credentials?: (socketPath: string) => Promise<CredentialKeeper | undefined>;
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
  let { socket, path } = await openFirst(options.sockets, options.notRunning);
  let keeper: CredentialKeeper | undefined;
  if (options.token === undefined && options.credentials) {
    keeper = await options.credentials(path).catch((error: unknown) => {
      say(`gatehouse connect: no key store can be used (${errorMessage(error)}); a credential given at pairing cannot be kept`);
      return undefined;
    });
  }
  let token = options.token;
  let stored = false;
  if (token === undefined && keeper) {
    token = await keeper.load().catch(() => undefined);
    stored = token !== undefined;
  }
  const claimFor = async (): Promise<string> => (await keeper?.claim().catch(() => undefined)) ?? randomBytes(32).toString('base64url');
  let { reply, rest } = await greet(socket, options, token, token === undefined ? await claimFor() : undefined);
  if (reply.gatehouse === 'refused' && stored) {
    // The kept credential was revoked or has expired: forget it and ask to pair again.
    socket.destroy();
    await keeper!.forget().catch(() => undefined);
    ({ socket, path } = await openFirst([path], options.notRunning));
    ({ reply, rest } = await greet(socket, options, undefined, await claimFor()));
  }
  if (reply.gatehouse === 'refused') {
    socket.destroy();
    throw new GatehouseError('refused', `Gatehouse refused the connection: ${reply.reason}`);
  }
  if (reply.credential !== undefined) await keep(reply.credential, keeper, options.client, say);
  const pending = reply.pairing !== undefined;
  if (reply.pairing) {
    const where = reply.pairing.where ?? 'where Gatehouse asks (its window, or the terminal where it runs)';
    say(
      `gatehouse connect: "${options.client}" is not paired yet. Approve it on ${where}; ` +
        `check that it shows the code ${reply.pairing.code}. Until then this client sees no tools (waiting until ${reply.pairing.deadline}).`,
    );
  }
  // Not a refusal: the session opens, but the IDE's MCP log (this stderr) should say why it lists nothing.
  if (reply.notice !== undefined) say(`gatehouse connect: ${reply.notice}`);
  return new Promise<number>((resolve) => {
    let done = false;
    const finish = (code: number): void => {
      if (done) return;
      done = true;
      resolve(code);
    };
    relay(socket, options.stdout, rest, pending, (line) => {
      if (line.gatehouse === 'paired') void keep(line.credential, keeper, options.client, say);
      else {
        say(`gatehouse connect: ${line.reason}`);
        void keeper?.forgetClaim();
      }
    });
    options.stdin.pipe(socket);
    // The IDE closed its end: finish sending, then let the daemon close.
    options.stdin.once('end', () => socket.end());
    socket.once('close', () => finish(0));
    socket.once('error', () => finish(1));
  });
}

/** Keeps the credential pairing gave, and says where (or why it could not). */
async function keep(credential: string, keeper: CredentialKeeper | undefined, client: string, say: (line: string) => void): Promise<void> {
  if (!keeper) {
    say(
      `gatehouse connect: paired as "${client}", but this bridge has nowhere to keep the credential; the next session must be paired again after \`gatehouse clients revoke "${client}"\``,
    );
    return;
  }
  try {
    await keeper.save(credential);
    await keeper.forgetClaim();
    say(`gatehouse connect: paired as "${client}"; the credential is kept in ${keeper.where}`);
  } catch (error) {
    say(
      `gatehouse connect: paired as "${client}", but the credential could not be kept in ${keeper.where} (${errorMessage(error)}); this session works, and the next one must be paired again after \`gatehouse clients revoke "${client}"\``,
    );
  }
}

/**
 * Copies the daemon's side to stdout. While pairing is pending, the stream is read line by line so
 * that the daemon's one pairing outcome line (which no MCP line resembles) is taken out; after it,
 * bytes are piped unchanged.
 */
function relay(socket: Socket, stdout: Writable, first: Buffer, pending: boolean, onOutcome: (line: PairingOutcomeLine) => void): void {
  if (!pending) {
    if (first.length > 0) stdout.write(first);
    socket.pipe(stdout, { end: false });
    socket.resume();
    return;
  }
  let buffered: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    for (;;) {
      const nl = buffered.indexOf(0x0a);
      if (nl === -1) return;
      const line = buffered.subarray(0, nl + 1);
      buffered = buffered.subarray(nl + 1);
      if (!line.subarray(0, GATEHOUSE_LINE_PREFIX.length).equals(Buffer.from(GATEHOUSE_LINE_PREFIX))) {
        stdout.write(line);
        continue;
      }
      try {
        onOutcome(JSON.parse(line.toString('utf8')) as PairingOutcomeLine);
      } catch {
        // Not a line the daemon writes: nothing to do with it.
      }
      // The outcome came: from here on, bytes go through unchanged.
      socket.off('data', onData);
      if (buffered.length > 0) stdout.write(buffered);
      socket.pipe(stdout, { end: false });
      return;
    }
  };
  socket.on('data', onData);
  if (first.length > 0) onData(first);
  socket.resume();
}

/** Says hello and reads the one-line answer. */
async function greet(
  socket: Socket,
  options: BridgeOptions,
  token: string | undefined,
  claim: string | undefined,
): Promise<{ reply: HelloReply; rest: Buffer }> {
  const hello: Hello = { gatehouse: 'hello', version: HELLO_VERSION, client: options.client };
  if (token !== undefined) hello.token = token;
  if (claim !== undefined) hello.claim = claim;
  if (options.server !== undefined) hello.server = options.server;
  if (options.view !== undefined) hello.view = options.view;
  if (token === undefined && options.about !== undefined) hello.about = options.about.slice(0, 300);
  socket.write(JSON.stringify(hello) + '\n');
  return readReply(socket, Buffer.alloc(0), 10_000);
}

/** Connects to the first socket that accepts. */
async function openFirst(paths: string[], notRunning: string): Promise<{ socket: Socket; path: string }> {
  for (const path of paths) {
    const socket = await open(path).catch((error: unknown) => {
      if (error instanceof GatehouseError && error.code === 'daemon_not_running') return undefined;
      throw error;
    });
    if (socket) return { socket, path };
  }
  throw new GatehouseError('daemon_not_running', notRunning);
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
