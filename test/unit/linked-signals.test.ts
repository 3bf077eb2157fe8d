/**
 * A request's signal linked to its own and to a long-lived shared one (src/node/linked-signals.ts),
 * as the connector's requests to remote servers and the audit sync's requests to the hub use it:
 * aborted by either, without leaving anything on the shared signal, which lives as long as the daemon.
 */
import { describe, expect, it } from 'vitest';
import { LinkedSignals } from '../../src/node/linked-signals.js';

describe('LinkedSignals', () => {
  it("aborts a request's signal when Gatehouse stops, with the stop's reason, and leaves its caller's alone", () => {
    const signals = new LinkedSignals();
    const caller = new AbortController();
    const stop = new AbortController();
    const { signal } = signals.link(caller.signal, stop.signal);
    stop.abort(new Error('Gatehouse is stopping'));
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).message).toBe('Gatehouse is stopping');
    expect(caller.signal.aborted).toBe(false);
  });

  it("aborts a request's signal when its caller cancels, with the caller's reason", () => {
    const signals = new LinkedSignals();
    const caller = new AbortController();
    const { signal } = signals.link(caller.signal, new AbortController().signal);
    caller.abort('the person pressed stop');
    expect(signal.reason).toBe('the person pressed stop');
  });

  it('links a signal already aborted when its caller had left or Gatehouse had stopped', () => {
    const signals = new LinkedSignals();
    const stopped = new AbortController();
    stopped.abort('stopping');
    expect(signals.link(new AbortController().signal, stopped.signal).signal.aborted).toBe(true);
    const left = new AbortController();
    left.abort('gone');
    expect(signals.link(left.signal, new AbortController().signal).signal.reason).toBe('gone');
  });

  it('listens to the stop signal only while requests are in flight, once for all of them', () => {
    const signals = new LinkedSignals();
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
