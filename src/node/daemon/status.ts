/**
 * `gatehouse status` as one object: what each part of the daemon says about itself, put together.
 * The composition root (src/node/daemon.ts) hands in the parts; this file only reads them.
 */
import type { DaemonStatus, IdentityStatus } from '../../common/status.js';
import type { Principal } from '../../core/principal.js';
import type { BundlePolicy } from '../../core/policy/bundle-policy.js';
import { SIGN_IN_REQUIRED } from '../../core/policy/bundle-policy.js';
import type { Supervisor } from '../../core/supervisor/supervisor.js';
import type { KeyStore } from '../../core/keystore/keystore.js';
import type { HttpListener } from '../downstream/http-listener.js';
import type { SessionHost } from '../downstream/sessions.js';
import type { LocalIdentity } from '../local-identity.js';
import type { PolicyController } from '../policy/controller.js';
import type { SandboxLauncher } from '../sandbox/launcher.js';
import type { GatehousePaths } from '../paths.js';
import { memoryFigures } from '../heap.js';
import type { openLocalAudit } from '../audit/local.js';
import type { openCatalog } from './catalog.js';
import type { openGovernance } from './governance.js';
import type { openHumanChannel } from './human.js';
import type { openUserIdentity } from './user-identity.js';
import type { openTelemetry } from '../telemetry/open.js';

export interface StatusParts {
  version: string;
  startedAt: Date;
  paths: GatehousePaths;
  policy: { mode: 'managed' | 'unmanaged'; version?: string | undefined };
  policyController: Pick<PolicyController, 'status'>;
  bundlePolicy: Pick<BundlePolicy, 'state'>;
  identity: Pick<LocalIdentity, 'currentUser'>;
  user: Pick<ReturnType<typeof openUserIdentity>, 'status'>;
  supervisor: Pick<Supervisor, 'statuses' | 'config'>;
  sandbox: Pick<SandboxLauncher, 'describe'>;
  sessions: Pick<SessionHost, 'statuses'>;
  localAudit: Pick<ReturnType<typeof openLocalAudit>, 'status'>;
  keychain: Pick<KeyStore, 'status'>;
  human: Pick<ReturnType<typeof openHumanChannel>, 'status' | 'desk'>;
  governance: Pick<ReturnType<typeof openGovernance>, 'quotas' | 'approvals'>;
  http: Pick<HttpListener, 'url' | 'connectionStats'> | undefined;
  catalog: Pick<ReturnType<typeof openCatalog>, 'service' | 'quarantined'>;
  telemetry: Pick<Awaited<ReturnType<typeof openTelemetry>>, 'status'>;
}

/** The sign-in as `whoami` shows it, with the roles the bundle in force gives the user's groups. */
export function identityStatus(parts: Pick<StatusParts, 'user' | 'bundlePolicy' | 'identity'>): IdentityStatus {
  const signIn = parts.user.status();
  const state = parts.bundlePolicy.state;
  if (state.kind !== 'enforcing') return signIn;
  const whoami: Principal = { user: parts.identity.currentUser, client: { id: 'whoami', name: 'whoami', verified: true, transport: 'in-process' } };
  return { ...signIn, roles: state.evaluator.rolesOf(whoami) };
}

export function daemonStatus(parts: StatusParts): DaemonStatus {
  const { paths, policy, identity, supervisor, http, catalog } = parts;
  const signInNotice =
    policy.mode === 'managed' && identity.currentUser.source === 'os'
      ? { notice: `${SIGN_IN_REQUIRED}; no identity provider is configured (identity.json in the managed location, see docs/identity.md)` }
      : {};
  const quotaStatus = parts.governance.quotas.status(identity.currentUser);
  return {
    version: parts.version,
    pid: process.pid,
    startedAt: parts.startedAt.toISOString(),
    user: identity.currentUser.displayName,
    policy: { mode: policy.mode, ...(policy.version ? { version: policy.version } : {}), ...parts.policyController.status(), ...signInNotice },
    configFile: paths.configFile,
    socketPath: paths.socketPath,
    ...(http ? { httpUrl: http.url, mcpUrl: `${http.url}/mcp` } : {}),
    servers: supervisor.statuses().map((server) => {
      const config = supervisor.config(server.name);
      return server.confinement || config?.type !== 'stdio' ? server : { ...server, confinement: parts.sandbox.describe(server.name, config) };
    }),
    clients: parts.sessions.statuses(),
    audit: parts.localAudit.status(),
    identity: identityStatus(parts),
    keystore: parts.keychain.status(),
    pendingQuestions: parts.human.desk.pending(),
    humanChannel: parts.human.status(),
    approvals: parts.governance.approvals.status(),
    ...(quotaStatus ? { quotas: quotaStatus } : {}),
    memory: { ...memoryFigures(), ...(http ? { httpConnections: http.connectionStats() } : {}) },
    installs: catalog.service.status(),
    quarantined: catalog.quarantined(),
    shadowServers: catalog.service.shadowServers(),
    telemetry: parts.telemetry.status(),
  };
}
