/**
 * Approvals for people without an admin (src/core/approvals/local-rules.ts): the user's own rules
 * send matching calls to the person first (`approvals.ask`, the `restrict` syntax), or every tool
 * not marked read-only (`approvals.askBeforeWrites`). They only ever add a question to a call the
 * policy in force allows: they never show, allow or un-ask anything. Issue 10.
 */
import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../src/common/config.js';
import { AskingPolicy, LocalAsking } from '../../src/core/approvals/local-rules.js';
import { describeReason } from '../../src/core/approvals/request.js';
import type { GovernedCall } from '../../src/core/chain.js';
import { UnmanagedPolicy, type PolicyDecision, type PolicyPort } from '../../src/core/governance.js';

const call = (server: string, name: string, kind: GovernedCall['kind'] = 'tool') => ({ server, name, kind }) as GovernedCall;
const readOnly = (_server: string, tool: string) => tool.startsWith('read');

function policy(ask: string[], askBeforeWrites = false, inner: PolicyPort = new UnmanagedPolicy()) {
  return new AskingPolicy(inner, () => new LocalAsking({ ask, askBeforeWrites }), readOnly);
}

describe("the user's own approval rules", () => {
  it('add a question to the calls they name, by server, tool or wildcard, and to nothing else', () => {
    const p = policy(['crm__refund', 'files__write_*', 'mail']);
    expect(p.decide(call('crm', 'refund')).obligations?.ask).toEqual({ rules: ['crm__refund'] });
    expect(p.decide(call('files', 'write_file')).obligations?.ask).toEqual({ rules: ['files__write_*'] });
    expect(p.decide(call('mail', 'send', 'prompt')).obligations?.ask).toEqual({ rules: ['mail'] });
    expect(p.decide(call('crm', 'search')).obligations?.ask).toBeUndefined();
    expect(p.decide(call('files', 'read_file')).obligations?.ask).toBeUndefined();
  });

  it('ask before every tool not marked read-only with one switch', () => {
    const p = policy([], true);
    expect(p.decide(call('files', 'write_file')).obligations?.ask).toEqual({ rules: ['askBeforeWrites'] });
    expect(p.decide(call('files', 'read_file')).obligations?.ask).toBeUndefined();
    expect(describeReason({ kind: 'local', rules: ['askBeforeWrites'] })).toBe(
      'is one you asked to approve first in your Gatehouse config (approvals.askBeforeWrites: it is not marked read-only)',
    );
  });

  it('never allow, show or un-ask what the policy in force decides', () => {
    const refusing: PolicyPort = {
      mode: 'managed',
      version: '3',
      visible: () => false,
      decide: (): PolicyDecision => ({ allow: false, reason: 'no', policyIds: ['deny-all'] }),
    };
    const p = policy(['*'], true, refusing);
    expect(p.decide(call('crm', 'refund'))).toEqual({ allow: false, reason: 'no', policyIds: ['deny-all'] });
    expect(p.visible({} as never, 'crm', 'tool', 'refund')).toBe(false);
    const asking: PolicyPort = {
      ...refusing,
      decide: () => ({
        allow: true,
        reason: 'ok',
        policyIds: ['p'],
        obligations: { approval: { policies: ['p'], approvers: ['user'], fields: [] }, quotas: ['q'] },
      }),
    };
    expect(policy(['crm__refund'], false, asking).decide(call('crm', 'refund')).obligations).toEqual({
      approval: { policies: ['p'], approvers: ['user'], fields: [] },
      quotas: ['q'],
      ask: { rules: ['crm__refund'] },
    });
  });

  it('are checked like restrict rules in the config file', () => {
    expect(ConfigSchema.parse({}).approvals).toEqual({ ask: [], askBeforeWrites: false, timeoutSeconds: 120 });
    expect(ConfigSchema.safeParse({ approvals: { ask: ['crm refund'] } }).success).toBe(false);
    expect(ConfigSchema.safeParse({ approvals: { timeoutSeconds: 1 } }).success).toBe(false);
    expect(ConfigSchema.safeParse({ approvals: { always: true } }).success).toBe(false);
  });
});
