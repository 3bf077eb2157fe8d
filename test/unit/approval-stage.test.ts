/**
 * The approval stage's signal (issue 13, the hot path): a question to the person is withdrawn when
 * the HTTP caller goes away, and a call that asks nobody (almost every call) builds no combined signal.
 */
import { describe, expect, it } from 'vitest';
import type { GovernedCall, Outcome } from '../../src/core/chain.js';
import { ADMIT, type ApprovalPort, type ApprovalReason } from '../../src/core/governance.js';
import type { Principal } from '../../src/core/principal.js';
import { approvalStage } from '../../src/core/stages.js';

const principal: Principal = {
  user: { id: 'u', name: 'u', groups: [] },
  client: { id: 'c', name: 'ide', verified: true, transport: 'http' },
} as unknown as Principal;

function aCall(context: GovernedCall['context'], approvalNeeded?: ApprovalReason[]): GovernedCall {
  return { id: '1', kind: 'tool', server: 'files', name: 'write', arguments: {}, principal, context, facts: approvalNeeded ? { approvalNeeded } : {} };
}

function recordingPort(): ApprovalPort & { signals: AbortSignal[] } {
  const signals: AbortSignal[] = [];
  return {
    signals,
    review: async (_call, signal) => {
      signals.push(signal);
      return ADMIT;
    },
  };
}

const last = async (): Promise<Outcome> => ({ kind: 'ok', result: {} });

describe('approvalStage', () => {
  it("hands a call that needs no approval its own signal, without tying it to the caller's connection", async () => {
    const port = recordingPort();
    const signal = new AbortController().signal;
    const gone = new AbortController();
    await approvalStage(port)(last)(aCall({ signal, gone: gone.signal }));
    expect(port.signals[0]).toBe(signal);
  });

  it('withdraws the question of a call that needs approval when its HTTP caller goes away', async () => {
    const port = recordingPort();
    const signal = new AbortController().signal;
    const gone = new AbortController();
    const reason = { kind: 'policy', policyId: 'p1' } as unknown as ApprovalReason;
    await approvalStage(port)(last)(aCall({ signal, gone: gone.signal }, [reason]));
    const given = port.signals[0]!;
    expect(given.aborted).toBe(false);
    gone.abort();
    expect(given.aborted).toBe(true);
  });
});
