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

export const PAIRING_DEADLINE_MS = 120_000;
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
  /** Told the code as soon as the question is asked (the bridge prints it). */
  onCode?: (code: string) => void;
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

export class PairingService {
  private pending = new Set<string>();

  constructor(private readonly deps: PairingDeps) {}

  waiting(): number {
    return this.pending.size;
  }

  async pair(request: PairingRequest): Promise<PairingResult> {
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
    if (this.pending.has(client)) return { ok: false, code: 'pairing_refused', reason: `a pairing request for "${client}" is already waiting for an answer` };
    if (this.pending.size >= MAX_PENDING_PAIRINGS) {
      return { ok: false, code: 'pairing_refused', reason: `${this.pending.size} pairing requests are already waiting for an answer; try again later` };
    }
    this.pending.add(client);
    try {
      const code = pairingCode();
      const user = this.deps.user();
      const deadline = now() + (this.deps.deadlineMs ?? PAIRING_DEADLINE_MS);
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
      const answer = await this.deps.channel.ask(question, deadline, request.signal, () => request.onCode?.(code));
      const at = new Date(now()).toISOString();
      if (answer.kind !== 'approved' || !answer.scope) {
        const result: PairingResult =
          answer.kind === 'declined'
            ? { ok: false, code: 'pairing_declined', reason: `the person at this computer declined to pair "${client}"` }
            : answer.kind === 'unavailable'
              ? { ok: false, code: 'pairing_unavailable', reason: `pairing "${client}" needs a person to answer, and none can be asked: ${answer.reason}` }
              : {
                  ok: false,
                  code: 'pairing_expired',
                  reason: `nobody answered the pairing request for "${client}" within ${Math.round((this.deps.deadlineMs ?? PAIRING_DEADLINE_MS) / 1000)} s`,
                };
        this.deps.audit({
          type: 'approval.decided',
          at,
          client,
          reason: result.reason,
          approval: { required: true, decision: answer.kind === 'declined' ? 'denied' : 'timeout' },
          detail: { question: 'pairing', via: request.via, ...(user ? { user: user.id } : {}), ...('via' in answer && answer.via ? { answeredIn: answer.via } : {}) },
        });
        this.deps.logger.log('info', 'pairing.refused', { client, reason: result.reason });
        return result;
      }
      const scope: ClientScope =
        answer.scope.kind === 'listed' ? { kind: 'listed', servers: answer.scope.servers, tools: answer.scope.tools } : { kind: answer.scope.kind };
      const expiresAt = new Date(now() + answer.scope.expiryDays * 86_400_000);
      let token: string;
      try {
        token = this.deps.registry.add(client, { scope, expiresAt, via: request.via, ...(user ? { pairedBy: user.id } : {}) });
      } catch (error) {
        if (error instanceof GatehouseError) return { ok: false, code: 'pairing_refused', reason: error.message };
        throw error;
      }
      const record = this.deps.registry.list().find((r) => r.name === client)!;
      const answeredIn = answer.via ? { answeredIn: answer.via } : {};
      const detail = { via: request.via, scope: describeScope(scope), expiresAt: expiresAt.toISOString(), ...(user ? { pairedBy: user.id } : {}), ...answeredIn };
      this.deps.audit({ type: 'client.paired', at, client, detail });
      this.deps.logger.log('info', 'pairing.approved', { client, scope: describeScope(scope), expiresAt: expiresAt.toISOString() });
      return { ok: true, token, record, scope };
    } finally {
      this.pending.delete(client);
    }
  }
}
