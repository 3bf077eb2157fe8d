/**
 * A fixed signed-in user with group claims, for tests that need a managed policy's roles without
 * running an identity provider. It stands behind the same port as the real sign-in (`SessionPort`,
 * which `UserSession` implements), so everything else is built exactly as in production: clients
 * are identified, verified and paired as usual, and a hello without a credential still asks the
 * person. Only `startDaemon`'s test-only `testIdentity` option creates it: no config field,
 * environment variable or command-line flag reaches it, so a desktop user cannot claim groups this
 * way. Real sign-in is `src/node/identity/session.ts` (docs/identity.md).
 */
import { ADMIT, type Admission } from '../../core/governance.js';
import type { Principal } from '../../core/principal.js';
import type { SessionPort } from '../local-identity.js';

export interface TestIdentity {
  user: string;
  groups: string[];
}

export class StaticIdentity implements SessionPort {
  private readonly user: Principal['user'];

  constructor(identity: TestIdentity) {
    this.user = Object.freeze({
      id: identity.user,
      source: 'oidc',
      displayName: `${identity.user} (test identity)`,
      groups: [...identity.groups],
      roles: [],
    }) as Principal['user'];
  }

  currentUser(): Principal['user'] {
    return this.user;
  }

  /** Always signed in: the session never lapses. */
  admission(): Admission {
    return ADMIT;
  }
}
