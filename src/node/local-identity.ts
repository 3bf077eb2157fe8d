/**
 * Who is calling. The user is the signed-in user when an identity provider is configured (the
 * session decides, per call, whether calls may be made: `src/node/identity/session.ts`), else the OS
 * user who owns the daemon (only that user can reach its socket). The client is the paired client
 * whose credential was presented; a client without one asks to pair (`src/node/identity/pairing.ts`).
 *
 * A principal's `user` is read live, so a session that signs in, renews or expires is seen by
 * every connected client at its next call, without reconnecting.
 */
import { userInfo } from 'node:os';
import type { Admission, IdentityPort } from '../core/governance.js';
import { ADMIT } from '../core/governance.js';
import type { Principal } from '../core/principal.js';
import { credentialId, isExpired, type ClientRecord, type ClientRegistry } from './client-registry.js';
import type { Hello } from './downstream/hello.js';
import type { PairingService } from './identity/pairing.js';

/** What the identity needs of a sign-in session (`UserSession`). */
export interface SessionPort {
  currentUser(): Principal['user'] | undefined;
  admission(): Admission;
}

export interface LocalIdentityOptions {
  /** The user's sign-in, when an identity provider is configured. */
  session?: SessionPort;
  /** Asks the person to pair a client that comes without a credential. Without it, such a client is let in unverified (tests of other parts). */
  pairing?: PairingService;
}

/** Stands for the user while nobody is signed in: it holds no groups, and the identity stage refuses its calls. */
const NOBODY: Principal['user'] = Object.freeze({ id: 'oidc:signed-out', source: 'oidc', displayName: '(not signed in)', groups: [], roles: [] }) as Principal['user'];

export type HelloResult = { ok: true; principal: Principal; credential?: string } | { ok: false; reason: string };

export class LocalIdentity implements IdentityPort {
  readonly user: Principal['user'];

  constructor(
    private readonly registry: ClientRegistry,
    private readonly options: LocalIdentityOptions = {},
  ) {
    const name = userInfo().username;
    this.user = { id: `os:${name}`, source: 'os', displayName: name, groups: [], roles: [] };
  }

  /** The user calls are made as right now. */
  get currentUser(): Principal['user'] {
    if (!this.options.session) return this.user;
    return this.options.session.currentUser() ?? NOBODY;
  }

  /**
   * A bridge's hello: a presented credential must be right and current; a name that has a
   * credential must present it; a client without one asks the person to pair it, and gets its new
   * credential in the answer.
   */
  async fromHello(hello: Hello, context: { signal?: AbortSignal; onPairing?: (code: string) => void } = {}): Promise<HelloResult> {
    this.registry.reload();
    if (hello.token !== undefined) {
      const record = this.registry.verify(hello.token);
      if (!record) return { ok: false, reason: 'wrong or revoked client credential' };
      if (record.name !== hello.client) return { ok: false, reason: `the credential belongs to another client than "${hello.client}"` };
      if (isExpired(record)) return { ok: false, reason: `the credential of client "${record.name}" expired at ${record.expiresAt}; revoke it (gatehouse clients revoke "${record.name}") and connect again to pair it again` };
      this.registry.touch(record.name);
      return { ok: true, principal: this.principal(record, 'socket') };
    }
    if (this.registry.has(hello.client)) {
      return { ok: false, reason: `client "${hello.client}" has a credential; pass it with --token-file or GATEHOUSE_CLIENT_TOKEN` };
    }
    if (!this.options.pairing) return { ok: true, principal: this.unverified(hello.client) };
    const paired = await this.options.pairing.pair({
      client: hello.client,
      via: 'socket',
      ...(hello.about !== undefined ? { about: hello.about } : {}),
      ...(context.signal ? { signal: context.signal } : {}),
      ...(context.onPairing ? { onCode: context.onPairing } : {}),
    });
    if (!paired.ok) return { ok: false, reason: paired.reason };
    // The client is here now: a bridge that pairs and calls at once must not show "last seen: never".
    this.registry.touch(paired.record.name);
    return { ok: true, principal: this.principal(paired.record, 'socket'), credential: paired.token };
  }

  /** An HTTP bearer token: always required on HTTP, which any local process can reach. */
  fromBearer(token: string): Principal | undefined {
    const record = this.registry.verify(token);
    if (!record || isExpired(record)) return undefined;
    this.registry.touch(record.name);
    return this.principal(record, 'http');
  }

  /** A principal whose user is read at each use, for a client paired under this record. */
  principal(record: ClientRecord, transport: 'socket' | 'http'): Principal {
    const user = (): Principal['user'] => this.currentUser;
    return {
      get user() {
        return user();
      },
      client: { id: `client:${record.name}:${credentialId(record)}`, name: record.name, verified: true, transport, ...(record.scope ? { scope: record.scope } : {}) },
    };
  }

  private unverified(client: string): Principal {
    const user = (): Principal['user'] => this.currentUser;
    return {
      get user() {
        return user();
      },
      client: { id: `unverified:${client}`, name: client, verified: false, transport: 'socket' },
    };
  }

  /** Whether a verified principal's credential is still paired (neither revoked nor replaced); unverified ones have none to lose. */
  credentialCurrent(principal: Principal): boolean {
    if (!principal.client.verified) return true;
    const id = principal.client.id.slice(principal.client.id.lastIndexOf(':') + 1);
    const record = this.registry.byCredential(id);
    return record !== undefined && record.name === principal.client.name;
  }

  verify(principal: Principal): Admission {
    if (principal.client.verified) {
      const id = principal.client.id.slice(principal.client.id.lastIndexOf(':') + 1);
      const record = this.registry.byCredential(id);
      if (!record || record.name !== principal.client.name) {
        return { ok: false, code: 'unauthenticated', reason: `the credential of client "${principal.client.name}" was revoked` };
      }
      if (isExpired(record)) {
        return { ok: false, code: 'unauthenticated', reason: `the credential of client "${principal.client.name}" expired at ${record.expiresAt}; pair it again` };
      }
    }
    if (this.options.session) return this.options.session.admission();
    return ADMIT;
  }
}
