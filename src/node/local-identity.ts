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
import type { BridgePairings } from './identity/bridge-pairing.js';
import type { PairingFailure } from './identity/pairing.js';

/** What the identity needs of a sign-in session (`UserSession`). */
export interface SessionPort {
  currentUser(): Principal['user'] | undefined;
  admission(): Admission;
}

export interface LocalIdentityOptions {
  /**
   * The user's sign-in, when an identity provider is configured (`UserSession`), or a stand-in
   * behind the same port (`StaticIdentity`, tests only). Absent: the OS user.
   */
  session?: SessionPort;
  /**
   * Asks the person to pair a bridge that comes without a credential. Required: there is no way to
   * build an identity that lets a hello without a credential in unverified (issue 12, finding 6).
   */
  bridges: BridgePairings;
}

/** Stands for the user while nobody is signed in: it holds no groups, and the identity stage refuses its calls. */
const NOBODY: Principal['user'] = Object.freeze({
  id: 'oidc:signed-out',
  source: 'oidc',
  displayName: '(not signed in)',
  groups: [],
  roles: [],
}) as Principal['user'];

/** What a pending connection is told when the person has answered. */
export type PairedOutcome = { ok: true; principal: Principal; credential: string } | { ok: false; code: PairingFailure['code']; reason: string };

export type HelloResult =
  | { ok: true; principal: Principal; credential?: string }
  | { ok: false; reason: string }
  /** The person is being asked: serve `principal` (it sees nothing) meanwhile, and hear the answer through `attach`. */
  | {
      ok: 'pending';
      principal: Principal;
      code: string;
      deadline: number;
      attach(waiter: { alive(): boolean; deliver(outcome: PairedOutcome): void }): () => void;
    };

export class LocalIdentity implements IdentityPort {
  readonly user: Principal['user'];

  constructor(
    private readonly registry: ClientRegistry,
    private readonly options: LocalIdentityOptions,
  ) {
    // Also at run time: a caller that bypasses the types must not get a fail-open identity.
    if (typeof options?.bridges?.start !== 'function') {
      throw new TypeError("LocalIdentity needs the bridges' pairing: a client without a credential must be paired by the person");
    }
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
  async fromHello(hello: Hello): Promise<HelloResult> {
    this.registry.reload();
    if (hello.token !== undefined) {
      const record = this.registry.verify(hello.token);
      if (!record) return { ok: false, reason: 'wrong or revoked client credential' };
      if (record.name !== hello.client) return { ok: false, reason: `the credential belongs to another client than "${hello.client}"` };
      if (isExpired(record)) {
        return {
          ok: false,
          reason:
            `the credential of client "${record.name}" expired at ${record.expiresAt}; ` +
            `revoke it (gatehouse clients revoke "${record.name}") and connect again to pair it again`,
        };
      }
      this.registry.touch(record.name);
      return { ok: true, principal: this.principal(record, 'socket') };
    }
    if (this.registry.has(hello.client)) {
      return {
        ok: false,
        reason:
          `client "${hello.client}" has a credential, but this bridge did not present it (the bridge that was paired keeps it in its key store). ` +
          `To pair it again: gatehouse clients revoke "${hello.client}", then connect again. A credential can also be given with --token-file or GATEHOUSE_CLIENT_TOKEN`,
      };
    }
    const start = await this.options.bridges.start({
      client: hello.client,
      ...(hello.claim !== undefined ? { claim: hello.claim } : {}),
      ...(hello.about !== undefined ? { about: hello.about } : {}),
    });
    if (start.kind === 'refused') return { ok: false, reason: start.reason };
    if (start.kind === 'issued') {
      this.registry.touch(start.record.name);
      return { ok: true, principal: this.principal(start.record, 'socket'), credential: start.token };
    }
    return {
      ok: 'pending',
      principal: this.pending(hello.client),
      code: start.code,
      deadline: start.deadline,
      attach: (waiter) =>
        start.attach({
          alive: () => waiter.alive(),
          deliver: (outcome) => {
            if (!outcome.ok) return waiter.deliver(outcome);
            // The client is here now: a bridge that pairs and calls at once must not show "last seen: never".
            this.registry.touch(outcome.record.name);
            waiter.deliver({ ok: true, principal: this.principal(outcome.record, 'socket'), credential: outcome.token });
          },
        }),
    };
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
      client: {
        id: `client:${record.name}:${credentialId(record)}`,
        name: record.name,
        verified: true,
        transport,
        ...(record.scope ? { scope: record.scope } : {}),
      },
    };
  }

  /** A client waiting to be paired: it sees nothing (an empty scope), whatever the policy says. */
  private pending(client: string): Principal {
    const user = (): Principal['user'] => this.currentUser;
    return {
      get user() {
        return user();
      },
      client: { id: `pending:${client}`, name: client, verified: false, transport: 'socket', scope: { kind: 'listed', servers: [], tools: [] } },
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
    if (principal.client.id.startsWith('pending:')) {
      return { ok: false, code: 'unauthenticated', reason: `client "${principal.client.name}" is not paired yet: answer the pairing request first` };
    }
    if (principal.client.verified) {
      const id = principal.client.id.slice(principal.client.id.lastIndexOf(':') + 1);
      const record = this.registry.byCredential(id);
      if (!record || record.name !== principal.client.name) {
        return { ok: false, code: 'unauthenticated', reason: `the credential of client "${principal.client.name}" was revoked` };
      }
      if (isExpired(record)) {
        return {
          ok: false,
          code: 'unauthenticated',
          reason: `the credential of client "${principal.client.name}" expired at ${record.expiresAt}; pair it again`,
        };
      }
      // Last seen is when the client was last used, not only when it connected (a session can last all day).
      this.registry.touch(record.name);
    }
    if (this.options.session) return this.options.session.admission();
    return ADMIT;
  }
}
