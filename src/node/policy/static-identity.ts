/**
 * A fixed user with group claims, standing in for the SSO identity until the identity issue lands.
 * Only `startDaemon`'s test-only `testIdentity` option creates it: no config field, environment
 * variable or command-line flag reaches it, so a desktop user cannot claim groups this way.
 * Clients are still identified (and verified) exactly as with the OS identity.
 */
import type { Principal } from '../../core/principal.js';
import type { ClientRegistry } from '../client-registry.js';
import { LocalIdentity } from '../local-identity.js';

export interface TestIdentity {
  user: string;
  groups: string[];
}

export class StaticIdentity extends LocalIdentity {
  override readonly user: Principal['user'];

  constructor(registry: ClientRegistry, identity: TestIdentity) {
    super(registry);
    this.user = { id: identity.user, source: 'oidc', displayName: `${identity.user} (test identity)`, groups: [...identity.groups], roles: [] };
  }
}
