/**
 * How an allow-listed network reaches a confined server that has only its own loopback, without
 * the server knowing about any proxy: a relay inside the sandbox listens where the server will
 * connect, and hands each connection to Gatehouse's egress proxy over a unix socket; the proxy
 * decides and audits.
 *
 * - A listed host name gets its own loopback address inside (127.77.0.1, ...), named in the
 *   sandbox's /etc/hosts and answered by the relay's DNS stub; the relay listens there on each
 *   listed port.
 * - A listed loopback destination (127.0.0.1:8080) is listened on at the same address and port.
 * - Every other port that listens on the host's loopback when the sandbox starts is listened on
 *   too (a "mirror"), so that an attempt to reach an unlisted local service reaches the proxy,
 *   which refuses it and records the attempt. Ports nothing listens on fail inside as they would
 *   outside, and leave no record.
 */
import { formatDestination, type Destination } from '../../common/sandbox.js';

/** Addresses given to listed host names inside the sandbox. */
const NAME_NET = [127, 77];
/** A sandbox mirrors at most this many of the host's loopback ports. */
export const MAX_MIRRORED_PORTS = 256;

export interface RelayListener {
  /** Where the relay listens inside the sandbox. */
  address: string;
  port: number;
  /** What it asks the proxy to connect to. */
  host: string;
  destPort: number;
}

export interface EgressPlan {
  /** `/etc/hosts` lines for listed names. */
  hosts: { address: string; name: string }[];
  listeners: RelayListener[];
}

export function planEgress(destinations: readonly Destination[], hostLoopbackPorts: readonly number[]): EgressPlan {
  const hosts: { address: string; name: string }[] = [];
  const listeners: RelayListener[] = [];
  const taken = new Set<string>();
  const listen = (l: RelayListener): void => {
    const key = `${l.address} ${l.port}`;
    if (taken.has(key)) return;
    taken.add(key);
    listeners.push(l);
  };
  for (const d of destinations) if (d.kind === 'loopback') listen({ address: d.host, port: d.port, host: d.host, destPort: d.port });
  const names = [...new Set(destinations.filter((d) => d.kind === 'name').map((d) => d.host))];
  let next = 0;
  for (const name of names) {
    let address: string;
    do {
      address = `${NAME_NET[0]}.${NAME_NET[1]}.${Math.floor(next / 250)}.${(next % 250) + 1}`;
      next++;
    } while (destinations.some((d) => d.host === address));
    hosts.push({ address, name });
    for (const d of destinations) if (d.host === name) listen({ address, port: d.port, host: name, destPort: d.port });
  }
  const mirrored = [...new Set(hostLoopbackPorts)].sort((a, b) => a - b).slice(0, MAX_MIRRORED_PORTS);
  for (const port of mirrored) listen({ address: '127.0.0.1', port, host: '127.0.0.1', destPort: port });
  return { hosts, listeners };
}

/** Exact match of host and port: the proxy's whole rule. */
export function isAllowed(destinations: readonly Destination[], host: string, port: number): boolean {
  const h = host.toLowerCase();
  return destinations.some((d) => d.host === h && d.port === port);
}

/** The sandbox's /etc/hosts. */
export function hostsFile(plan: EgressPlan): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', ...plan.hosts.map((h) => `${h.address}\t${h.name}`)];
  return lines.join('\n') + '\n';
}

export function describeDestinations(destinations: readonly Destination[]): string[] {
  return destinations.map(formatDestination);
}
