/**
 * The outcome a call gets when the daemon that ran it died first (SIGKILL, a crash, power): its
 * attempt is on record (it was committed before the call went on), its outcome is not. The next
 * start writes one, so that every attempt in the log ends somewhere and a reader sees which calls
 * may or may not have reached their server.
 */
import type { AuditEvent } from './event.js';
import type { AuditRecord } from '../ports.js';

export const INTERRUPTED_REASON = "Gatehouse stopped (it was killed or crashed) before this call's outcome was recorded; whether its server ran it is unknown";

export function interruptedOutcome(attempt: AuditEvent, at: string): AuditRecord {
  return {
    type: 'call.outcome',
    at,
    ...(attempt.callId !== undefined ? { callId: attempt.callId } : {}),
    ...(attempt.user !== undefined ? { user: attempt.user } : {}),
    ...(attempt.client !== undefined ? { client: attempt.client } : {}),
    ...(attempt.server !== undefined ? { server: attempt.server } : {}),
    ...(attempt.kind !== undefined ? { kind: attempt.kind } : {}),
    ...(attempt.name !== undefined ? { name: attempt.name } : {}),
    decision: 'interrupted',
    stage: 'audit',
    reason: INTERRUPTED_REASON,
    detail: { attemptSeq: attempt.seq, attemptAt: attempt.at },
  };
}
