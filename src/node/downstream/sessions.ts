/**
 * Live downstream sessions: who is connected, over what, and which SDK server instances speak
 * for them, so that list changes reach every session whose view changed.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from '@modelcontextprotocol/server';
import type { ClientStatus } from '../../common/status.js';
import type { Gateway, Scope } from '../../core/gateway.js';
import type { ListKind, LogMessage } from '../../core/ports.js';
import type { Principal } from '../../core/principal.js';
import type { ToolSearch } from '../../core/search/view.js';
import type { ToolView } from '../../common/config.js';
import { ListTexts } from './wire-json.js';
import {
  admitsLevel,
  createDownstreamServer,
  loggerName,
  type DownstreamServer,
  type DownstreamSession,
  type SearchViewSession,
  type SessionBinding,
} from './mcp-server.js';

/**
 * Which view a client gets: the one it asked for (`gatehouse connect --view`, `/mcp?view=`), else its
 * setting in the config (`clients.<name>.view`), else the aggregate. Undefined means the aggregate.
 */
export type ViewResolver = (client: string, requested: ToolView | undefined) => SearchViewSession | undefined;

export interface LiveSession extends DownstreamSession {
  id: string;
  transport: 'socket' | 'http';
  connectedAt: Date;
  calls: number;
  protocolVersion?: string;
  /** When the session last made a call (tools, resources, prompts), if it has. */
  lastCallAt?: Date;
  servers: Set<Server>;
  /** Ends the connection that carries the session, saying why where it can (the listener that opened it sets this): a socket closed, an HTTP session deleted. */
  disconnect?: (reason: string) => void;
}

export class SessionHost {
  private sessions = new Map<string, LiveSession>();
  private readonly unsubscribe: () => void;
  /** The kept text of the lists this daemon's sessions write. */
  private readonly lists = new ListTexts();

  constructor(
    private readonly gateway: Gateway,
    private readonly options: {
      version: string;
      search?: ToolSearch;
      views?: ViewResolver;
      /** A session closed (its connection went away): what is counted per session ends with it. */
      onClose?: (session: LiveSession) => void;
      /** A session opened or closed: what "connected now" shows changed (the console is told at once, not at its next tick). */
      onChange?: () => void;
    },
  ) {
    const unsubscribeChanges = gateway.onChange((kind, scope) => this.broadcast(kind, scope));
    const unsubscribeLogs = gateway.onLog((server, message) => this.broadcastLog(server, message));
    this.unsubscribe = () => {
      unsubscribeChanges();
      unsubscribeLogs();
    };
  }

  /** A new session; `requestedView` is the view the client asked for, if any (a single-server scope has no other view). */
  open(principal: Principal, scope: Scope, transport: 'socket' | 'http', era: 'legacy' | 'modern', requestedView?: ToolView): LiveSession {
    const view = scope.server === undefined && this.options.search ? this.options.views?.(principal.client.name, requestedView) : undefined;
    const session: LiveSession = {
      id: randomUUID(),
      principal,
      scope,
      era,
      transport,
      connectedAt: new Date(),
      calls: 0,
      servers: new Set(),
      subscriptions: new Set(),
      ...(view ? { view } : {}),
    };
    session.onCall = () => {
      session.calls++;
      session.lastCallAt = new Date();
    };
    this.sessions.set(session.id, session);
    this.options.onChange?.();
    return session;
  }

  /** A fresh SDK server answering for this session; its instructions say why, when the caller can do nothing at all. */
  serverFor(session: LiveSession): DownstreamServer {
    const server = this.build({ session, running: 0 });
    session.servers.add(server);
    server.onclose = () => session.servers.delete(server);
    return server;
  }

  /**
   * An SDK server that answers, request after request, for whichever session `binding` holds (the
   * 2026-07-28 era's kept servers, http-listener.ts). It belongs to no session: the listener adds it to
   * each request's session while it serves that request. Built with the instructions of the session
   * bound now; `instructionsFor` says which a server kept for another request of the same client has.
   */
  keptServer(binding: SessionBinding): DownstreamServer {
    return this.build(binding);
  }

  /** The instructions a server built now for this principal carries (part of what a kept server is kept by). */
  instructionsFor(principal: Principal): string | undefined {
    const notice = this.gateway.notice(principal);
    return notice === undefined ? undefined : `Gatehouse shows you no tools yet: ${notice}.`;
  }

  private build(binding: SessionBinding): DownstreamServer {
    const instructions = this.instructionsFor(binding.session.principal);
    const search = this.options.search ? { search: this.options.search } : {};
    return createDownstreamServer(this.gateway, binding, {
      version: this.options.version,
      lists: this.lists,
      ...search,
      ...(instructions === undefined ? {} : { instructions }),
    });
  }

  /**
   * The person paired the client of a pending session: from now on it speaks as `principal`, and
   * it is told that every list changed (and, on the 2025 era, a log line says so).
   */
  paired(session: LiveSession, principal: LiveSession['principal']): void {
    session.principal = principal;
    delete session.pairing;
    for (const server of session.servers) {
      void Promise.resolve(server.sendToolListChanged()).catch(() => undefined);
      void Promise.resolve(server.sendPromptListChanged()).catch(() => undefined);
      void Promise.resolve(server.sendResourceListChanged()).catch(() => undefined);
      if (session.era === 'legacy') {
        void server
          .sendLoggingMessage({ level: 'notice', logger: 'gatehouse', data: `Gatehouse: "${principal.client.name}" is paired; its tools are available now.` })
          .catch(() => undefined);
      }
    }
  }

  /** The person declined, or nobody answered: every later request of the session gets this reason. */
  pairingRefused(session: LiveSession, code: string, reason: string): void {
    session.pairing = { state: 'refused', code, reason };
    if (session.era !== 'legacy') return;
    for (const server of session.servers)
      void server.sendLoggingMessage({ level: 'error', logger: 'gatehouse', data: `Gatehouse: ${reason}` }).catch(() => undefined);
  }

  close(session: LiveSession): void {
    const known = this.sessions.delete(session.id);
    if (known) this.options.onClose?.(session);
    for (const server of session.servers) void server.close().catch(() => undefined);
    session.servers.clear();
    if (known) this.options.onChange?.();
  }

  /**
   * Ends every session `which` picks, connection included (a revoked client's), and says how many.
   * The identity stage would refuse their next call anyway; ending them now means nothing shows a
   * revoked client as connected, and its open streams stop at once.
   */
  end(which: (session: LiveSession) => boolean, reason: (session: LiveSession) => string): number {
    let ended = 0;
    for (const session of [...this.sessions.values()]) {
      if (!which(session)) continue;
      ended++;
      try {
        session.disconnect?.(reason(session));
      } finally {
        this.close(session);
      }
    }
    return ended;
  }

  get(id: string): LiveSession | undefined {
    return this.sessions.get(id);
  }

  statuses(): ClientStatus[] {
    return [...this.sessions.values()].map((s) => ({
      id: s.id,
      name: s.principal.client.name,
      transport: s.transport,
      verified: s.principal.client.verified,
      ...(s.pairing ? { pairing: s.pairing.state } : {}),
      ...(protocolVersionOf(s) ? { protocolVersion: protocolVersionOf(s) } : {}),
      ...(s.view ? { view: s.view.kind } : {}),
      connectedAt: s.connectedAt.toISOString(),
      ...(s.lastCallAt ? { lastCallAt: s.lastCallAt.toISOString() } : {}),
      calls: s.calls,
    }));
  }

  /** Resource update from a server: tell the sessions that subscribed to that URI. */
  resourceUpdated(uris: string[]): void {
    for (const session of this.sessions.values()) {
      for (const uri of uris) {
        if (!session.subscriptions?.has(uri)) continue;
        for (const server of session.servers) void server.sendResourceUpdated({ uri }).catch(() => undefined);
      }
    }
  }

  /** A log message no single call owns: to every 2025-era session that asked for logs and sees that server. */
  private broadcastLog(server: string, message: LogMessage): void {
    for (const session of this.sessions.values()) {
      if (session.era !== 'legacy' || !admitsLevel(session.logLevel, message.level)) continue;
      if (session.scope.server !== undefined && session.scope.server !== server) continue;
      const logger = loggerName(session.scope, server, message.logger);
      for (const instance of session.servers) {
        void instance.sendLoggingMessage({ level: message.level, ...(logger !== undefined ? { logger } : {}), data: message.data }).catch(() => undefined);
      }
    }
  }

  private broadcast(kind: ListKind, scope: Scope): void {
    for (const session of this.sessions.values()) {
      if (session.scope.server !== scope.server) continue;
      for (const server of session.servers) {
        const send = kind === 'tools' ? server.sendToolListChanged() : kind === 'prompts' ? server.sendPromptListChanged() : server.sendResourceListChanged();
        void Promise.resolve(send).catch(() => undefined);
      }
    }
  }

  dispose(): void {
    this.unsubscribe();
    for (const session of [...this.sessions.values()]) this.close(session);
  }
}

/** The protocol version a session negotiated (2025 era) or speaks (2026-07-28), once known. */
function protocolVersionOf(session: LiveSession): string | undefined {
  for (const server of session.servers) {
    const version = server.getNegotiatedProtocolVersion();
    if (version) return version;
  }
  return session.protocolVersion;
}
