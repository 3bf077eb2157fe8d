/**
 * The typed client of the control contract and the React glue around it: one transport for the
 * page, the daemon's status kept live from its events, and hooks for queries and actions.
 */
import { createContext, useCallback, useContext, useEffect, useRef, useState, type ReactNode } from 'react';
import type { ControlParams } from '../../src/common/control-api.js';
import { CHANGE_TOPICS, type ChangeTopic, type ConsoleEvent, type ConsoleMethod, type ConsoleResults } from '../../src/common/console-api.js';
import type { DaemonStatus } from '../../src/common/status.js';
import { CallError, type ConnectionState, type Transport } from './transport.js';

export class GatehouseClient {
  constructor(readonly transport: Transport) {}

  call<M extends ConsoleMethod>(method: M, params?: ControlParams<M>): Promise<ConsoleResults[M]> {
    return this.transport.call(method, params ?? {}) as Promise<ConsoleResults[M]>;
  }
}

interface Live {
  client: GatehouseClient;
  status: DaemonStatus | undefined;
  connection: ConnectionState;
  connectionReason: string | undefined;
  /** Per topic, a count that bumps when the daemon says that topic changed; screens refetch on the topics they read. */
  revisions: Readonly<Record<ChangeTopic, number>>;
  subscribe(listener: (event: ConsoleEvent) => void): () => void;
}

const LiveContext = createContext<Live | undefined>(undefined);

export function LiveProvider({ transport, children }: { transport: Transport; children: ReactNode }) {
  const [client] = useState(() => new GatehouseClient(transport));
  const [status, setStatus] = useState<DaemonStatus>();
  const [connection, setConnection] = useState<ConnectionState>(transport.state);
  const [connectionReason, setReason] = useState<string>();
  const [revisions, setRevisions] = useState<Record<ChangeTopic, number>>(
    () => Object.fromEntries(CHANGE_TOPICS.map((t) => [t, 0])) as Record<ChangeTopic, number>,
  );
  const last = useRef('');
  const bump = useCallback((topics: readonly ChangeTopic[]) => {
    setRevisions((r) => {
      const next = { ...r };
      for (const topic of topics) if (topic in next) next[topic]++;
      return next;
    });
  }, []);

  useEffect(() => {
    let alive = true;
    const refresh = () =>
      client
        .call('status')
        .then((s) => alive && setStatus(s))
        .catch(() => undefined);
    const unsubscribe = transport.subscribe((event) => {
      if (event.type === 'status') {
        // A status identical to the last one changes nothing on screen.
        const key = JSON.stringify(event.status);
        if (key === last.current) return;
        last.current = key;
        setStatus(event.status);
      } else if (event.type === 'changed') {
        bump(event.topics);
      } else if (event.type === 'connection') {
        setConnection(event.state === 'open' ? 'open' : transport.state);
        setReason(event.reason);
        // Back after a gap: whatever changed meanwhile was not announced, so everything is read again.
        if (event.state === 'open') {
          void refresh();
          bump(CHANGE_TOPICS);
        }
      }
    });
    void refresh();
    return () => {
      alive = false;
      unsubscribe();
    };
  }, [client, transport, bump]);

  const subscribe = useCallback((listener: (event: ConsoleEvent) => void) => transport.subscribe(listener), [transport]);
  return <LiveContext.Provider value={{ client, status, connection, connectionReason, revisions, subscribe }}>{children}</LiveContext.Provider>;
}

export function useLive(): Live {
  const live = useContext(LiveContext);
  if (!live) throw new Error('useLive outside LiveProvider');
  return live;
}

export interface Query<T> {
  data: T | undefined;
  error: CallError | undefined;
  loading: boolean;
  reload: () => void;
}

/** The sum of the revisions of `topics`: it changes whenever one of them changed. Pure. */
export function topicRevision(revisions: Readonly<Record<ChangeTopic, number>>, topics: readonly ChangeTopic[] | boolean | undefined): number {
  if (!topics) return 0;
  const which = topics === true ? CHANGE_TOPICS : topics;
  return which.reduce((sum, topic) => sum + (revisions[topic] ?? 0), 0);
}

/**
 * Runs `load` now, again when `deps` change, and (with `live`) again whenever the daemon says one
 * of those topics changed (`true`: any). The previous data stays on screen while a reload runs.
 */
export function useQuery<T>(
  load: (client: GatehouseClient) => Promise<T>,
  deps: unknown[],
  options: { live?: boolean | readonly ChangeTopic[] } = {},
): Query<T> {
  const { client, revisions } = useLive();
  const [data, setData] = useState<T>();
  const [error, setError] = useState<CallError>();
  const [loading, setLoading] = useState(true);
  const [nonce, setNonce] = useState(0);
  const liveKey = topicRevision(revisions, options.live);
  useEffect(() => {
    let current = true;
    setLoading(true);
    load(client)
      .then((value) => {
        if (!current) return;
        setData(value);
        setError(undefined);
      })
      .catch((e: unknown) => current && setError(toCallError(e)))
      .finally(() => current && setLoading(false));
    return () => {
      current = false;
    };
  }, [client, nonce, liveKey, ...deps]);
  const reload = useCallback(() => setNonce((n) => n + 1), []);
  return { data, error, loading, reload };
}

export function toCallError(error: unknown): CallError {
  if (error instanceof CallError) return error;
  return new CallError('failed', error instanceof Error ? error.message : String(error));
}

/** What a person does next, for the errors whose message alone does not say. */
export function adviceFor(error: CallError): string | undefined {
  switch (error.code) {
    case 'disconnected':
      return 'Wait for the console to reconnect (the banner at the top says when), then try again.';
    case 'signed_out':
      return 'Open a new login link: run `gatehouse console` in a terminal and open the link the daemon prints.';
    case 'invalid_params':
    case 'invalid':
      return 'Correct the value named above and try again.';
    case 'keychain_unavailable':
      return 'Unlock your keychain (or start a Secret Service), then try again.';
    case 'unknown_server':
    case 'unknown_client':
    case 'unknown_secret':
      return 'It may have been removed meanwhile: the list has been refreshed.';
    case 'server_unavailable':
      return 'Start the server (or wait until it is ready), then look again.';
    case 'no_identity_provider':
      return 'Ask your administrator for the identity provider settings (identity.json, see docs/identity.md).';
    default:
      return undefined;
  }
}
