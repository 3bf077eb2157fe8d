/**
 * Servers: every server with its state and restarts; for one server its details, start/stop/
 * restart, its sign-in (a remote server that needs one), its tools, its live log and its
 * configuration (add, edit and remove, checked with the config file's schema before anything is sent).
 */
import { useEffect, useRef, useState, type FormEvent, type Ref } from 'react';
import type { ServerEntry } from '../../src/common/console-api.js';
import { describeConfinement } from '../../src/common/sandbox.js';
import { useLive, useQuery, toCallError } from '../api/client.js';
import type { CallError } from '../api/transport.js';
import {
  ActionButton,
  Badge,
  ConfirmButton,
  Empty,
  ErrorNote,
  Field,
  KeyValues,
  Notice,
  ScreenTitle,
  Section,
  Spinner,
  StateBadge,
  Tabs,
  useToast,
} from '../components/ui.js';
import { plural, relative, timestamp } from '../lib/format.js';
import { href } from '../lib/routes.js';
import { EMPTY_FORM, formFromConfig, validateForm, type FormErrors, type ServerForm } from '../lib/server-form.js';

/** The form's field names as its labels say them. */
const FIELD_LABELS: Record<keyof ServerForm, string> = {
  name: 'Name',
  type: 'Kind',
  command: 'Command',
  args: 'Arguments',
  cwd: 'Working folder',
  env: 'Environment',
  url: 'Address',
  headers: 'Headers',
  enabled: 'Start it',
  description: 'Description',
};

/** Turns "…`gatehouse secrets set NAME`…" in a server's error into a pointer to the Secrets screen. */
function ErrorAdvice({ error }: { error: string }) {
  const secret = /gatehouse secrets set ([A-Za-z0-9_.-]+)/.exec(error)?.[1];
  return (
    <Notice tone="bad">
      <p>{error}</p>
      {secret ? (
        <p className="advice">
          Set <code>{secret}</code> on the <a href={href('secrets')}>Secrets</a> screen; the server starts again by itself.
        </p>
      ) : null}
    </Notice>
  );
}

function ServerForm({ mode, entry, onDone }: { mode: 'add' | 'edit'; entry?: ServerEntry; onDone: (name?: string) => void }) {
  const { client } = useLive();
  const toast = useToast();
  const [form, setForm] = useState<ServerForm>(() => (entry ? formFromConfig(entry.name, entry.config) : EMPTY_FORM));
  const [errors, setErrors] = useState<FormErrors>({});
  const [failure, setFailure] = useState<CallError>();
  const [busy, setBusy] = useState(false);
  const first = useRef<HTMLInputElement | HTMLSelectElement>(null);
  const set = <K extends keyof ServerForm>(key: K, value: ServerForm[K]) => setForm((f) => ({ ...f, [key]: value }));
  useEffect(() => first.current?.focus(), []);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setFailure(undefined);
    const checked = validateForm(form, entry?.config ?? {}, { checkName: mode === 'add' });
    setErrors(checked.errors);
    if (!checked.config) {
      // The first field in error takes the focus, so the person hears what to fix.
      requestAnimationFrame(() => document.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus());
      return;
    }
    setBusy(true);
    try {
      const report =
        mode === 'add'
          ? await client.call('servers.add', { name: form.name, config: checked.config })
          : await client.call('servers.update', { name: form.name, config: checked.config });
      toast('ok', `${form.name}: saved to the config file${report.added.length ? '; starting' : report.restarted.length ? '; restarting' : ''}`);
      onDone(form.name);
    } catch (error) {
      const e = toCallError(error);
      // The daemon names the field it refused ("config.command: ..."): show it there too.
      const field = /^config\.([a-z]+)/i.exec(e.message)?.[1] as keyof ServerForm | undefined;
      if (field && field in EMPTY_FORM) setErrors({ [field]: e.message.replace(/^config\.[^:]+:\s*/, '') });
      setFailure(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="form" onSubmit={(e) => void submit(e)} noValidate aria-label={mode === 'add' ? 'Add a server' : `Edit ${form.name}`}>
      {mode === 'add' ? (
        <Field label="Name" hint="Lower-case letters, digits and hyphens; tools appear as name__tool." error={errors.name}>
          {(p) => (
            <input {...p} ref={first as Ref<HTMLInputElement>} value={form.name} onChange={(e) => set('name', e.target.value)} autoComplete="off" required />
          )}
        </Field>
      ) : null}
      <Field label="Kind" error={errors.type}>
        {(p) => (
          <select
            {...p}
            ref={mode === 'edit' ? (first as Ref<HTMLSelectElement>) : undefined}
            value={form.type}
            onChange={(e) => set('type', e.target.value as ServerForm['type'])}
          >
            <option value="stdio">Local program (stdio)</option>
            <option value="http">Remote server (Streamable HTTP)</option>
          </select>
        )}
      </Field>
      {form.type === 'stdio' ? (
        <>
          <Field label="Command" hint="The program to run, such as node or npx." error={errors.command}>
            {(p) => <input {...p} value={form.command} onChange={(e) => set('command', e.target.value)} autoComplete="off" spellCheck={false} />}
          </Field>
          <Field label="Arguments" hint="One per line." error={errors.args}>
            {(p) => <textarea {...p} rows={3} value={form.args} onChange={(e) => set('args', e.target.value)} spellCheck={false} />}
          </Field>
          <Field label="Working folder" hint="Optional." error={errors.cwd}>
            {(p) => <input {...p} value={form.cwd} onChange={(e) => set('cwd', e.target.value)} autoComplete="off" spellCheck={false} />}
          </Field>
          <Field
            label="Environment"
            hint={
              <>
                One <code>NAME=value</code> per line. For a key or token, write <code>{'${secret:NAME}'}</code> and set NAME on the Secrets screen: it is never
                stored here.
              </>
            }
            error={errors.env}
          >
            {(p) => <textarea {...p} rows={3} value={form.env} onChange={(e) => set('env', e.target.value)} spellCheck={false} />}
          </Field>
        </>
      ) : (
        <>
          <Field label="Address" hint="https://… (http:// only for a server on this machine)." error={errors.url}>
            {(p) => <input {...p} type="url" value={form.url} onChange={(e) => set('url', e.target.value)} autoComplete="off" spellCheck={false} />}
          </Field>
          <Field
            label="Headers"
            hint={
              <>
                One <code>Name: value</code> per line; a token as <code>{'${secret:NAME}'}</code>.
              </>
            }
            error={errors.headers}
          >
            {(p) => <textarea {...p} rows={3} value={form.headers} onChange={(e) => set('headers', e.target.value)} spellCheck={false} />}
          </Field>
        </>
      )}
      <Field label="Description" hint="Optional, for you." error={errors.description}>
        {(p) => <input {...p} value={form.description} onChange={(e) => set('description', e.target.value)} />}
      </Field>
      <div className="field field-check">
        <input id="server-enabled" type="checkbox" checked={form.enabled} onChange={(e) => set('enabled', e.target.checked)} />
        <label htmlFor="server-enabled">Start it (enabled)</label>
      </div>
      {Object.keys(errors).length > 0 ? (
        <p className="field-error" role="alert">
          {plural(Object.keys(errors).length, 'field needs', 'fields need')} correcting:{' '}
          {(Object.keys(FIELD_LABELS) as (keyof ServerForm)[])
            .filter((k) => errors[k])
            .map((k) => FIELD_LABELS[k])
            .join(', ')}
          .
        </p>
      ) : null}
      <ErrorNote error={failure} context="Not saved" />
      <div className="form-actions">
        <button type="submit" className="primary" disabled={busy} aria-busy={busy}>
          {busy ? (
            <>
              <Spinner /> Saving and applying…
            </>
          ) : mode === 'add' ? (
            'Add the server'
          ) : (
            'Save changes'
          )}
        </button>
        <button type="button" onClick={() => onDone()}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function Logs({ name }: { name: string }) {
  const { client, subscribe } = useLive();
  const [lines, setLines] = useState<string[]>([]);
  const [error, setError] = useState<CallError>();
  const [follow, setFollow] = useState(true);
  const [filter, setFilter] = useState('');
  const box = useRef<HTMLPreElement>(null);
  useEffect(() => {
    let alive = true;
    setLines([]);
    client
      .call('logs', { name, lines: 300 })
      .then((initial) => alive && setLines((live) => [...initial, ...live].slice(-1000)))
      .catch((e: unknown) => alive && setError(toCallError(e)));
    const unsubscribe = subscribe((event) => {
      if (event.type === 'log' && event.server === name) setLines((l) => [...l, event.line].slice(-1000));
    });
    return () => {
      alive = false;
      unsubscribe();
    };
  }, [client, subscribe, name]);
  useEffect(() => {
    if (follow && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [lines, follow]);
  const shown = filter ? lines.filter((l) => l.toLowerCase().includes(filter.toLowerCase())) : lines;
  return (
    <div>
      <ErrorNote error={error} />
      <div className="toolbar">
        <label>
          Filter <input type="search" value={filter} onChange={(e) => setFilter(e.target.value)} />
        </label>
        <label>
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> Follow new lines
        </label>
        <span className="muted">{plural(shown.length, 'line')} (live)</span>
      </div>
      <pre className="logs" ref={box} tabIndex={0} role="region" aria-label={`Log of ${name}`}>
        {shown.length === 0 ? 'Nothing logged yet.' : shown.join('\n')}
      </pre>
    </div>
  );
}

function ServerTools({ name, ready }: { name: string; ready: boolean }) {
  const tools = useQuery((c) => (ready ? c.call('servers.tools', { name }) : Promise.resolve(undefined)), [name, ready], { live: ['tools'] });
  if (!ready) return <Empty>The tools are listed once the server is ready.</Empty>;
  if (tools.error) return <ErrorNote error={tools.error} onRetry={tools.reload} />;
  if (!tools.data) return <Spinner label="Loading tools" />;
  if (tools.data.length === 0) return <Empty>This server lists no tools.</Empty>;
  return (
    <div className="table-wrap">
      <table>
        <caption className="visually-hidden">Tools of {name}</caption>
        <thead>
          <tr>
            <th scope="col">Tool</th>
            <th scope="col">Description</th>
            <th scope="col">Hints</th>
          </tr>
        </thead>
        <tbody>
          {tools.data.map((t) => (
            <tr key={t.name}>
              <td>
                <code>{t.name}</code>
              </td>
              <td>{t.description ?? <span className="muted">—</span>}</td>
              <td>
                {t.annotations.readOnlyHint === true ? <Badge tone="ok">read-only</Badge> : null}{' '}
                {t.annotations.destructiveHint === true ? <Badge tone="bad">destructive</Badge> : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/**
 * A remote server the user signs in to: who it knows them as, or a Sign in button. The sign-in runs
 * in Gatehouse (which receives the browser's redirect and keeps the tokens); this only opens the
 * authorization server's page, and the status updates by itself once the person has signed in.
 */
function SignIn({ entry, onChanged }: { entry: ServerEntry; onChanged: () => void }) {
  const { client } = useLive();
  const [url, setUrl] = useState<string>();
  const [error, setError] = useState<CallError>();
  const auth = entry.status?.auth;
  if (!auth) return null;
  const start = async () => {
    setError(undefined);
    try {
      setUrl((await client.call('servers.login', { name: entry.name })).url);
    } catch (e) {
      setError(toCallError(e));
    }
  };
  const signedIn = auth.state === 'signed-in';
  return (
    <Section
      title="Sign-in"
      actions={
        signedIn ? (
          <ConfirmButton
            label="Sign out"
            title={`Sign out of ${entry.name}?`}
            question={
              <p>
                Gatehouse revokes your tokens at its authorization server where it can, and forgets them. Calls to {entry.name} are refused until you sign in
                again.
              </p>
            }
            confirmLabel="Sign out"
            busyLabel="Signing out…"
            done={`Signed out of ${entry.name}`}
            run={async () => {
              await client.call('servers.logout', { name: entry.name });
              setUrl(undefined);
              onChanged();
            }}
          />
        ) : (
          <ActionButton
            className="primary"
            label={auth.state === 'signing-in' ? 'Show the sign-in page' : 'Sign in'}
            busyLabel="Contacting its authorization server…"
            run={start}
          />
        )
      }
    >
      {!signedIn ? (
        <Notice tone="warn">
          {entry.name} needs you to sign in before it answers. Your tokens stay in Gatehouse (in your key store), renewed as needed and sent to {entry.name}{' '}
          only: no agent ever sees them. From a terminal: <code>{auth.command}</code>
        </Notice>
      ) : null}
      {url && !signedIn ? (
        <div role="status">
          <Notice tone="info">
            <p>
              <Spinner /> Waiting for you to finish signing in.
            </p>
            <p>
              <a href={url} target="_blank" rel="noopener noreferrer" className="button primary">
                Open the sign-in page
              </a>{' '}
              <span className="muted">(in your browser; this page updates when you are done)</span>
            </p>
          </Notice>
        </div>
      ) : null}
      {auth.reason && !signedIn ? <p className="muted">{auth.reason}</p> : null}
      <ErrorNote error={error} context="Sign-in could not start" />
      <KeyValues
        label={`Sign-in to ${entry.name}`}
        items={[
          ['State', <StateBadge key="a" state={auth.state} />],
          ['Signed in as', auth.subject ?? (signedIn ? <span className="muted">not said by the server</span> : '—')],
          ['Authorization server', auth.issuer ?? '—'],
          ['How', auth.via === 'enterprise' ? "your organisation's sign-in (no consent screen)" : auth.via === 'browser' ? 'you, in your browser' : '—'],
          [
            'Permissions',
            auth.scopes?.length
              ? auth.scopes.map((scope) => (
                  <Badge key={scope} tone="info">
                    {scope}
                  </Badge>
                ))
              : '—',
          ],
          ['Token valid until', auth.expiresAt ? `${timestamp(auth.expiresAt)} (${relative(auth.expiresAt)}; renewed before it expires)` : '—'],
        ]}
      />
    </Section>
  );
}

function ServerDetail({ entry, onChanged }: { entry: ServerEntry; onChanged: () => void }) {
  const { client } = useLive();
  const [tab, setTab] = useState('status');
  const [editing, setEditing] = useState(false);
  const s = entry.status;
  const ready = s?.state === 'ready';
  const act = (method: 'servers.start' | 'servers.stop' | 'servers.restart') => async () => {
    const result = await client.call(method, { name: entry.name });
    onChanged();
    return result;
  };
  return (
    <Section title={`Server ${entry.name}`}>
      <div className="actions">
        {entry.running ? (
          <>
            <ActionButton
              label="Restart"
              busyLabel="Restarting…"
              run={act('servers.restart')}
              done={(r) => `${entry.name}: ${(r as { state: string }).state}`}
            />
            {s?.state === 'stopped' ? (
              <ActionButton label="Start" busyLabel="Starting…" run={act('servers.start')} done={(r) => `${entry.name}: ${(r as { state: string }).state}`} />
            ) : (
              <ActionButton label="Stop" busyLabel="Stopping…" run={act('servers.stop')} done={`${entry.name} stopped`} />
            )}
          </>
        ) : null}
      </div>
      <Tabs
        label={`About ${entry.name}`}
        selected={tab}
        onSelect={setTab}
        tabs={[
          { id: 'status', label: 'Status' },
          { id: 'tools', label: 'Tools' },
          { id: 'logs', label: 'Live log' },
          { id: 'config', label: 'Configuration' },
        ]}
      >
        {tab === 'status' ? (
          <>
            {s?.lastError && s.state !== 'ready' && s.state !== 'needs-sign-in' ? <ErrorAdvice error={s.lastError} /> : null}
            <SignIn entry={entry} onChanged={onChanged} />
            <KeyValues
              label={`State of ${entry.name}`}
              items={[
                ['State', s ? <StateBadge key="st" state={s.state} /> : <Badge tone="muted">{entry.running ? 'unknown' : 'not running'}</Badge>],
                ['Restarts', String(s?.restarts ?? 0)],
                ['Ready since', s?.readySince ? `${timestamp(s.readySince)} (${relative(s.readySince)})` : '—'],
                ['Next attempt', s?.nextAttemptAt ? `${timestamp(s.nextAttemptAt)} (${relative(s.nextAttemptAt)})` : '—'],
                ['Process', s?.pid ? String(s.pid) : '—'],
                ['Sandbox', s?.confinement ? describeConfinement(s.confinement) : entry.config.type === 'http' ? 'runs elsewhere (remote)' : '—'],
                ['Server', s?.serverInfo ? `${s.serverInfo.name} ${s.serverInfo.version}` : '—'],
                ['Protocol', s?.protocolVersion ?? '—'],
                ['Tools, resources, prompts', s ? `${s.counts.tools}, ${s.counts.resources + s.counts.resourceTemplates}, ${s.counts.prompts}` : '—'],
                ['Secrets it uses', entry.secrets.length ? entry.secrets.join(', ') : 'none'],
                ['Log file', entry.logFile ? <code key="lf">{entry.logFile}</code> : '—'],
              ]}
            />
          </>
        ) : null}
        {tab === 'tools' ? <ServerTools name={entry.name} ready={ready} /> : null}
        {tab === 'logs' ? entry.running ? <Logs name={entry.name} /> : <Empty>The server is not running, so it has no live log.</Empty> : null}
        {tab === 'config' ? (
          entry.source === 'catalog' ? (
            <>
              <Notice>This server comes from the managed policy's signed catalog: its launch settings cannot be changed here.</Notice>
              <pre className="code">{JSON.stringify(entry.config, null, 2)}</pre>
            </>
          ) : editing ? (
            <ServerForm
              mode="edit"
              entry={entry}
              onDone={(saved) => {
                setEditing(false);
                if (saved) onChanged();
              }}
            />
          ) : (
            <>
              <pre className="code" aria-label={`Configuration of ${entry.name}`}>
                {JSON.stringify(entry.config, null, 2)}
              </pre>
              <div className="actions">
                <button type="button" onClick={() => setEditing(true)}>
                  Edit
                </button>
                <ConfirmButton
                  label="Remove"
                  title={`Remove ${entry.name}?`}
                  question={<p>It is stopped and deleted from your config file. Its secrets stay in the keychain.</p>}
                  confirmLabel="Remove the server"
                  busyLabel="Removing…"
                  done={`${entry.name} removed`}
                  run={async () => {
                    await client.call('servers.remove', { name: entry.name });
                    window.location.hash = href('servers');
                    onChanged();
                  }}
                />
              </div>
            </>
          )
        ) : null}
      </Tabs>
    </Section>
  );
}

export function Servers({ selected }: { selected?: string | undefined }) {
  const servers = useQuery((c) => c.call('servers.list'), [], { live: ['servers', 'secrets'] });
  const [adding, setAdding] = useState(false);
  const entry = servers.data?.servers.find((s) => s.name === selected);
  return (
    <>
      <ScreenTitle lead="The MCP servers Gatehouse runs for you: their state, tools and logs.">Servers</ScreenTitle>
      {servers.data?.note ? <Notice>{servers.data.note}</Notice> : null}
      <ErrorNote error={servers.error} onRetry={servers.reload} />
      <Section
        title="All servers"
        actions={
          <button type="button" className="primary" onClick={() => setAdding(true)} aria-expanded={adding}>
            Add a server
          </button>
        }
      >
        {adding ? (
          <ServerForm
            mode="add"
            onDone={(name) => {
              setAdding(false);
              servers.reload();
              if (name) window.location.hash = href('servers', name);
            }}
          />
        ) : null}
        {!servers.data ? (
          <Spinner label="Loading servers" />
        ) : servers.data.servers.length === 0 ? (
          <Empty>No server is configured. Add one.</Empty>
        ) : (
          <div className="table-wrap">
            <table>
              <caption className="visually-hidden">Servers, with their state</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">State</th>
                  <th scope="col">Restarts</th>
                  <th scope="col">Tools</th>
                  <th scope="col">From</th>
                  <th scope="col">Detail</th>
                </tr>
              </thead>
              <tbody>
                {servers.data.servers.map((s) => (
                  <tr key={s.name} className={s.name === selected ? 'selected' : undefined}>
                    <th scope="row">
                      <a href={href('servers', s.name)} aria-current={s.name === selected ? 'true' : undefined}>
                        {s.name}
                      </a>
                    </th>
                    <td>
                      {s.status ? <StateBadge state={s.status.state} /> : <Badge tone="muted">{s.config.enabled === false ? 'disabled' : 'not running'}</Badge>}
                    </td>
                    <td>{s.status?.restarts ?? '—'}</td>
                    <td>{s.status?.counts.tools ?? '—'}</td>
                    <td>{s.source === 'catalog' ? 'policy catalog' : 'your config'}</td>
                    <td className="muted clip">
                      {s.status?.state === 'ready'
                        ? s.status.serverInfo
                          ? `${s.status.serverInfo.name} ${s.status.serverInfo.version}`
                          : ''
                        : (s.status?.lastError ?? '')}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Section>
      {selected && servers.data && !entry ? <Notice tone="warn">No server named {selected}.</Notice> : null}
      {entry ? <ServerDetail key={entry.name} entry={entry} onChanged={servers.reload} /> : null}
    </>
  );
}
