/**
 * Clients: the IDEs and agents paired with Gatehouse (scope, expiry, last seen, revoke), which view
 * of the tools each gets and what its tool list costs in tokens in each view, the sessions open
 * now, and a Set up button per supported IDE (or what to paste by hand).
 */
import { useState } from 'react';
import type { ClientToolCost } from '../../src/common/console-api.js';
import { useLive, useQuery } from '../api/client.js';
import type { ClientSetupResult } from '../../src/common/console-api.js';
import { ActionButton, Badge, ConfirmButton, CopyButton, Empty, ErrorNote, Field, ScreenTitle, Section, Spinner, Tabs, useToast } from '../components/ui.js';
import { plural, relative, timestamp } from '../lib/format.js';
import { SNIPPETS, snippetFor } from '../lib/snippets.js';

/** The command before `connect` in an entry: how Gatehouse is run here, by absolute path. */
function selfOf(command: readonly string[]): string[] {
  const at = command.lastIndexOf('connect');
  return at > 0 ? command.slice(0, at) : ['gatehouse'];
}

/** One button per supported client: writes Gatehouse's entry into its own config, then checks it as the client will run it. */
function SetUp() {
  const { client } = useLive();
  const apps = useQuery((c) => c.call('clients.apps'), []);
  const [results, setResults] = useState<Record<string, ClientSetupResult>>({});
  return (
    <Section title="Set up an IDE or agent">
      <p>
        Gatehouse writes its entry into the IDE's own configuration file (keeping everything else in it, with a backup), naming the bridge by its full path so
        it works whatever the IDE's PATH, then starts it the way the IDE will to check it. The first time the IDE connects, Gatehouse asks you to pair it. To
        undo: <code>gatehouse clients setup NAME --undo</code>.
      </p>
      <ErrorNote error={apps.error} onRetry={apps.reload} />
      {!apps.data ? (
        <Spinner label="Looking for installed IDEs" />
      ) : (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">IDEs and agents Gatehouse can set up</caption>
            <thead>
              <tr>
                <th scope="col">IDE or agent</th>
                <th scope="col">Installed here</th>
                <th scope="col">Uses Gatehouse</th>
                <th scope="col">Configuration file</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {apps.data.map((app) => {
                const result = results[app.id];
                return (
                  <tr key={app.id}>
                    <th scope="row">{app.title}</th>
                    <td>{app.installed ? <Badge tone="ok">yes</Badge> : <span className="muted">not found</span>}</td>
                    <td>{app.configured ? <Badge tone="ok">yes</Badge> : <span className="muted">no</span>}</td>
                    <td>
                      <code className="small">{app.file}</code>
                      {app.problem ? <div className="small">{app.problem}</div> : null}
                      {result ? (
                        <div className="small" role="status">
                          {result.changed ? 'Written.' : 'Already set up.'}{' '}
                          {result.check
                            ? result.check.ok
                              ? `Checked: it connected in ${result.check.ms} ms${result.check.pairing ? '; pair it when Gatehouse asks' : ''}.`
                              : `The check failed: ${result.check.reason}`
                            : null}
                        </div>
                      ) : null}
                    </td>
                    <td className="row-actions">
                      <ActionButton
                        label={app.configured ? 'Set up again' : 'Set up'}
                        busyLabel="Setting up…"
                        done={() => `${app.title} set up`}
                        run={async () => {
                          const done = await client.call('clients.setup', { client: app.id, dryRun: false });
                          setResults((r) => ({ ...r, [app.id]: done }));
                          apps.reload();
                          return done;
                        }}
                      />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <Snippets self={apps.data?.[0] ? selfOf(apps.data[0].command) : ['gatehouse']} />
    </Section>
  );
}

function Snippets({ self }: { self: string[] }) {
  const [which, setWhich] = useState<string>(SNIPPETS[0]!.id);
  const [name, setName] = useState<string>('');
  const snippet = SNIPPETS.find((s) => s.id === which)!;
  const client = name.trim() || snippet.defaultClient;
  const text = snippetFor(snippet.id, client, self);
  return (
    <Section title="Or copy the entry by hand" headingLevel={3}>
      <Tabs label="IDE" selected={which} onSelect={setWhich} tabs={SNIPPETS.map((s) => ({ id: s.id, label: s.label }))}>
        <Field label="Client name" hint="How it appears in audit records and here.">
          {(p) => (
            <input {...p} value={name} placeholder={snippet.defaultClient} onChange={(e) => setName(e.target.value)} autoComplete="off" spellCheck={false} />
          )}
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
              With all of your tools: {everyone.aggregate.tokens.toLocaleString('en-US')} tokens for every tool,{' '}
              {everyone.search.tokens.toLocaleString('en-US')} in the search view.
            </>
          ) : null}
        </p>
        {!clients.data ? (
          <Spinner label="Loading clients" />
        ) : clients.data.length === 0 ? (
          <Empty>No client is paired yet. Set one up (below); Gatehouse asks you to pair it when it first connects.</Empty>
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
                    <td>
                      {c.expired ? (
                        <Badge tone="bad">expired {relative(c.expiresAt)}</Badge>
                      ) : c.expiresAt ? (
                        <span title={timestamp(c.expiresAt)}>{relative(c.expiresAt)}</span>
                      ) : (
                        'never'
                      )}
                    </td>
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
      <SetUp />
    </>
  );
}
