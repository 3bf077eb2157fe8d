/**
 * Identity: who calls are made as, their claims and roles, the session's expiry; sign in (in the
 * system browser, at the organisation's identity provider) and sign out.
 */
import { useEffect, useState } from 'react';
import { useLive, useQuery, toCallError } from '../api/client.js';
import type { CallError } from '../api/transport.js';
import { ActionButton, Badge, ConfirmButton, ErrorNote, KeyValues, Notice, ScreenTitle, Section, Spinner, StateBadge } from '../components/ui.js';
import { relative, timestamp } from '../lib/format.js';

type SignIn = { state: 'idle' } | { state: 'waiting'; url: string } | { state: 'signed-in' } | { state: 'failed'; message: string };

export function Identity() {
  const { client, status, subscribe } = useLive();
  const identity = useQuery((c) => c.call('identity.status'), [], { live: ['identity'] });
  const tools = useQuery((c) => c.call('tools.list'), [], { live: ['tools', 'identity'] });
  const [signIn, setSignIn] = useState<SignIn>({ state: 'idle' });
  const [error, setError] = useState<CallError>();
  useEffect(
    () =>
      subscribe((event) => {
        if (event.type !== 'sign-in') return;
        if (event.state === 'signed-in') setSignIn({ state: 'signed-in' });
        else if (event.state === 'failed') setSignIn({ state: 'failed', message: event.message ?? 'the sign-in failed' });
      }),
    [subscribe],
  );
  const id = identity.data ?? status?.identity;
  const start = async () => {
    setError(undefined);
    try {
      const { url } = await client.call('identity.login');
      setSignIn({ state: 'waiting', url });
    } catch (e) {
      setError(toCallError(e));
    }
  };
  const roles = tools.data?.mode === 'managed' ? tools.data.yourRoles : undefined;
  return (
    <>
      <ScreenTitle lead="Who your calls are made as, and your session with your organisation's sign-in.">Identity</ScreenTitle>
      <ErrorNote error={identity.error} onRetry={identity.reload} />
      {!id ? (
        <Spinner label="Loading" />
      ) : id.mode === 'os' ? (
        <Section title="No identity provider">
          <Notice>
            No identity provider is configured, so calls are made as the OS user <strong>{status?.user}</strong>. This is unmanaged mode, and every audit record
            says so. An administrator configures single sign-on with <code>identity.json</code> (docs/identity.md).
          </Notice>
        </Section>
      ) : (
        <>
          <Section
            title="Your session"
            actions={
              id.state === 'active' ? (
                <ConfirmButton
                  label="Sign out"
                  title="Sign out?"
                  question={<p>Gatehouse revokes your session at the identity provider and forgets it. Calls are refused until you sign in again.</p>}
                  confirmLabel="Sign out"
                  busyLabel="Signing out…"
                  done="Signed out"
                  run={async () => {
                    await client.call('identity.logout');
                    setSignIn({ state: 'idle' });
                    identity.reload();
                  }}
                />
              ) : (
                <ActionButton className="primary" label="Sign in" busyLabel="Contacting the identity provider…" run={start} />
              )
            }
          >
            {id.notice ? <Notice tone={id.state === 'active' ? 'info' : 'warn'}>{id.notice}</Notice> : null}
            <KeyValues
              label="Your session"
              items={[
                ['User', id.user ?? <span className="muted">not signed in</span>],
                ['State', <StateBadge key="s" state={id.state} />],
                ['User id', id.userId ? <code key="u">{id.userId}</code> : '—'],
                [
                  'Identity provider',
                  id.issuer ? `${id.issuer}${id.settingsSource ? ` (set by ${id.settingsSource === 'managed' ? 'your organisation' : 'you'})` : ''}` : '—',
                ],
                [
                  'Session valid until',
                  id.accessTokenExpiresAt ? `${timestamp(id.accessTokenExpiresAt)} (${relative(id.accessTokenExpiresAt)}; renewed before it expires)` : '—',
                ],
                ['Last renewed', id.lastRefreshAt ? `${timestamp(id.lastRefreshAt)} (${relative(id.lastRefreshAt)})` : '—'],
              ]}
            />
            {id.reason && id.state !== 'active' ? <p className="muted">{id.reason}</p> : null}
          </Section>
          {signIn.state === 'waiting' ? (
            <div role="status">
              <Notice tone="info">
                <p>
                  <Spinner /> Waiting for you to finish signing in at your identity provider.
                </p>
                <p>
                  <a href={signIn.url} target="_blank" rel="noopener noreferrer" className="button primary">
                    Open the sign-in page
                  </a>{' '}
                  <span className="muted">(in your browser; this page updates when you are done)</span>
                </p>
              </Notice>
            </div>
          ) : null}
          {signIn.state === 'signed-in' ? (
            <div role="status">
              <Notice tone="ok">Signed in.</Notice>
            </div>
          ) : null}
          {signIn.state === 'failed' ? (
            <div role="alert">
              <Notice tone="bad">The sign-in failed: {signIn.message}. Try again; if it keeps failing, tell your administrator what it says.</Notice>
            </div>
          ) : null}
          <ErrorNote error={error} context="Sign-in could not start" />
          <Section title="Claims and roles">
            <KeyValues
              label="Claims and roles"
              items={[
                [
                  'Groups (from the identity provider)',
                  id.groups?.length ? (
                    id.groups.map((g) => (
                      <Badge key={g} tone="info">
                        {g}
                      </Badge>
                    ))
                  ) : (
                    <span className="muted">none</span>
                  ),
                ],
                [
                  'Roles (from the policy bundle)',
                  roles === undefined ? (
                    <span key="r" className="muted">
                      no managed policy: roles do not apply
                    </span>
                  ) : roles.length ? (
                    roles.map((r) => (
                      <Badge key={r} tone="ok">
                        {r}
                      </Badge>
                    ))
                  ) : (
                    <span key="r" className="muted">
                      none (your groups map to no role)
                    </span>
                  ),
                ],
              ]}
            />
          </Section>
        </>
      )}
    </>
  );
}
