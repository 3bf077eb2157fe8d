/**
 * Pairing a bridge without making its client wait. An MCP client gives its server a few seconds to
 * answer `initialize` (the Inspector 15 s, IDEs about a minute), while a person may take minutes to
 * answer. So the socket listener answers at once and serves a pending session, and this module
 * keeps the question alive on its own:
 *
 * - the question does not end when the bridge that asked goes away (a one-shot client exits after
 *   one request); it ends at its deadline, or with the person's answer;
 * - a bridge keeps a random *claim* in its key store while it waits, and sends it in its hello; a
 *   later bridge of the same client presenting the same claim joins the waiting question, or picks
 *   up the approval if it came after the first one left. The daemon keeps only the claim's hash;
 * - an approval nobody picks up is kept in memory for `CLAIM_WINDOW_MS` and then dropped: no
 *   credential exists until a bridge that holds the claim connects, so a daemon that stops leaves
 *   nothing half-paired behind.
 *
 * Who can claim: a process of this user that can read the bridge's key store, which is the same
 * process that could read the credential itself once issued (SECURITY.md, I4 and I5).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from '../../core/ports.js';
import type { ClientRecord } from '../client-registry.js';
import type { PairingApproval, PairingFailure, PairingService } from './pairing.js';

/** How long an approval waits for the bridge that asked (or its next launch) to pick it up. */
export const CLAIM_WINDOW_MS = 10 * 60_000;

/** A refusal carries the pairing's stable code (`pairing_declined`, `pairing_expired`, …) beside the words for people. */
export type BridgeOutcome = { ok: true; token: string; record: ClientRecord } | { ok: false; code: PairingFailure['code']; reason: string };

/** A connection waiting for the answer: told once, when the person has answered (or the question ended). */
export interface Waiter {
  /** Its bridge is still connected (a credential for a connection that is gone would be lost). */
  alive(): boolean;
  deliver(outcome: BridgeOutcome): void;
}

export type BridgeStart =
  /** A claimed approval: the credential, at once. */
  | { kind: 'issued'; token: string; record: ClientRecord }
  | { kind: 'refused'; code: PairingFailure['code']; reason: string }
  /** The person is being asked; `attach` hears the answer (and returns a detach function). */
  | { kind: 'pending'; code: string; deadline: number; attach(waiter: Waiter): () => void };

interface Asking {
  claimHash: Buffer | undefined;
  code: string;
  deadline: number;
  waiters: Set<Waiter>;
}

interface Approved {
  claimHash: Buffer;
  approval: PairingApproval;
  release: () => void;
  timer: ReturnType<typeof setTimeout>;
}

function hashClaim(claim: string | undefined): Buffer | undefined {
  return claim === undefined ? undefined : createHash('sha256').update(claim, 'utf8').digest();
}

function sameClaim(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a !== undefined && b !== undefined && a.length === b.length && timingSafeEqual(a, b);
}

export class BridgePairings {
  private asking = new Map<string, Asking>();
  private approved = new Map<string, Approved>();

  constructor(
    private readonly pairing: PairingService,
    private readonly logger: Logger,
    private readonly claimWindowMs = CLAIM_WINDOW_MS,
  ) {}

  async start(request: { client: string; claim?: string; about?: string }): Promise<BridgeStart> {
    const { client } = request;
    const claimHash = hashClaim(request.claim);
    const approved = this.approved.get(client);
    if (approved) {
      if (!sameClaim(approved.claimHash, claimHash)) {
        return {
          kind: 'refused',
          code: 'pairing_refused',
          reason: `the pairing of "${client}" was approved and waits for the bridge that asked for it; start that client again`,
        };
      }
      this.dropApproved(client);
      const issued = this.pairing.issue(approved.approval);
      return issued.ok ? { kind: 'issued', token: issued.token, record: issued.record } : { kind: 'refused', code: issued.code, reason: issued.reason };
    }
    const waiting = this.asking.get(client);
    if (waiting) {
      if (!sameClaim(waiting.claimHash, claimHash))
        return { kind: 'refused', code: 'pairing_refused', reason: `a pairing request for "${client}" is already waiting for an answer` };
      return { kind: 'pending', code: waiting.code, deadline: waiting.deadline, attach: (w) => this.attach(waiting, w) };
    }
    return this.ask(client, claimHash, request.about);
  }

  /** Forgets what waits (the daemon stops): nothing is issued later. */
  close(): void {
    for (const client of [...this.approved.keys()]) this.dropApproved(client);
  }

  private async ask(client: string, claimHash: Buffer | undefined, about: string | undefined): Promise<BridgeStart> {
    let asked!: (value: { code: string; deadline: number }) => void;
    const reached = new Promise<{ code: string; deadline: number }>((resolve) => (asked = resolve));
    const answer = this.pairing.ask({
      client,
      via: 'socket',
      ...(about !== undefined ? { about } : {}),
      onCode: (code, deadline) => asked({ code, deadline }),
    });
    // The question reached the person (the bridge can say so), or it ended at once (nobody can be asked, a bad name).
    const first = await Promise.race([reached, answer.then((result) => ({ result }))]);
    if ('result' in first) {
      if (!first.result.ok) return { kind: 'refused', code: first.result.code, reason: first.result.reason };
      const issued = this.pairing.issue(first.result);
      return issued.ok ? { kind: 'issued', token: issued.token, record: issued.record } : { kind: 'refused', code: issued.code, reason: issued.reason };
    }
    const entry: Asking = { claimHash, code: first.code, deadline: first.deadline, waiters: new Set() };
    this.asking.set(client, entry);
    void answer.then(
      (result) => this.settle(client, entry, result),
      (error: unknown) => this.settle(client, entry, { ok: false, code: 'pairing_unavailable', reason: `pairing failed: ${(error as Error).message}` }),
    );
    return { kind: 'pending', code: entry.code, deadline: entry.deadline, attach: (w) => this.attach(entry, w) };
  }

  private attach(entry: Asking, waiter: Waiter): () => void {
    entry.waiters.add(waiter);
    return () => entry.waiters.delete(waiter);
  }

  private settle(client: string, entry: Asking, result: PairingApproval | PairingFailure): void {
    this.asking.delete(client);
    const waiters = [...entry.waiters].filter((w) => w.alive());
    if (!result.ok) {
      for (const waiter of waiters) waiter.deliver({ ok: false, code: result.code, reason: result.reason });
      return;
    }
    if (waiters.length > 0) {
      const issued = this.pairing.issue(result);
      const outcome: BridgeOutcome = issued.ok
        ? { ok: true, token: issued.token, record: issued.record }
        : { ok: false, code: issued.code, reason: issued.reason };
      // Every bridge of this client that waits gets the same credential (they keep it under the same item).
      for (const waiter of waiters) waiter.deliver(outcome);
      return;
    }
    if (!entry.claimHash) {
      this.logger.log('info', 'pairing.unclaimed', { client, reason: 'approved after the bridge went away, and it holds no claim to come back with' });
      return;
    }
    const release = this.pairing.hold(client);
    const timer = setTimeout(() => {
      this.dropApproved(client);
      this.logger.log('info', 'pairing.unclaimed', {
        client,
        reason: `no bridge picked the approval up within ${Math.round(this.claimWindowMs / 60_000)} minutes`,
      });
    }, this.claimWindowMs);
    timer.unref();
    this.approved.set(client, { claimHash: entry.claimHash, approval: result, release, timer });
  }

  private dropApproved(client: string): void {
    const entry = this.approved.get(client);
    if (!entry) return;
    this.approved.delete(client);
    clearTimeout(entry.timer);
    entry.release();
  }
}
