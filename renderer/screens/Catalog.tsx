/**
 * Catalog: the servers the organisation approved in its signed catalogue (search, what each does,
 * who publishes it, the tools it will offer, the secrets it needs), installed with one button that
 * asks for those secrets first; and the servers the person's own clients run outside Gatehouse.
 * Installing fetches the exact package the catalogue signed and checks its bytes; a refusal is
 * shown with its reason. Secret values only go in (to the keychain), as on the Secrets screen.
 */
import { useState, type FormEvent } from 'react';
import type { CatalogEntryInfo, ShadowServer } from '../../src/common/catalog.js';
import type { CLIENT_APP_IDS } from '../../src/common/control-api.js';
import { useLive, useQuery, toCallError } from '../api/client.js';
import type { CallError } from '../api/transport.js';
import { Badge, Dialog, Empty, ErrorNote, Field, Notice, ScreenTitle, Section, Spinner, useToast } from '../components/ui.js';
import { href } from '../lib/routes.js';

function InstallForm({ entry, onDone }: { entry: CatalogEntryInfo; onDone: (installed: boolean) => void }) {
  const { client } = useLive();
  const toast = useToast();
  const missing = entry.secrets.filter((s) => !s.stored);
  const [values, setValues] = useState<Record<string, string>>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [failure, setFailure] = useState<CallError>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const next: Record<string, string> = {};
    for (const s of missing) if (!values[s.name]) next[s.name] = `${entry.title} needs ${s.name} to start; type its value (it is not shown)`;
    setErrors(next);
    if (Object.keys(next).length > 0) return;
    setBusy(true);
    setFailure(undefined);
    try {
      for (const s of missing) await client.call('secrets.set', { name: s.name, value: values[s.name]! });
      setValues({});
      const result = await client.call('servers.install', { name: entry.name });
      toast('ok', `${entry.title} installed: ${result.package}@${result.version}, verified`);
      onDone(true);
    } catch (error) {
      setFailure(toCallError(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="form" onSubmit={(e) => void submit(e)} noValidate>
      <p>
        Gatehouse fetches <code>{entry.source.kind === 'package' ? `${entry.source.identifier}@${entry.source.version}` : entry.name}</code>, checks its bytes
        against the catalogue&apos;s signed integrity, and runs it from its own folder.
      </p>
      {missing.map((s) => (
        <Field
          key={s.name}
          label={`Secret ${s.name}`}
          hint={s.description || 'Stored in your OS keychain only; never shown or sent back.'}
          error={errors[s.name]}
        >
          {(p) => (
            <input
              {...p}
              type="password"
              value={values[s.name] ?? ''}
              onChange={(e) => setValues({ ...values, [s.name]: e.target.value })}
              autoComplete="new-password"
              spellCheck={false}
            />
          )}
        </Field>
      ))}
      <ErrorNote error={failure} context="Not installed" />
      <div className="dialog-actions">
        <button type="submit" className="primary" disabled={busy} aria-busy={busy}>
          {busy ? (
            <>
              <Spinner /> Fetching and verifying…
            </>
          ) : (
            'Install'
          )}
        </button>
        <button type="button" onClick={() => onDone(false)}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function EntryCard({ entry, onInstall }: { entry: CatalogEntryInfo; onInstall: () => void }) {
  return (
    <article className="card" aria-label={entry.title}>
      <h3>
        {entry.title} {entry.installedAs.length ? <Badge tone="ok">installed</Badge> : null}
      </h3>
      <p className="muted small">
        {entry.publisher ? <>by {entry.publisher} · </> : null}
        {entry.source.kind === 'package'
          ? `${entry.source.registryType} ${entry.source.identifier}@${entry.source.version}`
          : entry.source.kind === 'remote'
            ? entry.source.url
            : 'started by your organisation'}
      </p>
      <p>{entry.description}</p>
      <p className="small">
        Tools:{' '}
        {entry.tools.length ? (
          entry.tools.map((t) => `${t.name}${t.readOnly ? ' (read-only)' : ''}`).join(', ')
        ) : (
          <span className="muted">none pinned yet</span>
        )}
      </p>
      {entry.secrets.length ? <p className="small">Needs: {entry.secrets.map((s) => `${s.name}${s.stored ? ' (stored)' : ''}`).join(', ')}</p> : null}
      {entry.installedAs.length ? (
        <p className="small">
          Installed as{' '}
          {entry.installedAs.map((n) => (
            <a key={n} href={href('servers', n)}>
              {n}
            </a>
          ))}
        </p>
      ) : entry.installable ? (
        <button type="button" className="primary" onClick={onInstall} aria-label={`Install ${entry.title}`}>
          Install
        </button>
      ) : (
        <p className="muted small">{entry.notInstallable}</p>
      )}
    </article>
  );
}

/** One client's servers outside Gatehouse, with the button that imports them (the `clients.import` control method). */
function ShadowClient({ client, servers, onImported }: { client: string; servers: ShadowServer[]; onImported: () => void }) {
  const { client: api } = useLive();
  const toast = useToast();
  const [failure, setFailure] = useState<CallError>();
  const [busy, setBusy] = useState(false);
  const importClient = async () => {
    setBusy(true);
    setFailure(undefined);
    try {
      const result = await api.call('clients.import', { client: client as (typeof CLIENT_APP_IDS)[number] });
      const left = result.leftAlone.map((l) => `${l.entry} (${l.reason})`).join('; ');
      toast(
        result.moved.length > 0 ? 'ok' : 'warn',
        `${client}: ${result.moved.length ? `moved ${result.moved.map((m) => m.server).join(', ')} behind Gatehouse` : 'nothing moved'}${left ? `; left: ${left}` : ''}`,
      );
      onImported();
    } catch (error) {
      setFailure(toCallError(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-label={`Servers ${client} runs itself`}>
      <h3>{client}</h3>
      <ul>
        {servers.map((s) => (
          <li key={s.name}>
            <strong>{s.name}</strong>: <code>{s.target}</code>
            {s.envKeys.length ? <span className="muted small"> · environment: {s.envKeys.join(', ')}</span> : null}
            {s.inCatalog ? <> (approved in the catalogue as {s.inCatalog})</> : null}
          </li>
        ))}
      </ul>
      <ErrorNote error={failure} context="Not imported" />
      <button type="button" onClick={() => void importClient()} disabled={busy} aria-busy={busy} aria-label={`Import ${client}'s servers into Gatehouse`}>
        {busy ? (
          <>
            <Spinner /> Importing…
          </>
        ) : (
          `Import into Gatehouse`
        )}
      </button>
    </section>
  );
}

export function Catalog() {
  const [query, setQuery] = useState('');
  const listing = useQuery((c) => c.call('catalog.list', { query }), [query], { live: false });
  const shadows = useQuery((c) => c.call('catalog.shadows'), [], { live: false });
  const [installing, setInstalling] = useState<CatalogEntryInfo>();
  const close = (installed: boolean) => {
    setInstalling(undefined);
    if (installed) listing.reload();
  };
  return (
    <>
      <ScreenTitle lead="Servers your organisation approved, installed from the exact package it signed.">Catalog</ScreenTitle>
      <ErrorNote error={listing.error} onRetry={listing.reload} />
      <Section title="Approved servers">
        <Field label="Search" hint="By name, description, publisher, package or tool.">
          {(p) => <input {...p} type="search" value={query} onChange={(e) => setQuery(e.target.value)} spellCheck={false} />}
        </Field>
        {!listing.data ? (
          <Spinner label="Loading the catalogue" />
        ) : listing.data.mode !== 'managed' ? (
          <Notice>No signed catalogue is in force ({listing.data.mode}). Your organisation publishes one in its policy bundle.</Notice>
        ) : listing.data.entries.length === 0 ? (
          <Empty>{query ? `No approved server matches "${query}".` : 'The catalogue has no servers to install.'}</Empty>
        ) : (
          <div className="cards">
            {listing.data.entries.map((e) => (
              <EntryCard key={e.name} entry={e} onInstall={() => setInstalling(e)} />
            ))}
          </div>
        )}
      </Section>
      <Section title="Servers your clients run outside Gatehouse">
        <ErrorNote error={shadows.error} onRetry={shadows.reload} />
        {!shadows.data ? (
          <Spinner label="Reading your clients' configs" />
        ) : shadows.data.length === 0 ? (
          <Empty>None: every MCP server your clients use goes through Gatehouse.</Empty>
        ) : (
          <>
            <p className="muted">
              Nothing governs, audits or confines these. Importing a client moves its servers behind Gatehouse (credentials into your keychain) and points the
              client at Gatehouse, as <code>gatehouse clients import CLIENT</code> does; <code>--undo</code> puts it back.
            </p>
            {[...new Set(shadows.data.map((s) => s.client))].map((client) => (
              <ShadowClient key={client} client={client} servers={shadows.data!.filter((s) => s.client === client)} onImported={shadows.reload} />
            ))}
          </>
        )}
      </Section>
      <Dialog open={installing !== undefined} title={installing ? `Install ${installing.title}` : 'Install'} onClose={() => setInstalling(undefined)}>
        {installing ? <InstallForm entry={installing} onDone={close} /> : null}
      </Dialog>
    </>
  );
}
