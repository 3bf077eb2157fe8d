/**
 * Identity before SSO: the principal is the OS user who owns the daemon (only that user can reach
 * its socket), plus the client's name, verified when it presented a registered credential.
 */
import { userInfo } from 'node:os';
import type { Admission, IdentityPort } from '../core/governance.js';
import { ADMIT } from '../core/governance.js';
import type { Principal } from '../core/principal.js';
import type { ClientRegistry } from './client-registry.js';
import type { Hello } from './downstream/hello.js';

export class LocalIdentity implements IdentityPort {
  readonly user: Principal['user'];

  constructor(private readonly registry: ClientRegistry) {
    const name = userInfo().username;
    this.user = { id: `os:${name}`, source: 'os', displayName: name, groups: [], roles: [] };
  }

  /** A bridge's hello: a presented credential must be right; a name that has a credential must present it. */
  fromHello(hello: Hello): { ok: true; principal: Principal } | { ok: false; reason: string } {
    this.registry.reload();
    if (hello.token !== undefined) {
      const record = this.registry.verify(hello.token);
      if (!record) return { ok: false, reason: 'wrong or revoked client credential' };
      if (record.name !== hello.client) return { ok: false, reason: `the credential belongs to another client than "${hello.client}"` };
      this.registry.touch(record.name);
      return { ok: true, principal: this.principal(record.name, true, 'socket') };
    }
    if (this.registry.has(hello.client)) {
      return { ok: false, reason: `client "${hello.client}" has a credential; pass it with --token-file or GATEHOUSE_CLIENT_TOKEN` };
    }
    return { ok: true, principal: this.principal(hello.client, false, 'socket') };
  }

  /** An HTTP bearer token: always required on HTTP, which any local process can reach. */
  fromBearer(token: string): Principal | undefined {
    const record = this.registry.verify(token);
    if (!record) return undefined;
    this.registry.touch(record.name);
    return this.principal(record.name, true, 'http');
  }

  private principal(client: string, verified: boolean, transport: 'socket' | 'http'): Principal {
    return { user: this.user, client: { id: `${verified ? 'client' : 'unverified'}:${client}`, name: client, verified, transport } };
  }

  verify(principal: Principal): Admission {
    if (principal.client.verified && !this.registry.isCurrent(principal.client.name)) {
      return { ok: false, code: 'unauthenticated', reason: `the credential of client "${principal.client.name}" was revoked` };
    }
    return ADMIT;
  }
}
