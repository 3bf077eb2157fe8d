/**
 * Secrets: their names, whether the keychain holds each, which servers use each; set, rotate and
 * delete. A value goes from this form to the keychain and is never sent back: the console cannot
 * show one, because it never receives one.
 */
import { useState, type FormEvent } from 'react';
import { useLive, useQuery, toCallError } from '../api/client.js';
import type { CallError } from '../api/transport.js';
import { Badge, ConfirmButton, Dialog, Empty, ErrorNote, Field, Notice, ScreenTitle, Section, Spinner, useToast } from '../components/ui.js';
import { href } from '../lib/routes.js';

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

function SecretForm({ name: fixedName, rotating, onDone }: { name?: string; rotating: boolean; onDone: (saved: boolean) => void }) {
  const { client } = useLive();
  const toast = useToast();
  const [name, setName] = useState(fixedName ?? '');
  const [value, setValue] = useState('');
  const [errors, setErrors] = useState<{ name?: string; value?: string }>({});
  const [failure, setFailure] = useState<CallError>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const next: typeof errors = {};
    if (!NAME.test(name)) next.name = 'a secret name is 1-128 letters, digits, underscores, dots and hyphens, starting with a letter, digit or underscore';
    if (value.length === 0) next.value = 'type the value (it is not shown)';
    setErrors(next);
    if (Object.keys(next).length > 0) return;
    setBusy(true);
    setFailure(undefined);
    try {
      const { restarted } = await client.call('secrets.set', { name, value });
      setValue('');
      toast('ok', `${name} ${rotating ? 'rotated' : 'stored'} in the keychain${restarted.length ? `; restarted ${restarted.join(', ')}` : ''}`);
      onDone(true);
    } catch (error) {
      setFailure(toCallError(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="form" onSubmit={(e) => void submit(e)} noValidate>
      {fixedName ? null : (
        <Field
          label="Name"
          hint={
            <>
              Servers refer to it as <code>{'${secret:NAME}'}</code>.
            </>
          }
          error={errors.name}
        >
          {(p) => <input {...p} value={name} onChange={(e) => setName(e.target.value)} autoComplete="off" spellCheck={false} autoFocus />}
        </Field>
      )}
      <Field
        label={rotating ? `New value of ${name}` : 'Value'}
        hint="Stored in your OS keychain only; it is never shown, logged or sent back to this screen."
        error={errors.value}
      >
        {(p) => (
          <input
            {...p}
            type="password"
            value={value}
            onChange={(e) => setValue(e.target.value)}
            autoComplete="new-password"
            spellCheck={false}
            autoFocus={Boolean(fixedName)}
          />
        )}
      </Field>
      <ErrorNote error={failure} context="Not stored" />
      <div className="dialog-actions">
        <button type="submit" className="primary" disabled={busy} aria-busy={busy}>
          {busy ? (
            <>
              <Spinner /> Storing and restarting the servers that use it…
            </>
          ) : rotating ? (
            'Rotate'
          ) : (
            'Store'
          )}
        </button>
        <button type="button" onClick={() => onDone(false)}>
          Cancel
        </button>
      </div>
    </form>
  );
}

export function Secrets() {
  const { client } = useLive();
  const report = useQuery((c) => c.call('secrets.list'), [], { live: ['secrets'] });
  const [editing, setEditing] = useState<{ name?: string; rotating: boolean }>();
  const close = (saved: boolean) => {
    setEditing(undefined);
    if (saved) report.reload();
  };
  return (
    <>
      <ScreenTitle lead="Keys and tokens your servers need, kept in your OS keychain.">Secrets</ScreenTitle>
      <ErrorNote error={report.error} onRetry={report.reload} />
      {report.data && !report.data.available ? (
        <Notice tone="bad">
          <p>
            <strong>The keychain ({report.data.keychain}) cannot be read.</strong> {report.data.error}
          </p>
        </Notice>
      ) : null}
      <Section
        title="Secrets"
        actions={
          <button type="button" className="primary" onClick={() => setEditing({ rotating: false })}>
            Add a secret
          </button>
        }
      >
        {report.data ? <p className="muted">Kept in {report.data.keychain}. A change restarts the servers that use the secret, and only those.</p> : null}
        {!report.data ? (
          <Spinner label="Loading secrets" />
        ) : report.data.secrets.length === 0 ? (
          <Empty>No secret is stored or referred to.</Empty>
        ) : (
          <div className="table-wrap">
            <table>
              <caption className="visually-hidden">Secrets, by name</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">In the keychain</th>
                  <th scope="col">Used by</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {report.data.secrets.map((s) => (
                  <tr key={s.name}>
                    <th scope="row">
                      <code>{s.name}</code>
                    </th>
                    <td>{s.stored ? <Badge tone="ok">stored</Badge> : <Badge tone="bad">missing</Badge>}</td>
                    <td>
                      {s.usedBy.length === 0 ? (
                        <span className="muted">no server</span>
                      ) : (
                        s.usedBy.map((server, i) => (
                          <span key={server}>
                            {i > 0 ? ', ' : ''}
                            <a href={href('servers', server)}>{server}</a>
                          </span>
                        ))
                      )}
                      {!s.stored && s.usedBy.length > 0 ? <div className="muted small">{s.usedBy.join(', ')} cannot start until you set it.</div> : null}
                    </td>
                    <td className="row-actions">
                      <button
                        type="button"
                        onClick={() => setEditing({ name: s.name, rotating: s.stored })}
                        aria-label={`${s.stored ? 'Rotate' : 'Set'} ${s.name}`}
                      >
                        {s.stored ? 'Rotate' : 'Set'}
                      </button>
                      {s.stored ? (
                        <ConfirmButton
                          label="Delete"
                          ariaLabel={`Delete ${s.name}`}
                          title={`Delete ${s.name}?`}
                          question={<p>{s.usedBy.length ? `${s.usedBy.join(', ')} will not start again until it is set.` : 'No server uses it.'}</p>}
                          confirmLabel="Delete the secret"
                          busyLabel="Deleting…"
                          done={`${s.name} deleted`}
                          run={async () => {
                            await client.call('secrets.delete', { name: s.name });
                            report.reload();
                          }}
                        />
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Section>
      <Dialog
        open={editing !== undefined}
        title={editing?.name ? `${editing.rotating ? 'Rotate' : 'Set'} ${editing.name}` : 'Add a secret'}
        onClose={() => setEditing(undefined)}
      >
        {editing ? <SecretForm {...(editing.name ? { name: editing.name } : {})} rotating={editing.rotating} onDone={close} /> : null}
      </Dialog>
    </>
  );
}
