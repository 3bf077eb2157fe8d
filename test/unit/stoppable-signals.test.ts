/**
 * The signals the connector gives the SDK client's requests to a server (src/node/upstream/connector.ts):
 * aborted by the caller or by Gatehouse's stop, without leaving anything on the stop signal, which
 * lives as long as the daemon.
 */
import { describe, expect, it } from 'vitest';
import { StoppableSignals } from '../../src/node/upstream/connector.js';

describe('StoppableSignals', () => {
  it("aborts a request's signal when Gatehouse stops, with the stop's reason, and leaves its caller's alone", () => {
    const signals = new StoppableSignals();
    const caller = new AbortController();
    const stop = new AbortController();
    const { signal } = signals.link(caller.signal, stop.signal);
    stop.abort(new Error('Gatehouse is stopping'));
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).message).toBe('Gatehouse is stopping');
    expect(caller.signal.aborted).toBe(false);
  });

  it("aborts a request's signal when its caller cancels, with the caller's reason", () => {
    const signals = new StoppableSignals();
    const caller = new AbortController();
    const { signal } = signals.link(caller.signal, new AbortController().signal);
    caller.abort('the person pressed stop');
    expect(signal.reason).toBe('the person pressed stop');
  });

  it('links a signal already aborted when its caller had left or Gatehouse had stopped', () => {
    const signals = new StoppableSignals();
    const stopped = new AbortController();
    stopped.abort('stopping');
    expect(signals.link(new AbortController().signal, stopped.signal).signal.aborted).toBe(true);
    const left = new AbortController();
    left.abort('gone');
    expect(signals.link(left.signal, new AbortController().signal).signal.reason).toBe('gone');
  });

  it('listens to the stop signal only while requests are in flight, once for all of them', () => {
    const signals = new StoppableSignals();
    const stop = new AbortController();
    const links = Array.from({ length: 3 }, () => signals.link(new AbortController().signal, stop.signal));
    expect(signals.listeners).toEqual({ live: 3, listening: true });
    links.forEach((l) => l.done());
    links[0]!.done();
    expect(signals.listeners).toEqual({ live: 0, listening: false });
    // A request settled before the stop is not aborted by it.
    stop.abort('late');
    expect(links.every((l) => !l.signal.aborted)).toBe(true);
  });
});
