/**
 * Clients: the IDEs and agents paired with Gatehouse (scope, expiry, last seen, revoke), which view
 * of the tools each gets and what its tool list costs in tokens in each view, the sessions open
 * now, and what to paste into each IDE to connect it.
 */
import { useState } from 'react';
import type { ClientToolCost } from '../../src/common/console-api.js';
import { useLive, useQuery } from '../api/client.js';
import { Badge, ConfirmButton, CopyButton, Empty, ErrorNote, Field, ScreenTitle, Section, Spinner, Tabs, useToast } from '../components/ui.js';
import { plural, relative, timestamp } from '../lib/format.js';
import { SNIPPETS, snippetFor } from '../lib/snippets.js';

function Snippets() {
  const [which, setWhich] = useState<string>(SNIPPETS[0]!.id);
  const [name, setName] = useState<string>('');
  const snippet = SNIPPETS.find((s) => s.id === which)!;
  const client = name.trim() || snippet.defaultClient;
  const text = snippetFor(snippet.id, client);
  return (
    <Section title="Connect an IDE or agent">
      <p>
        Each IDE launches Gatehouse's bridge (<code>gatehouse connect</code>) as its MCP server. The first time it connects, Gatehouse asks you to pair it and choose what it may do.
      </p>
      <Tabs label="IDE" selected={which} onSelect={setWhich} tabs={SNIPPETS.map((s) => ({ id: s.id, label: s.label }))}>
        <Field label="Client name" hint="How it appears in audit records and here.">
          {(p) => <input {...p} value={name} placeholder={snippet.defaultClient} onChange={(e) => setName(e.target.value)} autoComplete="off" spellCheck={false} />}
        </Field>
        <p>{snippet.where}</p>
        <pre className="code" aria-label={`${snippet.label} configuration`}>
          {text}
        </pre>
        <CopyButton text={text} label={`${snippet.label} snippet`} />
      </Tabs>
    </Section>
  );
}

const VIEW_LABELS = { aggregate: 'Every tool', search: 'Search (find_tools, call_tool)' } as const;

/** What a client's tool list costs in each view, the view it gets in bold. */
function Cost({ cost }: { cost: ClientToolCost | undefined }) {
  if (!cost) return <span className="muted">—</span>;
  const saved = cost.aggregate.tokens > 0 ? Math.round((1 - cost.search.tokens / cost.aggregate.tokens) * 100) : 0;
  const figure = (view: 'aggregate' | 'search', label: string) => {
    const text = `${label}: ${cost[view].tokens.toLocaleString('en-US')} tokens (${cost[view].tools} tools)`;
    return cost.view === view ? <strong>{text}</strong> : <span>{text}</span>;
  };
  return (
    <span className="small">
      {figure('aggregate', 'every tool')}
      <br />
      {figure('search', 'search')}
      {saved > 0 ? <span className="muted"> · {saved} % fewer</span> : null}
    </span>
  );
}

/** Chooses the client's view; written to the config file, it applies to the client's next connection. */
function ViewChoice({ name, view, onChanged }: { name: string; view: 'aggregate' | 'search'; onChanged: () => void }) {
  const { client } = useLive();
  const toast = useToast();
  const [busy, setBusy] = useState(false);
  return (
    <select
      aria-label={`View for ${name}`}
      value={view}
      disabled={busy}
      onChange={(e) => {
        const next = e.target.value as 'aggregate' | 'search';
        setBusy(true);
        client
          .call('clients.setView', { name, view: next })
          .then(() => toast('ok', `${name} gets ${next === 'search' ? 'the search view' : 'every tool'} from its next connection`))
          .catch((error: Error) => toast('bad', `Changing the view of ${name} failed: ${error.message}`))
          .finally(() => {
            setBusy(false);
            onChanged();
          });
      }}
    >
      {(['aggregate', 'search'] as const).map((v) => (
        <option key={v} value={v}>
          {VIEW_LABELS[v]}
        </option>
      ))}
    </select>
  );
}

export function Clients() {
  const { client, status } = useLive();
  const clients = useQuery((c) => c.call('clients.list'), [], { live: ['clients'] });
  // Counting tokens is work: only when the tools or a client's view change.
  const costs = useQuery((c) => c.call('tools.cost'), [], { live: ['tools'] });
  const costOf = (name: string | undefined) => costs.data?.clients.find((c) => c.name === name);
  const everyone = costOf(undefined);
  const changed = () => {
    clients.reload();
    costs.reload();
  };
  return (
    <>
      <ScreenTitle lead="The IDEs and agents you paired, and how to connect another.">Clients</ScreenTitle>
      <ErrorNote error={clients.error} onRetry={clients.reload} />
      <ErrorNote error={costs.error} onRetry={costs.reload} context="Tool list costs" />
      <Section title="Paired clients">
        <p>
          A client in the <strong>search view</strong> sees two tools, find_tools and call_tool, instead of every definition at once; what it finds and calls is
          governed and recorded exactly as in the full list. The cost is what its tool list takes of a model's context before anyone says a word
          {costs.data ? ` (tokens counted with ${costs.data.encoding})` : ''}.
          {everyone ? (
            <>
              {' '}
              With all of your tools: {everyone.aggregate.tokens.toLocaleString('en-US')} tokens for every tool, {everyone.search.tokens.toLocaleString('en-US')} in the search view.
            </>
          ) : null}
        </p>
        {!clients.data ? (
          <Spinner label="Loading clients" />
        ) : clients.data.length === 0 ? (
          <Empty>No client is paired yet. Connect one (below); Gatehouse asks you to pair it.</Empty>
        ) : (
          <div className="table-wrap">
            <table>
              <caption className="visually-hidden">Paired clients</caption>
              <thead>
                <tr>
                  <th scope="col">Client</th>
                  <th scope="col">May use</th>
                  <th scope="col">Paired</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Last seen</th>
                  <th scope="col">Tools view</th>
                  <th scope="col">Tool list cost</th>
                  <th scope="col">Now</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {clients.data.map((c) => (
                  <tr key={c.name}>
                    <th scope="row">
                      {c.name} {c.via ? <span className="muted small">({c.via === 'socket' ? 'bridge' : c.via})</span> : null}
                    </th>
                    <td>{c.scopeText}</td>
                    <td title={c.createdAt}>
                      {relative(c.createdAt)}
                      {c.pairedBy ? <div className="muted small">by {c.pairedBy}</div> : null}
                    </td>
                    <td>{c.expired ? <Badge tone="bad">expired {relative(c.expiresAt)}</Badge> : c.expiresAt ? <span title={timestamp(c.expiresAt)}>{relative(c.expiresAt)}</span> : 'never'}</td>
                    <td>{c.lastSeen ? <span title={timestamp(c.lastSeen)}>{relative(c.lastSeen)}</span> : <span className="muted">never</span>}</td>
                    <td>
                      <ViewChoice name={c.name} view={c.view} onChanged={changed} />
                      {c.pinned.length > 0 ? <div className="muted small">pinned: {c.pinned.join(', ')}</div> : null}
                    </td>
                    <td>
                      <Cost cost={costOf(c.name)} />
                    </td>
                    <td>{c.sessions > 0 ? <Badge tone="ok">{plural(c.sessions, 'session')}</Badge> : <span className="muted">—</span>}</td>
                    <td className="row-actions">
                      <ConfirmButton
                        label="Revoke"
                        ariaLabel={`Revoke ${c.name}`}
                        title={`Revoke ${c.name}?`}
                        question={<p>It loses access at once, open sessions included. To use it again, pair it again.</p>}
                        confirmLabel="Revoke the client"
                        busyLabel="Revoking…"
                        done={`${c.name} revoked`}
                        run={async () => {
                          await client.call('clients.revoke', { name: c.name });
                          clients.reload();
                        }}
                      />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Section>
      <Section title="Connected now">
        {!status || status.clients.length === 0 ? (
          <Empty>No session is open.</Empty>
        ) : (
          <div className="table-wrap">
            <table>
              <caption className="visually-hidden">Open sessions</caption>
              <thead>
                <tr>
                  <th scope="col">Client</th>
                  <th scope="col">Via</th>
                  <th scope="col">Verified</th>
                  <th scope="col">Protocol</th>
                  <th scope="col">View</th>
                  <th scope="col">Since</th>
                  <th scope="col">Calls</th>
                </tr>
              </thead>
              <tbody>
                {status.clients.map((s) => (
                  <tr key={s.id}>
                    <th scope="row">{s.name}</th>
                    <td>{s.transport}</td>
                    <td>{s.verified ? <Badge tone="ok">yes</Badge> : <Badge tone="warn">no</Badge>}</td>
                    <td>{s.protocolVersion ?? '—'}</td>
                    <td>{s.view === 'search' ? 'search' : 'every tool'}</td>
                    <td>{relative(s.connectedAt)}</td>
                    <td>{s.calls}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Section>
      <Snippets />
    </>
  );
}
