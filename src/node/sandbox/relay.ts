/**
 * The relay that runs first inside an allow-listed sandbox, then starts the server as its child.
 *
 *   node relay.js CONFIG.json -- COMMAND [ARGS...]
 *
 * It listens where the server will connect (see src/core/sandbox/egress.ts) and hands every
 * connection to Gatehouse's egress proxy over the unix socket bound into the sandbox, asking for
 * the destination it stands for; the proxy decides, connects and audits, and the relay only copies
 * bytes. A small DNS stub answers the listed names with their sandbox addresses and refuses the
 * rest, reporting each refused name to the proxy. The relay decides nothing: a server that talks to
 * the proxy's socket itself gets the same answers.
 *
 * This file is bound alone into the sandbox, so it imports nothing but Node's own modules. Its
 * stdout is the server's MCP channel: it writes only to stderr.
 */
import { spawn } from 'node:child_process';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { constants } from 'node:os';

interface RelayConfig {
  egress: string;
  listeners: { address: string; port: number; host: string; destPort: number }[];
  dns?: { address: string; port: number; names: Record<string, string> };
}

/** Longest answer line the proxy sends before the stream becomes raw bytes. */
const MAX_REPLY = 1024;

function say(line: string): void {
  process.stderr.write(`[gatehouse sandbox] ${line}\n`);
}

/** Asks the proxy for `host:port`; resolves with the open stream and any bytes that followed the answer, or undefined when refused. */
function openThroughProxy(egress: string, host: string, port: number): Promise<{ stream: Socket; rest: Buffer } | undefined> {
  return new Promise((resolve) => {
    const stream = connect(egress);
    let buffered = Buffer.alloc(0);
    const fail = (): void => {
      stream.destroy();
      resolve(undefined);
    };
    stream.once('error', fail);
    stream.once('connect', () => stream.write(JSON.stringify({ host, port }) + '\n'));
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const nl = buffered.indexOf(0x0a);
      if (nl === -1) {
        if (buffered.length > MAX_REPLY) fail();
        return;
      }
      stream.off('data', onData);
      stream.pause();
      let reply: { ok?: unknown };
      try {
        reply = JSON.parse(buffered.subarray(0, nl).toString('utf8')) as { ok?: unknown };
      } catch {
        fail();
        return;
      }
      if (reply.ok !== true) {
        fail();
        return;
      }
      stream.off('error', fail);
      resolve({ stream, rest: buffered.subarray(nl + 1) });
    };
    stream.on('data', onData);
    stream.once('end', fail);
  });
}

function listen(config: RelayConfig, l: RelayConfig['listeners'][number]): Promise<void> {
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    client.on('error', () => undefined);
    void openThroughProxy(config.egress, l.host, l.destPort).then((opened) => {
      if (!opened) {
        // Refused: the server sees the connection reset, as a firewall that rejects would do.
        client.resetAndDestroy();
        return;
      }
      const { stream, rest } = opened;
      stream.on('error', () => client.destroy());
      client.on('error', () => stream.destroy());
      client.on('close', () => stream.destroy());
      stream.on('close', () => client.destroy());
      if (rest.length > 0) client.write(rest);
      stream.pipe(client);
      client.pipe(stream);
      stream.resume();
      client.resume();
    });
  });
  return new Promise((resolve) => {
    server.once('error', (error) => {
      say(`cannot listen on ${l.address}:${l.port}: ${error.message}`);
      resolve();
    });
    server.listen({ host: l.address, port: l.port }, () => resolve());
  });
}

/** The name asked in a DNS query, its type, and where the question ends; undefined for anything malformed. */
function parseQuestion(message: Buffer): { name: string; type: number; end: number } | undefined {
  if (message.length < 12 || message.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let at = 12;
  for (;;) {
    if (at >= message.length) return undefined;
    const length = message[at]!;
    if (length === 0) break;
    if (length > 63 || at + 1 + length > message.length) return undefined;
    labels.push(message.subarray(at + 1, at + 1 + length).toString('latin1'));
    at += 1 + length;
  }
  if (at + 5 > message.length) return undefined;
  return { name: labels.join('.').toLowerCase(), type: message.readUInt16BE(at + 1), end: at + 5 };
}

/** An answer with the query's id and question: an A record, no record (NOERROR), or NXDOMAIN. */
function answer(query: Buffer, question: { end: number }, rcode: number, address?: string): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0);
  // QR, the query's opcode and RD, RA; then the response code.
  header.writeUInt16BE(0x8000 | (query.readUInt16BE(2) & 0x7900) | 0x0080 | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(address ? 1 : 0, 6);
  const parts = [header, query.subarray(12, question.end)];
  if (address) {
    const record = Buffer.alloc(16);
    record.writeUInt16BE(0xc00c, 0);
    record.writeUInt16BE(1, 2);
    record.writeUInt16BE(1, 4);
    record.writeUInt32BE(60, 6);
    record.writeUInt16BE(4, 10);
    address.split('.').forEach((octet, i) => record.writeUInt8(Number(octet), 12 + i));
    parts.push(record);
  }
  return Buffer.concat(parts);
}

function report(egress: string, name: string): void {
  const stream = connect(egress, () => stream.end(JSON.stringify({ report: 'dns', name: name.slice(0, 253) }) + '\n'));
  stream.on('error', () => undefined);
}

function serveDns(config: RelayConfig, dns: NonNullable<RelayConfig['dns']>): Promise<void> {
  const socket = createSocket('udp4');
  socket.on('message', (message: Buffer, peer: RemoteInfo) => {
    const question = parseQuestion(message);
    if (!question) return;
    const address = dns.names[question.name];
    let reply: Buffer;
    if (address !== undefined) reply = answer(message, question, 0, question.type === 1 ? address : undefined);
    else {
      report(config.egress, question.name);
      reply = answer(message, question, 3);
    }
    socket.send(reply, peer.port, peer.address);
  });
  return new Promise((resolve) => {
    socket.once('error', (error) => {
      say(`cannot answer DNS on ${dns.address}:${dns.port}: ${error.message}`);
      resolve();
    });
    socket.bind(dns.port, dns.address, () => resolve());
  });
}

async function main(argv: string[]): Promise<void> {
  const separator = argv.indexOf('--');
  const configFile = argv[0];
  const command = separator === -1 ? [] : argv.slice(separator + 1);
  if (configFile === undefined || command.length === 0) {
    say('usage: relay.js CONFIG.json -- COMMAND [ARGS...]');
    process.exit(2);
  }
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as RelayConfig;
  await Promise.all([...config.listeners.map((l) => listen(config, l)), ...(config.dns ? [serveDns(config, config.dns)] : [])]);

  const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit' });
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(signal, () => child.kill(signal));
  }
  child.once('error', (error) => {
    say(`cannot start ${command[0]}: ${error.message}`);
    process.exit(127);
  });
  child.once('exit', (code, signal) => process.exit(code ?? (signal ? 128 + constants.signals[signal] : 1)));
}

main(process.argv.slice(2)).catch((error: unknown) => {
  say(`failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
