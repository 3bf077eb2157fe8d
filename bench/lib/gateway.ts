/** A Gateway for in-process measurements: unmanaged policy, no quotas or approvals, a silent logger. */
import { Gateway } from '../../src/core/gateway.js';
import { ADMIT, NoApprovals, NoQuotas, UnmanagedPolicy } from '../../src/core/governance.js';
import { systemClock, type AuditSink, type UpstreamConnection, type UpstreamLists } from '../../src/core/ports.js';
import type { Principal } from '../../src/core/principal.js';
import type { CallTracer } from '../../src/core/telemetry/ports.js';

/** With `tracer`, the chain is traced as the daemon's is when telemetry is on. */
export function benchGateway(
  lists: ReadonlyMap<string, UpstreamLists>,
  connection: UpstreamConnection | undefined,
  audit: AuditSink,
  tracer?: CallTracer,
): Gateway {
  return new Gateway({
    directory: { readyLists: () => lists, connection: () => (connection ? { connection, timeoutMs: 60_000 } : undefined) },
    audit,
    clock: systemClock,
    logger: { log: () => undefined },
    identity: { verify: () => ADMIT },
    policy: new UnmanagedPolicy(),
    quota: new NoQuotas(),
    approval: new NoApprovals(),
    ...(tracer ? { tracer } : {}),
  });
}

export function benchPrincipal(transport: Principal['client']['transport']): Principal {
  return {
    user: { id: 'os:bench', source: 'os', displayName: 'bench', groups: [], roles: [] },
    client: { id: 'client:bench', name: 'bench', verified: true, transport },
  };
}
