/**
 * Finding the running daemon of this user from a minimal environment. MCP clients start servers
 * with little of the user's environment (the MCP SDK passes only HOME, LOGNAME, PATH, SHELL, TERM and
 * USER; Claude Desktop and Cursor do the same), so a bridge loses XDG_RUNTIME_DIR and the session
 * bus address, and would look for the socket in the wrong place.
 *
 * So the daemon leaves a note in its state directory (found from HOME alone): where it listens,
 * the session bus it uses, when it started and stopped. The bridge tries, in order: the socket its
 * own environment names, the systemd runtime directory of this user (/run/user/<uid>) when
 * XDG_RUNTIME_DIR is missing, and the socket the note names. Only sockets this user owns, in
 * directories nobody else can write, are tried. GATEHOUSE_HOME, when given, is the only place.
 */
import { lstatSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import type { GatehousePaths } from './paths.js';

/** The note a daemon leaves in its state directory; it outlives the daemon, to say where it was. */
export const LAST_SEEN_FILE = 'daemon-last-seen.json';

const LastSeenSchema = z.object({
  pid: z.number().int(),
  version: z.string().max(100),
  startedAt: z.string().max(40),
  stoppedAt: z.string().max(40).optional(),
  socketPath: z.string().max(4096),
  controlSocketPath: z.string().max(4096),
  httpUrl: z.string().max(200).optional(),
  /** The session bus the daemon's keychain is on (`unix:path=…`), for bridges started without one. */
  dbusAddress: z.string().max(4096).optional(),
});
export type LastSeen = z.infer<typeof LastSeenSchema>;

export function lastSeenFile(paths: Pick<GatehousePaths, 'stateDir'>): string {
  return join(paths.stateDir, LAST_SEEN_FILE);
}

export function writeLastSeen(paths: Pick<GatehousePaths, 'stateDir'>, note: LastSeen): void {
  const file = lastSeenFile(paths);
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, JSON.stringify(note, null, 2) + '\n', { mode: 0o600 });
  renameSync(temp, file);
}

export function readLastSeen(paths: Pick<GatehousePaths, 'stateDir'>): LastSeen | undefined {
  try {
    const parsed = LastSeenSchema.safeParse(JSON.parse(readFileSync(lastSeenFile(paths), 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export interface DiscoveryInput {
  paths: GatehousePaths;
  env: Readonly<Record<string, string | undefined>>;
  platform: NodeJS.Platform;
  uid: number | undefined;
  /** Tests: what is on disk (defaults to lstat). */
  stat?: (path: string) => { isSocket: boolean; isDirectory: boolean; uid: number; mode: number } | undefined;
}

export interface Candidate {
  socketPath: string;
  controlSocketPath: string;
  /** Why this place is tried, for the message when nothing answers. */
  why: string;
}

/**
 * The places to try, in order, as a pure function of the environment, the paths and the note.
 * Not filtered by what is on disk (`usableCandidates` does that).
 */
export function candidatePlaces(input: DiscoveryInput, lastSeen: LastSeen | undefined): Candidate[] {
  const { paths, env } = input;
  const places: Candidate[] = [{ socketPath: paths.socketPath, controlSocketPath: paths.controlSocketPath, why: 'this environment' }];
  const pinned = env['GATEHOUSE_HOME'] !== undefined && env['GATEHOUSE_HOME'] !== '';
  if (!pinned && input.platform === 'linux' && !env['XDG_RUNTIME_DIR'] && input.uid !== undefined) {
    const runtime = `/run/user/${input.uid}/gatehouse`;
    places.push({ socketPath: join(runtime, 'mcp.sock'), controlSocketPath: join(runtime, 'control.sock'), why: `the runtime directory of uid ${input.uid}` });
  }
  if (lastSeen && input.platform !== 'win32') {
    places.push({ socketPath: lastSeen.socketPath, controlSocketPath: lastSeen.controlSocketPath, why: 'where the daemon was last seen' });
  }
  const seen = new Set<string>();
  return places.filter((p) => (seen.has(p.socketPath) ? false : (seen.add(p.socketPath), true)));
}

function defaultStat(path: string): ReturnType<NonNullable<DiscoveryInput['stat']>> {
  try {
    const s = lstatSync(path);
    return { isSocket: s.isSocket(), isDirectory: s.isDirectory(), uid: s.uid, mode: s.mode };
  } catch {
    return undefined;
  }
}

/**
 * The candidates worth connecting to: a socket this user owns, in a directory this user owns that
 * nobody else can write. (Windows named pipes are always tried: their names carry the user.)
 */
export function usableCandidates(input: DiscoveryInput, candidates: Candidate[]): Candidate[] {
  if (input.platform === 'win32') return candidates;
  const stat = input.stat ?? defaultStat;
  return candidates.filter((c) => {
    const socket = stat(c.socketPath);
    const dir = stat(dirname(c.socketPath));
    if (!socket?.isSocket || !dir?.isDirectory) return false;
    if (input.uid === undefined) return true;
    return socket.uid === input.uid && dir.uid === input.uid && (dir.mode & 0o022) === 0;
  });
}

/** Where to look, and what to say when nothing answers. */
export function discover(input: DiscoveryInput): { tries: Candidate[]; looked: Candidate[]; lastSeen: LastSeen | undefined } {
  const lastSeen = readLastSeen(input.paths);
  const looked = candidatePlaces(input, lastSeen);
  return { tries: usableCandidates(input, looked), looked, lastSeen };
}

/** The one-line reason a bridge or command gives when no daemon answered. */
export function notRunningMessage(looked: Candidate[], lastSeen: LastSeen | undefined): string {
  const where = looked.map((c) => `${c.socketPath} (${c.why})`).join(', ');
  let seen = '';
  if (lastSeen) {
    seen = lastSeen.stoppedAt
      ? ` A daemon of this user was last seen listening on ${lastSeen.socketPath}; it stopped at ${lastSeen.stoppedAt}.`
      : ` A daemon of this user was last seen listening on ${lastSeen.socketPath} (pid ${lastSeen.pid}, started ${lastSeen.startedAt}); it does not answer there now.`;
  } else seen = ' No daemon of this user has left a note of where it runs.';
  return `Gatehouse is not running: no daemon answered at ${where}.${seen} Start it with \`gatehouse daemon\` (or open the Gatehouse app).`;
}

/**
 * The session bus a bridge should use for the keychain when its environment names none: the
 * daemon's (from the note), else this user's systemd bus. Only a `unix:path=` socket this user owns.
 */
export function sessionBusFor(input: DiscoveryInput, lastSeen: LastSeen | undefined): string | undefined {
  if (input.env['DBUS_SESSION_BUS_ADDRESS'] || input.platform !== 'linux') return undefined;
  const stat = input.stat ?? defaultStat;
  const owned = (address: string): boolean => {
    const match = /^unix:path=(\/[^,;]+)$/.exec(address);
    if (!match) return false;
    const info = stat(match[1]!);
    return info !== undefined && info.isSocket && (input.uid === undefined || info.uid === input.uid);
  };
  if (lastSeen?.dbusAddress && owned(lastSeen.dbusAddress)) return lastSeen.dbusAddress;
  const runtimeBus = input.env['XDG_RUNTIME_DIR']
    ? `unix:path=${input.env['XDG_RUNTIME_DIR']}/bus`
    : input.uid !== undefined
      ? `unix:path=/run/user/${input.uid}/bus`
      : undefined;
  return runtimeBus && owned(runtimeBus) ? runtimeBus : undefined;
}
