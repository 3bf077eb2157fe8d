/**
 * The daemon's log (src/node/logger.ts, pino behind the Logger port): readable lines on a terminal,
 * one JSON object per line otherwise, written at once so that lines a person must see, written to
 * the same terminal by their own code, keep their place.
 */
import { describe, expect, it } from 'vitest';
import { defaultLogFormat, jsonLogger, pinoLogger } from '../../src/node/logger.js';

describe('the daemon log', () => {
  it('writes one JSON object per line with the level by name, an ISO time and the event, and drops what is below its level', () => {
    const lines: string[] = [];
    const log = jsonLogger((line) => lines.push(line), 'info');
    log.log('debug', 'not.shown', {});
    log.log('info', 'daemon.ready', { socket: '/run/mcp.sock' });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith('\n')).toBe(true);
    const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(entry).toMatchObject({ level: 'info', event: 'daemon.ready', socket: '/run/mcp.sock' });
    expect(new Date(entry.time as string).toISOString()).toBe(entry.time);
  });

  it('on a terminal, writes readable lines, in order with what else is written there', () => {
    const screen: string[] = [];
    const log = pinoLogger({ format: 'pretty', destination: { write: (text: string) => screen.push(text) } });
    log.log('info', 'server.state', { server: 'memory', state: 'ready' });
    screen.push('*** Gatehouse asks: Pair the client "cursor"?\n');
    log.log('warn', 'server.state', { server: 'files', state: 'backing-off', error: 'exited with code 1' });
    expect(screen[0]).toMatch(/^\[\d\d:\d\d:\d\d\] INFO: server\.state \{"server":"memory","state":"ready"\}\n$/);
    expect(screen[1]).toBe('*** Gatehouse asks: Pair the client "cursor"?\n');
    expect(screen[2]).toMatch(/WARN: server\.state \{"server":"files","state":"backing-off","error":"exited with code 1"\}\n$/);
  });

  it('is readable on a terminal and JSON elsewhere by default', () => {
    expect(defaultLogFormat(true)).toBe('pretty');
    expect(defaultLogFormat(false)).toBe('json');
  });
});
