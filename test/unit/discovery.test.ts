/**
 * Finding the daemon from a minimal environment (src/node/discovery.ts): the places a bridge tries,
 * in order, and the ones it refuses (a socket or directory of another user, a directory others can
 * write), the session bus it adopts, and what it says when nothing answers.
 */
import { describe, expect, it } from 'vitest';
import { candidatePlaces, notRunningMessage, sessionBusFor, usableCandidates, type DiscoveryInput, type LastSeen } from '../../src/node/discovery.js';
import { resolvePaths } from '../../src/node/paths.js';

const UID = 1000;
const minimalEnv = { HOME: '/home/ann', PATH: '/usr/bin', USER: 'ann' };
const paths = resolvePaths({ platform: 'linux', env: minimalEnv, homedir: '/home/ann', uid: UID });
const note: LastSeen = {
  pid: 42,
  version: '0.1.0',
  startedAt: '2026-11-30T08:00:00.000Z',
  socketPath: '/home/ann/.xdg-run/gatehouse/mcp.sock',
  controlSocketPath: '/home/ann/.xdg-run/gatehouse/control.sock',
  dbusAddress: 'unix:path=/home/ann/.xdg-run/bus',
};

type Entry = { isSocket: boolean; isDirectory: boolean; uid: number; mode: number };
function disk(entries: Record<string, Partial<Entry>>): DiscoveryInput['stat'] {
  return (path) => {
    const e = entries[path];
    return e ? { isSocket: false, isDirectory: false, uid: UID, mode: 0o700, ...e } : undefined;
  };
}
const input = (over: Partial<DiscoveryInput> = {}): DiscoveryInput => ({ paths, env: minimalEnv, platform: 'linux', uid: UID, ...over });

describe('where a bridge looks for the daemon', () => {
  it('tries its own environment, then the systemd runtime directory, then where the daemon was last seen', () => {
    expect(candidatePlaces(input(), note).map((c) => [c.socketPath, c.why])).toEqual([
      ['/home/ann/.local/state/gatehouse/run/mcp.sock', 'this environment'],
      ['/run/user/1000/gatehouse/mcp.sock', 'the runtime directory of uid 1000'],
      ['/home/ann/.xdg-run/gatehouse/mcp.sock', 'where the daemon was last seen'],
    ]);
  });

  it('with GATEHOUSE_HOME, looks in that home (and its own note) only', () => {
    const env = { ...minimalEnv, GATEHOUSE_HOME: '/srv/gh' };
    const pinned = resolvePaths({ platform: 'linux', env, homedir: '/home/ann', uid: UID });
    expect(candidatePlaces(input({ env, paths: pinned }), undefined).map((c) => c.socketPath)).toEqual(['/srv/gh/run/mcp.sock']);
  });

  it('tries only sockets this user owns, in directories only they can write', () => {
    const places = candidatePlaces(input(), note);
    const stat = disk({
      '/run/user/1000/gatehouse/mcp.sock': { isSocket: true, uid: 0 },
      '/run/user/1000/gatehouse': { isDirectory: true },
      '/home/ann/.xdg-run/gatehouse/mcp.sock': { isSocket: true },
      '/home/ann/.xdg-run/gatehouse': { isDirectory: true },
    });
    expect(usableCandidates(input({ stat }), places).map((c) => c.socketPath)).toEqual(['/home/ann/.xdg-run/gatehouse/mcp.sock']);
    const openDir = disk({ '/home/ann/.xdg-run/gatehouse/mcp.sock': { isSocket: true }, '/home/ann/.xdg-run/gatehouse': { isDirectory: true, mode: 0o777 } });
    expect(usableCandidates(input({ stat: openDir }), places)).toEqual([]);
    const notASocket = disk({ '/home/ann/.xdg-run/gatehouse/mcp.sock': {}, '/home/ann/.xdg-run/gatehouse': { isDirectory: true } });
    expect(usableCandidates(input({ stat: notASocket }), places)).toEqual([]);
  });

  it("adopts the daemon's session bus for the keychain only when its socket is this user's, and never over one it was given", () => {
    expect(sessionBusFor(input({ stat: disk({ '/home/ann/.xdg-run/bus': { isSocket: true } }) }), note)).toBe('unix:path=/home/ann/.xdg-run/bus');
    expect(sessionBusFor(input({ stat: disk({ '/home/ann/.xdg-run/bus': { isSocket: true, uid: 0 } }) }), note)).toBeUndefined();
    expect(sessionBusFor(input({ stat: disk({ '/run/user/1000/bus': { isSocket: true } }) }), undefined)).toBe('unix:path=/run/user/1000/bus');
    expect(
      sessionBusFor(
        input({ env: { ...minimalEnv, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/x' }, stat: disk({ '/home/ann/.xdg-run/bus': { isSocket: true } }) }),
        note,
      ),
    ).toBeUndefined();
  });

  it('says where it looked and where a daemon of this user was last seen', () => {
    const looked = candidatePlaces(input(), note);
    expect(notRunningMessage(looked, { ...note, stoppedAt: '2026-11-30T18:00:00.000Z' })).toBe(
      'Gatehouse is not running: no daemon answered at /home/ann/.local/state/gatehouse/run/mcp.sock (this environment), /run/user/1000/gatehouse/mcp.sock (the runtime directory of uid 1000), ' +
        '/home/ann/.xdg-run/gatehouse/mcp.sock (where the daemon was last seen). A daemon of this user was last seen listening on /home/ann/.xdg-run/gatehouse/mcp.sock; it stopped at 2026-11-30T18:00:00.000Z. ' +
        'Start it with `gatehouse daemon` (or open the Gatehouse app).',
    );
    expect(notRunningMessage(looked.slice(0, 1), undefined)).toContain('No daemon of this user has left a note of where it runs.');
  });
});
