/**
 * Effective rights are the user's rights intersected with the client's scope: `ScopedPolicy`
 * wraps whatever policy is in force and can only take away, in lists and in calls alike.
 */
import { describe, expect, it } from 'vitest';
import type { GovernedCall } from '../../src/core/chain.js';
import { ScopedPolicy, describeScope, outsideScope, type ClientScope } from '../../src/core/identity/client-scope.js';
import type { PolicyDecision, PolicyPort } from '../../src/core/governance.js';
import type { Principal } from '../../src/core/principal.js';

const readOnlyTools = new Set(['crm/search', 'crm/get_contact']);
const readOnly = (server: string, tool: string) => readOnlyTools.has(`${server}/${tool}`);

/** The user's own rights: everything but crm's delete_contact. */
const inner: PolicyPort = {
  mode: 'managed',
  version: '7',
  visible: (_p, server, _kind, name) => !(server === 'crm' && name === 'delete_contact'),
  decide: (call): PolicyDecision =>
    call.server === 'crm' && call.name === 'delete_contact'
      ? { allow: false, reason: 'the user may not delete', policyIds: ['p1'] }
      : { allow: true, reason: 'allowed by p2', policyIds: ['p2'] },
};

const principal = (scope?: ClientScope): Principal => ({
  user: { id: 'u', source: 'oidc', displayName: 'u', groups: ['sales'], roles: [] },
  client: { id: 'client:c:1', name: 'briefing', verified: true, transport: 'socket', ...(scope ? { scope } : {}) },
});
const call = (p: Principal, server: string, name: string, kind: GovernedCall['kind'] = 'tool'): GovernedCall => ({
  id: '1',
  kind,
  server,
  name,
  principal: p,
  context: { signal: new AbortController().signal },
  facts: {},
});

describe('client scope', () => {
  const policy = new ScopedPolicy(inner, readOnly);

  it("a client paired for all the user's tools has exactly the user's rights", () => {
    const p = principal({ kind: 'all' });
    expect(policy.visible(p, 'crm', 'tool', 'update_contact')).toBe(true);
    expect(policy.decide(call(p, 'crm', 'update_contact'))).toMatchObject({ allow: true, policyIds: ['p2'] });
    expect(policy.decide(call(p, 'crm', 'delete_contact'))).toMatchObject({ allow: false, reason: 'the user may not delete' });
  });

  it('a client paired for listed items may open the view of a server only when something of it is listed, and the record says why not', () => {
    const p = principal({ kind: 'listed', servers: ['memory'], tools: ['crm__search'] });
    expect(policy.serverVisible(p, 'memory')).toBe(true);
    expect(policy.serverVisible(p, 'crm')).toBe(true);
    expect(policy.serverVisible(p, 'mail')).toBe(false);
    expect(policy.serverVisible(principal({ kind: 'all' }), 'mail')).toBe(true);
    expect(policy.explainHidden(p, 'mail', 'tool', 'send')).toEqual({
      reason: 'refused for client "briefing": the client was not paired for this item',
      policyIds: [],
    });
  });

  it('a read-only client sees and calls only read-only tools, and still every resource and prompt the user may', () => {
    const p = principal({ kind: 'read-only' });
    expect(policy.visible(p, 'crm', 'tool', 'search')).toBe(true);
    expect(policy.visible(p, 'crm', 'tool', 'update_contact')).toBe(false);
    expect(policy.visible(p, 'crm', 'resource', 'crm://contacts/1')).toBe(true);
    expect(policy.visible(p, 'crm', 'prompt', 'summarise')).toBe(true);
    const refused = policy.decide(call(p, 'crm', 'update_contact'));
    expect(refused).toMatchObject({ allow: false, code: 'policy_denied' });
    expect(refused.reason).toBe(
      'crm__update_contact is refused for client "briefing": the client was paired read-only and this tool is not known to be read-only',
    );
  });

  it('a listed client gets every item of a listed server and each listed tool or prompt, nothing else', () => {
    const p = principal({ kind: 'listed', servers: ['calendar'], tools: ['crm__search', 'crm__weekly'] });
    expect(policy.visible(p, 'calendar', 'tool', 'create_event')).toBe(true);
    expect(policy.visible(p, 'calendar', 'resource', 'cal://today')).toBe(true);
    expect(policy.visible(p, 'crm', 'tool', 'search')).toBe(true);
    expect(policy.visible(p, 'crm', 'prompt', 'weekly')).toBe(true);
    expect(policy.visible(p, 'crm', 'tool', 'get_contact')).toBe(false);
    // Resources follow their server only: listing a crm tool does not open crm's resources.
    expect(policy.visible(p, 'crm', 'resource', 'crm://contacts/1')).toBe(false);
    expect(policy.decide(call(p, 'mail', 'send'))).toMatchObject({ allow: false });
  });

  it('never widens: a scope that lists what the user may not do still refuses it', () => {
    const p = principal({ kind: 'listed', servers: ['crm'], tools: ['crm__delete_contact'] });
    expect(policy.visible(p, 'crm', 'tool', 'delete_contact')).toBe(false);
    expect(policy.decide(call(p, 'crm', 'delete_contact'))).toMatchObject({ allow: false, reason: 'the user may not delete' });
  });

  it("a principal without a scope (clients paired before scopes existed) has the user's rights", () => {
    expect(outsideScope(undefined, readOnly, 'crm', 'tool', 'update_contact')).toBeUndefined();
    expect(policy.decide(call(principal(), 'crm', 'update_contact')).allow).toBe(true);
  });

  it("keeps the inner policy's mode and version for the audit record", () => {
    expect([policy.mode, policy.version]).toEqual(['managed', '7']);
  });

  it('describes each scope in words for the pairing record and `clients list`', () => {
    expect(describeScope({ kind: 'all' })).toBe("all of the user's tools");
    expect(describeScope({ kind: 'read-only' })).toBe('read-only');
    expect(describeScope({ kind: 'listed', servers: ['calendar'], tools: ['crm__search'] })).toBe('calendar (all), crm__search');
  });
});
