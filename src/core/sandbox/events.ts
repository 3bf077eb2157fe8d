/**
 * What the sandboxes saw, in the audit log: connections the egress proxy refused or let through,
 * names the DNS stub refused, decoy sockets touched, file calls refused, and limits hit. A hostile server can try the
 * same thing thousands of times, or a thousand different things, so records are folded: the first
 * occurrence of each (server, kind, target) in a window is recorded at once, repeats are counted
 * and recorded as one summary when the window ends, and past `maxKeysPerWindow` distinct targets
 * per server, the rest go into one "other" summary. Nothing is dropped uncounted.
 */
import type { AuditRecord, Clock, TimerHandle } from '../ports.js';

/**
 * What a sandbox refused or saw. `socket`: a decoy standing where a protected socket is (Gatehouse's
 * own, the session bus, an agent). `file-read`, `file-write`: a file call the sandbox made fail, as
 * its tracer saw it (src/core/sandbox/file-denials.ts).
 */
export type SandboxDenialKind = 'network' | 'dns' | 'socket' | 'processes' | 'memory' | 'file-read' | 'file-write';

export interface SandboxEventsDeps {
  clock: Clock;
  append(record: AuditRecord): void;
  windowMs?: number;
  maxKeysPerWindow?: number;
}

interface Window {
  /** Repeats since the first record, by key. */
  repeats: Map<string, { record: Omit<AuditRecord, 'at'>; count: number }>;
  overflow: number;
  timer: TimerHandle;
}

const OTHER = '(other targets)';

export class SandboxEvents {
  readonly #deps: Required<SandboxEventsDeps>;
  readonly #windows = new Map<string, Window>();

  constructor(deps: SandboxEventsDeps) {
    this.#deps = { windowMs: 60_000, maxKeysPerWindow: 50, ...deps };
  }

  /** Something the sandbox or the proxy refused: `target` is what was tried (`evil.example:443`, `control socket`). */
  denied(server: string, kind: SandboxDenialKind, target: string, reason: string, count = 1): void {
    this.#note(server, `denied ${kind} ${target}`, { type: 'sandbox.denied', server, reason, detail: { kind, target } }, count);
  }

  /** A connection the proxy let through to an allow-listed destination. */
  egress(server: string, destination: string): void {
    this.#note(server, `egress ${destination}`, { type: 'sandbox.egress', server, detail: { destination } }, 1);
  }

  /** Records every pending summary now (a server stopped, the daemon stops). */
  flush(server?: string): void {
    for (const key of [...this.#windows.keys()]) if (server === undefined || key === server) this.#close(key);
  }

  #note(server: string, key: string, record: Omit<AuditRecord, 'at'>, count: number): void {
    let window = this.#windows.get(server);
    if (!window) {
      const timer = this.#deps.clock.setTimeout(() => this.#close(server), this.#deps.windowMs);
      timer.unref?.();
      window = { repeats: new Map(), overflow: 0, timer };
      this.#windows.set(server, window);
    }
    const seen = window.repeats.get(key);
    if (seen) {
      seen.count += count;
      return;
    }
    if (window.repeats.size >= this.#deps.maxKeysPerWindow) {
      window.overflow += count;
      return;
    }
    window.repeats.set(key, { record, count: count - 1 });
    this.#append(record, count);
  }

  #close(server: string): void {
    const window = this.#windows.get(server);
    if (!window) return;
    this.#windows.delete(server);
    this.#deps.clock.clearTimeout(window.timer);
    for (const { record, count } of window.repeats.values()) if (count > 0) this.#append(record, count, true);
    if (window.overflow > 0) {
      this.#append(
        { type: 'sandbox.denied', server, reason: 'more attempts against other targets', detail: { kind: 'various', target: OTHER } },
        window.overflow,
        true,
      );
    }
  }

  #append(record: Omit<AuditRecord, 'at'>, count: number, repeated = false): void {
    const at = new Date(this.#deps.clock.now()).toISOString();
    this.#deps.append({ ...record, at, detail: { ...(record.detail ?? {}), count, ...(repeated ? { repeated: true } : {}) } });
  }
}
