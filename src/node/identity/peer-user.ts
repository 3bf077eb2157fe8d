/**
 * Which local user is on the other end of a loopback TCP connection. Any local user can connect
 * to 127.0.0.1, so a page meant only for this user checks. On Linux the kernel's socket table
 * (/proc/net/tcp, /proc/net/tcp6) names the owner of the client's end; elsewhere the answer is
 * unknown and the caller relies on its other checks.
 */
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';

function portOf(address: string): number {
  return parseInt(address.slice(address.lastIndexOf(':') + 1), 16);
}

/** The uid owning the client end of `socket`, or undefined where the platform does not tell. */
export function peerUid(socket: Socket): number | undefined {
  if (process.platform !== 'linux' || socket.remotePort === undefined || socket.localPort === undefined) return undefined;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 8) continue;
      // The client's entry: its local end is the connection's remote port, its remote end our port.
      if (portOf(fields[1]!) === socket.remotePort && portOf(fields[2]!) === socket.localPort) return Number(fields[7]);
    }
  }
  return undefined;
}

/** False only when the connection is known to come from another user than this process's. */
export function fromThisUser(socket: Socket): boolean {
  const uid = peerUid(socket);
  return uid === undefined || process.getuid === undefined || uid === process.getuid();
}
