/**
 * The approval stage's port: a call whose decision carries an approval obligation (a permit's
 * `@approval`), or that is past a quota's threshold, waits here while a person is asked through the
 * human channel, which no agent can reach (see SECURITY.md). Each waiting call is a pending
 * request, bound to the digest of the exact request (request.ts); requests wait side by side, each
 * with its own question and deadline, oldest first in status.
 *
 * The answers: deny; allow once; allow for this client's session (later calls in the same session
 * to the same tool with the same argument pattern, for the same reasons; not offered for destructive
 * tools). There is no "always". Silence until the deadline is a denial; a client that cancels its
 * call, or disconnects, withdraws the request; an answer that comes late, names another digest or a
 * choice that was not offered is refused. Every request and every outcome is an audit event
 * (`approval.requested`, `approval.decided`), and the request is journalled while it waits, so a
 * daemon that dies meanwhile refuses and audits it when it starts again (`recover`).
 */
import { randomUUID } from 'node:crypto';
import type { ApprovalsStatus } from '../../common/status.js';
import { callerOf, type GovernedCall } from '../chain.js';
import { ADMIT, type Admission, type ApprovalPort, type ApprovalReason } from '../governance.js';
import type { HumanAnswer, HumanChannel } from '../human/channel.js';
import type { AuditRecord, Clock, Logger, TimerHandle } from '../ports.js';
import type { SessionKeys } from '../quotas/session.js';
import type { PendingJournal, PendingRecord } from './journal.js';
import { approvalQuestion, parseChoice, type ApprovalChoice } from './question.js';
import { argumentPattern, describeReason, fieldValues, highlightedFields, reasonKey, reasonLabel, requestDigest } from './request.js';

export interface ApprovalBrokerDeps {
  channel: HumanChannel;
  clock: Clock;
  journal: PendingJournal;
  sessions: SessionKeys;
  /** Records requests and decisions (the daemon's `record`). */
  audit(record: AuditRecord): void;
  logger: Logger;
  /** What the signed catalog says of a tool (a destructive tool is offered "once" only). */
  tool?(server: string, name: string): { readOnly: boolean; destructive: boolean } | undefined;
  /** How long a request waits for an answer. Default 120 s. */
  /** How long a request waits for its answer; read at each request, so a config reload applies to the next one. */
  timeoutMs?: number | (() => number);
  /** Most requests waiting at once, and per client session. Defaults 16 and 4. */
  maxPending?: number;
  maxPendingPerSession?: number;
  /** How long "allow for this session" lasts at most, even if the session does. Default 8 h. */
  sessionGrantMs?: number;
  /** How often a caller that asked for progress hears that its call still waits. Default 10 s. */
  progressEveryMs?: number;
}

/** Why a request ended without approval; the error data's `approval` field. */
export type Refusal = 'declined' | 'timeout' | 'withdrawn' | 'unavailable' | 'mismatch' | 'busy' | 'stopping';

interface Waiting {
  record: PendingRecord;
  session: string;
  abort: AbortController;
  done: Promise<unknown>;
}

interface Grant {
  server: string;
  kind: string;
  name: string;
  pattern: string;
  reasons: Set<string>;
  expiresAt: number;
  request: string;
  at: string;
}

export const DEFAULT_APPROVAL_TIMEOUT_MS = 120_000;

export class ApprovalBroker implements ApprovalPort {
  private readonly waiting = new Map<string, Waiting>();
  private readonly grants = new Map<string, Grant[]>();
  private closing = false;
  private readonly timeout: () => number;

  constructor(private readonly deps: ApprovalBrokerDeps) {
    const timeout = deps.timeoutMs ?? DEFAULT_APPROVAL_TIMEOUT_MS;
    this.timeout = typeof timeout === 'function' ? timeout : () => timeout;
  }

  async review(call: GovernedCall, signal: AbortSignal): Promise<Admission> {
    const reasons = call.facts.approvalNeeded;
    if (!reasons || reasons.length === 0) return ADMIT;
    const why = reasons.map(describeReason).join('; ');
    const target = `${call.server}__${call.name}`;
    if (this.closing) return this.refuse(call, 'stopping', `${target} ${why}, and Gatehouse is stopping`);
    if (signal.aborted) return this.refuse(call, 'withdrawn', `${target}: the call was cancelled before it could be approved`);

    const now = this.deps.clock.now();
    const session = this.deps.sessions.of(call.principal);
    const fields = highlightedFields(reasons);
    const pattern = argumentPattern(call.arguments, fields);
    const keys = reasons.map(reasonKey);
    const grant = this.grantFor(session, call, pattern, keys, now);
    if (grant) {
      call.facts.approval = { required: true, decision: 'approved', scope: 'session', by: 'user', at: grant.at };
      return ADMIT;
    }

    const ownWaiting = [...this.waiting.values()].filter((w) => w.session === session).length;
    if (this.waiting.size >= (this.deps.maxPending ?? 16) || ownWaiting >= (this.deps.maxPendingPerSession ?? 4)) {
      return this.refuse(
        call,
        'busy',
        `${target} ${why}, and ${ownWaiting >= (this.deps.maxPendingPerSession ?? 4) ? `${ownWaiting} calls of this session` : `${this.waiting.size} calls`} already wait for an answer; try again once they are answered`,
      );
    }

    const tool = call.kind === 'tool' ? this.deps.tool?.(call.server, call.name) : undefined;
    const record: PendingRecord = {
      id: randomUUID(),
      callId: call.id,
      digest: requestDigest(call),
      user: call.principal.user.id,
      client: call.principal.client.name,
      server: call.server,
      kind: call.kind,
      name: call.name,
      reasons: reasons.map(reasonLabel),
      askedAt: now,
      deadline: now + this.timeout(),
    };
    // Journalled before anyone is asked: if the daemon dies now, the next start refuses and audits it.
    this.deps.journal.add(record);
    const abort = new AbortController();
    let settle!: () => void;
    const entry: Waiting = { record, session, abort, done: new Promise<void>((resolve) => (settle = resolve)) };
    this.waiting.set(record.id, entry);
    const onCancel = (): void => abort.abort('withdrawn');
    signal.addEventListener('abort', onCancel, { once: true });
    let stopProgress = (): void => undefined;
    try {
      this.deps.audit({
        type: 'approval.requested',
        at: new Date(now).toISOString(),
        ...this.who(call),
        argsDigest: record.digest,
        ...(fields.length > 0 ? { argsValues: fieldValues(call.arguments, fields) } : {}),
        approval: { required: true },
        reason: why,
        detail: { request: record.id, reasons: record.reasons, deadline: new Date(record.deadline).toISOString() },
      });
      this.deps.logger.log('info', 'approval.requested', {
        request: record.id,
        client: record.client,
        server: record.server,
        name: record.name,
        reasons: record.reasons,
      });
      stopProgress = this.keepCallerInformed(call, record);
      const offersSession = !tool?.destructive;
      const question = approvalQuestion({
        id: record.id,
        digest: record.digest,
        principal: call.principal,
        server: call.server,
        kind: call.kind,
        name: call.name,
        args: call.arguments,
        reasons,
        fields,
        ...(tool ? { tool } : {}),
        askedAt: now,
        deadline: record.deadline,
        offersSession,
      });
      let answer: HumanAnswer;
      try {
        answer = await this.deps.channel.ask(question, record.deadline, abort.signal);
      } catch (error) {
        // The channel's contract is never to throw; if it does, nobody approved.
        answer = { kind: 'unavailable', reason: error instanceof Error ? error.message : String(error) };
      }
      return this.judge(call, record, answer, abort.signal, offersSession, pattern, keys, session, why);
    } finally {
      stopProgress();
      signal.removeEventListener('abort', onCancel);
      this.waiting.delete(record.id);
      try {
        this.deps.journal.remove(record.id);
      } catch (error) {
        // Left in the journal, it is refused again (and audited) at the next start: never approved.
        this.deps.logger.log('error', 'approval.journal_failed', { request: record.id, error: error instanceof Error ? error.message : String(error) });
      }
      settle();
    }
  }

  /** The person's answer (or its absence) → the call's admission, audited. */
  private judge(
    call: GovernedCall,
    record: PendingRecord,
    answer: HumanAnswer,
    aborted: AbortSignal,
    offersSession: boolean,
    pattern: string,
    keys: string[],
    session: string,
    why: string,
  ): Admission {
    const target = `${call.server}__${call.name}`;
    const now = this.deps.clock.now();
    if (this.closing) return this.decided(call, record, 'stopping', `${target} ${why}; Gatehouse stopped before the person answered`);
    if (aborted.aborted) return this.decided(call, record, 'withdrawn', `${target}: the client cancelled the call while it waited for approval`);
    switch (answer.kind) {
      case 'declined':
        return this.decided(call, record, 'declined', `${target} ${why}; the person at this computer declined`, answer.via);
      case 'expired':
        return this.decided(call, record, 'timeout', `${target} ${why}; nobody answered within ${Math.round((record.deadline - record.askedAt) / 1000)} s`);
      case 'unavailable':
        return this.decided(call, record, 'unavailable', `${target} ${why}, and no person can be asked: ${answer.reason}`);
      case 'approved': {
        const choice = parseChoice(answer.choice);
        if (!choice) return this.decided(call, record, 'mismatch', `${target}: the answer did not say "once" or "for this session", so the call is refused`);
        if (choice.digest !== record.digest)
          return this.decided(call, record, 'mismatch', `${target}: the answer approves another request (digest ${choice.digest.slice(0, 19)}…), not this one`);
        if (choice.scope === 'session' && !offersSession)
          return this.decided(call, record, 'mismatch', `${target}: "for this session" was not offered for this tool`);
        if (now > record.deadline) return this.decided(call, record, 'timeout', `${target} ${why}; the approval came after the deadline`);
        return this.approved(call, record, choice.scope, pattern, keys, session, now, answer.via);
      }
    }
  }

  private approved(
    call: GovernedCall,
    record: PendingRecord,
    scope: ApprovalChoice,
    pattern: string,
    keys: string[],
    session: string,
    now: number,
    via: string | undefined,
  ): Admission {
    const at = new Date(now).toISOString();
    if (scope === 'session') {
      const list = this.grants.get(session) ?? [];
      if (list.length >= 32) list.shift();
      list.push({
        server: call.server,
        kind: call.kind,
        name: call.name,
        pattern,
        reasons: new Set(keys),
        expiresAt: now + (this.deps.sessionGrantMs ?? 8 * 3_600_000),
        request: record.id,
        at,
      });
      this.grants.set(session, list);
    }
    const approval: NonNullable<AuditRecord['approval']> = { required: true, decision: 'approved', scope, by: 'user', at };
    call.facts.approval = approval;
    const detail = { request: record.id, ...(via ? { via } : {}) };
    this.deps.audit({ type: 'approval.decided', at, ...this.who(call), decision: 'allowed', argsDigest: record.digest, approval, detail });
    this.deps.logger.log('info', 'approval.approved', { request: record.id, scope });
    return ADMIT;
  }

  private decided(call: GovernedCall, record: PendingRecord, why: Refusal, reason: string, via?: string): Admission {
    const at = new Date(this.deps.clock.now()).toISOString();
    const decision = why === 'timeout' ? 'timeout' : why === 'withdrawn' ? 'withdrawn' : 'denied';
    const approval: NonNullable<AuditRecord['approval']> = { required: true, decision, at, ...(why === 'declined' ? { by: 'user' } : {}) };
    call.facts.approval = approval;
    const detail = { request: record.id, refusal: why, ...(via ? { via } : {}) };
    this.deps.audit({ type: 'approval.decided', at, ...this.who(call), decision: 'denied', argsDigest: record.digest, approval, reason, detail });
    this.deps.logger.log('info', 'approval.refused', { request: record.id, refusal: why });
    return { ok: false, code: 'approval_required', reason, data: { approval: why, request: record.id } };
  }

  /** Refused before a request exists (nothing was asked). */
  private refuse(call: GovernedCall, why: Refusal, reason: string): Admission {
    call.facts.approval = { required: true, decision: why === 'withdrawn' ? 'withdrawn' : 'denied' };
    return { ok: false, code: 'approval_required', reason, data: { approval: why } };
  }

  private grantFor(session: string, call: GovernedCall, pattern: string, keys: string[], now: number): Grant | undefined {
    const list = this.grants.get(session);
    if (!list) return undefined;
    return list.find(
      (g) =>
        g.expiresAt > now &&
        g.server === call.server &&
        g.kind === call.kind &&
        g.name === call.name &&
        g.pattern === pattern &&
        keys.every((k) => g.reasons.has(k)),
    );
  }

  /** A caller that asked for progress hears that its call waits for a person, and until when. Returns how to stop. */
  private keepCallerInformed(call: GovernedCall, record: PendingRecord): () => void {
    const onProgress = call.context.onProgress;
    if (!onProgress) return () => undefined;
    const every = this.deps.progressEveryMs ?? 10_000;
    const message = `waiting for the person at this computer to approve ${call.server}__${call.name} (until ${new Date(record.deadline).toISOString()})`;
    let handle: TimerHandle | undefined;
    let ticks = 0;
    let stopped = false;
    const tick = (): void => {
      if (stopped) return;
      onProgress({ progress: ticks++, message });
      handle = this.deps.clock.setTimeout(tick, every);
    };
    tick();
    return () => {
      stopped = true;
      if (handle) this.deps.clock.clearTimeout(handle);
    };
  }

  private who(call: GovernedCall): Pick<AuditRecord, 'callId' | 'user' | 'client' | 'clientVerified' | 'server' | 'kind' | 'name'> {
    return { callId: call.id, ...callerOf(call) };
  }

  /**
   * Requests an earlier run left waiting (it stopped or died while they waited): each is refused and
   * audited. Call once at start, before serving.
   */
  recover(): number {
    const left = this.deps.journal.leftovers();
    for (const record of left) {
      const at = new Date(this.deps.clock.now()).toISOString();
      this.deps.audit({
        type: 'approval.decided',
        at,
        callId: record.callId,
        user: record.user,
        client: record.client,
        server: record.server,
        kind: record.kind,
        name: record.name,
        decision: 'denied',
        argsDigest: record.digest,
        approval: { required: true, decision: 'denied', at },
        reason: `Gatehouse stopped while this request waited for approval (asked ${new Date(record.askedAt).toISOString()}); it was never approved, and the call did not run`,
        detail: { request: record.id, refusal: 'stopping', reasons: record.reasons },
      });
      this.deps.journal.remove(record.id);
    }
    if (left.length > 0)
      this.deps.logger.log('warn', 'approval.recovered', {
        refused: left.length,
        note: 'requests that waited when Gatehouse last stopped were refused and audited',
      });
    return left.length;
  }

  /** A new policy bundle or another user: session approvals given under the old ones end. */
  revokeSessionGrants(): void {
    this.grants.clear();
  }

  status(): ApprovalsStatus {
    const now = this.deps.clock.now();
    let sessionGrants = 0;
    for (const [session, list] of this.grants) {
      if (!this.deps.sessions.live(session)) {
        this.grants.delete(session);
        continue;
      }
      sessionGrants += list.filter((g) => g.expiresAt > now).length;
    }
    return {
      pending: [...this.waiting.values()].map(({ record }) => ({
        id: record.id,
        user: record.user,
        client: record.client,
        server: record.server,
        name: record.name,
        reasons: record.reasons,
        askedAt: new Date(record.askedAt).toISOString(),
        deadline: new Date(record.deadline).toISOString(),
      })),
      timeoutSeconds: Math.round(this.timeout() / 1000),
      sessionGrants,
    };
  }

  /** Refuses every waiting request (audited as Gatehouse stopping) and waits until each is recorded. */
  async close(): Promise<void> {
    this.closing = true;
    const all = [...this.waiting.values()];
    for (const entry of all) entry.abort.abort('stopping');
    await Promise.all(all.map((entry) => entry.done));
  }
}

export type { ApprovalReason };
