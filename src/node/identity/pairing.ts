/**
 * Pairing: a client without a credential asks; the person answers in the human channel (never
 * through MCP, the control socket or a plain command), naming what the client may do and for how
 * long; the client gets its own credential, of which Gatehouse keeps only a hash.
 *
 * Anyone who can reach the socket or the loopback HTTP port can *ask*. So asking is bounded (one
 * waiting request per client name, a few in all), each request carries a short code the client
 * also shows, and only the person's answer on the page issues anything.
 */
import { randomInt } from 'node:crypto';
import { GatehouseError } from '../../common/errors.js';
import { isClientName } from '../../common/names.js';
import type { ClientScope } from '../../core/identity/client-scope.js';
import { describeScope } from '../../core/identity/client-scope.js';
import type { HumanChannel, HumanQuestion } from '../../core/human/channel.js';
import type { AuditRecord, Logger } from '../../core/ports.js';
import type { Principal } from '../../core/principal.js';
import type { ClientRecord, ClientRegistry } from '../client-registry.js';

/** How long a pairing question waits for the person: clients no longer wait for it (bridges are served a pending session), so people get time. */
export const PAIRING_DEADLINE_MS = 300_000;
export const MAX_PENDING_PAIRINGS = 4;
export const EXPIRY_CHOICES_DAYS = [90, 30, 7, 1];

export interface PairingRequest {
  client: string;
  /** How it connects: a bridge on the socket, an HTTP client given a token, an MCP OAuth client. */
  via: 'socket' | 'http' | 'oauth';
  /** What the client says about itself (process, redirect address): shown as self-reported. */
  about?: string;
  /** Aborted when the asker goes away. */
  signal?: AbortSignal;
  /** Told the code (and the deadline) once the question has reached the person (the bridge prints the code). */
  onCode?: (code: string, deadline: number) => void;
}

export type PairingResult =
  | { ok: true; token: string; record: ClientRecord; scope: ClientScope }
  | { ok: false; code: 'pairing_declined' | 'pairing_expired' | 'pairing_unavailable' | 'pairing_refused'; reason: string };

export interface PairingDeps {
  registry: ClientRegistry;
  channel: HumanChannel;
  logger: Logger;
  /** Records `client.paired`, and the person's refusals as `approval.decided`, in the audit log. */
  audit(event: AuditRecord): void;
  /** The user the person is answering as (shown on the page, kept with the record). */
  user(): Principal['user'] | undefined;
  /** The servers and their tools and prompts the person may pick from: only what the user may see, for a client of this name. */
  servers(client: string, via: PairingRequest['via']): { name: string; tools: string[] }[];
  deadlineMs?: number;
  now?: () => number;
}

const CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

export function pairingCode(): string {
  let code = '';
  for (let i = 0; i < 6; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
  return `${code.slice(0, 3)}-${code.slice(3)}`;
}

/** The person approved: what they chose, not yet a credential (`issue` makes one). */
export interface PairingApproval {
  ok: true;
  client: string;
  via: PairingRequest['via'];
  scope: ClientScope;
  expiresAt: Date;
  user: Principal['user'] | undefined;
  /** Where the person answered (`desktop app`, `terminal`, `question page`), for the audit record. */
  answeredIn?: string;
}
export type PairingFailure = Extract<PairingResult, { ok: false }>;

export class PairingService {
  private pending = new Set<string>();
  /** Names whose approval waits to be picked up by the bridge that asked (bridge-pairing.ts). */
  private held = new Set<string>();

  constructor(private readonly deps: PairingDeps) {}

  waiting(): number {
    return this.pending.size;
  }

  /** How long a question waits for the person. */
  get deadlineMs(): number {
    return this.deps.deadlineMs ?? PAIRING_DEADLINE_MS;
  }

  /** Keeps other requests for `client` out until the returned function is called. */
  hold(client: string): () => void {
    this.held.add(client);
    return () => this.held.delete(client);
  }

  /** Asks the person, and issues the credential at once when they approve. */
  async pair(request: PairingRequest): Promise<PairingResult> {
    const answer = await this.ask(request);
    if (!answer.ok) return answer;
    return this.issue(answer);
  }

  /** Asks the person whether to pair `request.client`, and with what scope. Issues nothing. */
  async ask(request: PairingRequest): Promise<PairingApproval | PairingFailure> {
    const { client } = request;
    const now = this.deps.now ?? Date.now;
    if (!isClientName(client)) return { ok: false, code: 'pairing_refused', reason: `"${client}" is not a valid client name` };
    this.deps.registry.reload();
    if (this.deps.registry.has(client)) {
      return {
        ok: false,
        code: 'pairing_refused',
        reason: `a client named "${client}" is already paired; revoke it first (gatehouse clients revoke "${client}") to pair it again`,
      };
    }
    if (this.pending.has(client) || this.held.has(client)) {
      return { ok: false, code: 'pairing_refused', reason: `a pairing request for "${client}" is already waiting for an answer` };
    }
    if (this.pending.size >= MAX_PENDING_PAIRINGS) {
      return { ok: false, code: 'pairing_refused', reason: `${this.pending.size} pairing requests are already waiting for an answer; try again later` };
    }
    this.pending.add(client);
    try {
      const code = pairingCode();
      const user = this.deps.user();
      const deadline = now() + this.deadlineMs;
      const question: HumanQuestion = {
        kind: 'pairing',
        title: `Pair the client "${client}"?`,
        facts: [
          { label: 'Client', value: client },
          {
            label: 'Connects through',
            value:
              request.via === 'socket'
                ? 'gatehouse connect (the local socket)'
                : request.via === 'oauth'
                  ? 'HTTP, signing in with OAuth'
                  : 'HTTP, with a token',
          },
          ...(request.about ? [{ label: 'It says about itself (not verified)', value: request.about.slice(0, 300) }] : []),
          { label: 'Acting for', value: user ? `${user.displayName} (${user.source === 'oidc' ? 'signed in' : 'OS user'})` : 'nobody is signed in' },
        ],
        code,
        scope: { servers: this.deps.servers(client, request.via), expiryDays: EXPIRY_CHOICES_DAYS },
      };
      this.deps.logger.log('info', 'pairing.requested', { client, via: request.via });
      const answer = await this.deps.channel.ask(question, deadline, request.signal, () => request.onCode?.(code, deadline));
      const at = new Date(now()).toISOString();
      if (answer.kind !== 'approved' || !answer.scope) {
        const result: PairingFailure =
          answer.kind === 'declined'
            ? { ok: false, code: 'pairing_declined', reason: `the person at this computer declined to pair "${client}"` }
            : answer.kind === 'unavailable'
              ? { ok: false, code: 'pairing_unavailable', reason: `pairing "${client}" needs a person to answer, and none can be asked: ${answer.reason}` }
              : {
                  ok: false,
                  code: 'pairing_expired',
                  reason: `nobody answered the pairing request for "${client}" within ${Math.round(this.deadlineMs / 1000)} s`,
                };
        this.deps.audit({
          type: 'approval.decided',
          at,
          client,
          reason: result.reason,
          approval: { required: true, decision: answer.kind === 'declined' ? 'denied' : 'timeout' },
          detail: {
            question: 'pairing',
            via: request.via,
            ...(user ? { user: user.id } : {}),
            ...('via' in answer && answer.via ? { answeredIn: answer.via } : {}),
          },
        });
        this.deps.logger.log('info', 'pairing.refused', { client, reason: result.reason });
        return result;
      }
      const scope: ClientScope =
        answer.scope.kind === 'listed' ? { kind: 'listed', servers: answer.scope.servers, tools: answer.scope.tools } : { kind: answer.scope.kind };
      const expiresAt = new Date(now() + answer.scope.expiryDays * 86_400_000);
      this.deps.logger.log('info', 'pairing.approved', { client, scope: describeScope(scope), expiresAt: expiresAt.toISOString() });
      return { ok: true, client, via: request.via, scope, expiresAt, user, ...(answer.via ? { answeredIn: answer.via } : {}) };
    } finally {
      this.pending.delete(client);
    }
  }

  /** Makes the credential the person approved: registered (as a hash) and audited; the token is returned once. */
  issue(approval: PairingApproval): PairingResult {
    const { client, scope, expiresAt, user, via, answeredIn } = approval;
    let token: string;
    try {
      token = this.deps.registry.add(client, { scope, expiresAt, via, ...(user ? { pairedBy: user.id } : {}) });
    } catch (error) {
      if (error instanceof GatehouseError) return { ok: false, code: 'pairing_refused', reason: error.message };
      throw error;
    }
    const record = this.deps.registry.list().find((r) => r.name === client)!;
    const at = new Date((this.deps.now ?? Date.now)()).toISOString();
    const detail = {
      via,
      scope: describeScope(scope),
      expiresAt: expiresAt.toISOString(),
      ...(user ? { pairedBy: user.id } : {}),
      ...(answeredIn ? { answeredIn } : {}),
    };
    this.deps.audit({ type: 'client.paired', at, client, detail });
    return { ok: true, token, record, scope };
  }
}
