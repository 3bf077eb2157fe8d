/** Overview: health, who calls are made as, the policy, connected clients, what waits for the person, recent calls. */
import { useEffect, useState } from 'react';
import type { AppSettings } from '../../src/common/console-api.js';
import type { DaemonStatus } from '../../src/common/status.js';
import { useLive, useQuery } from '../api/client.js';
import { ActivityCharts } from '../components/Chart.js';
import { Badge, Empty, ErrorNote, KeyValues, Notice, ScreenTitle, Section, Spinner, StateBadge } from '../components/ui.js';
import { plural, relative, timestamp } from '../lib/format.js';
import { href } from '../lib/routes.js';

function decisionTone(decision: string | undefined) {
  return decision === 'ok' || decision === 'allowed' ? 'ok' : decision === 'denied' ? 'warn' : decision ? 'bad' : 'muted';
}

function Health({ status }: { status: DaemonStatus }) {
  const ready = status.servers.filter((s) => s.state === 'ready').length;
  const troubled = status.servers.filter((s) => s.enabled && s.state !== 'ready' && s.state !== 'stopped' && s.state !== 'starting');
  return (
    <Section title="Servers">
      <p className="big">
        {ready} of {plural(status.servers.length, 'server')} ready
      </p>
      {troubled.length === 0 ? (
        <p className="muted">{status.servers.length === 0 ? 'No server is configured yet.' : 'Every running server answers.'}</p>
      ) : (
        <ul className="plain">
          {troubled.map((s) => (
            <li key={s.name}>
              <a href={href('servers', s.name)}>{s.name}</a> <StateBadge state={s.state} /> <span className="muted">{s.lastError}</span>
            </li>
          ))}
        </ul>
      )}
      <p>
        <a href={href('servers')}>Manage servers</a>
      </p>
    </Section>
  );
}

function You({ status }: { status: DaemonStatus }) {
  const identity = status.identity;
  return (
    <Section title="Signed in as">
      <p className="big">{identity?.user ?? status.user}</p>
      {identity ? (
        <p>
          <StateBadge state={identity.state} label={identity.mode === 'os' ? 'OS user (no identity provider)' : identity.state} />{' '}
          {identity.accessTokenExpiresAt ? <span className="muted">session renewed until {timestamp(identity.accessTokenExpiresAt)}</span> : null}
        </p>
      ) : null}
      {identity?.notice ? <Notice tone="warn">{identity.notice}</Notice> : null}
      <p>
        <a href={href('identity')}>Identity</a>
      </p>
    </Section>
  );
}

function PolicyCard({ status }: { status: DaemonStatus }) {
  const p = status.policy;
  return (
    <Section title="Policy">
      <p className="big">{p.mode === 'managed' ? `Managed${p.version ? `, bundle v${p.version}` : ''}` : 'Unmanaged'}</p>
      <p>
        <StateBadge state={p.state ?? p.mode} />
        {p.expiresAt ? <span className="muted"> expires {relative(p.expiresAt)}</span> : null}
      </p>
      {p.mode === 'unmanaged' ? <p className="muted">No policy bundle: the OS user may call every configured server, and every audit record says so.</p> : null}
      {p.reason ? <Notice tone={p.state === 'fail-closed' ? 'bad' : 'info'}>{p.reason}</Notice> : null}
      {p.notice ? <Notice tone="warn">{p.notice}</Notice> : null}
      <p>
        <a href={href('policy')}>Policy details</a>
      </p>
    </Section>
  );
}

function Waiting({ status }: { status: DaemonStatus }) {
  const approvals = status.approvals?.pending ?? [];
  // Every question waits on the desk; the approvals are those about calls, the rest are pairing requests.
  const questions = Math.max(0, (status.pendingQuestions ?? 0) - approvals.length);
  return (
    <Section title="Waiting for you">
      {approvals.length === 0 && questions === 0 ? <p className="muted">Nothing waits for an answer.</p> : null}
      {questions > 0 ? (
        <Notice tone="warn">
          {plural(questions, 'pairing request')} {questions === 1 ? 'waits' : 'wait'} for your answer: answer it in its window in the desktop app, or on the
          daemon's terminal.
        </Notice>
      ) : null}
      {approvals.length > 0 ? (
        <Notice tone="warn">
          {plural(approvals.length, 'call')} {approvals.length === 1 ? 'waits' : 'wait'} for your approval. <a href={href('approvals')}>See them</a>
        </Notice>
      ) : null}
    </Section>
  );
}

function Quotas({ status }: { status: DaemonStatus }) {
  const quotas = status.quotas;
  if (!quotas || (quotas.quotas.length === 0 && quotas.rateLimits.length === 0)) return null;
  return (
    <Section title="Remaining quotas">
      <ul className="plain">
        {quotas.quotas.map((q) => (
          <li key={q.id}>
            <strong>{q.id}</strong> ({q.limit} per {q.window}, {q.tools}):{' '}
            {q.usage.length === 0 ? <span className="muted">unused</span> : q.usage.map((u) => `${u.remaining} left for ${u.scope}`).join('; ')}
          </li>
        ))}
        {quotas.rateLimits.map((r) => (
          <li key={r.id}>
            <strong>{r.id}</strong>: {r.rate} per {r.per}
            {r.limited.length > 0 ? <Badge tone="warn">limited until {timestamp(r.limited[0]!.retryAt)}</Badge> : null}
          </li>
        ))}
      </ul>
    </Section>
  );
}

function AuditCard({ status }: { status: DaemonStatus }) {
  const a = status.audit;
  const sync = a.sync;
  return (
    <Section title="Audit log">
      <p className="big">{plural(a.records, 'record')}</p>
      <KeyValues
        label="Audit log state"
        items={[
          ['Writable', a.healthy === false ? <Badge tone="bad">no — calls are refused: {a.error}</Badge> : <Badge tone="ok">yes</Badge>],
          [
            'Signing',
            <StateBadge key="s" state={a.signing?.state === 'ok' ? 'ready' : (a.signing?.state ?? 'stopped')} label={a.signing?.state ?? 'unknown'} />,
          ],
          [
            'Hub sync',
            sync
              ? `${sync.lagRecords === 0 ? 'in sync' : `${plural(sync.lagRecords, 'event')} behind`} (${sync.state})`
              : (a.hubError ?? 'not enrolled with a hub'),
          ],
          // Where the device key, the sign-in and bridges' credentials are kept: the keychain, or the user-only file store.
          ['Keys kept in', status.keystore ? <span title={status.keystore.reason}>{status.keystore.description}</span> : '—'],
        ]}
      />
      <p>
        <a href={href('audit')}>Audit</a>
      </p>
    </Section>
  );
}

/** Calls, refusals and latency per server over the last day, fitted to where the calls are. */
function Activity() {
  const activity = useQuery(
    (c) => c.call('audit.timeline', { from: new Date(Date.now() - 86_400_000).toISOString(), by: 'server', buckets: 60, fit: true }),
    [],
    { live: ['audit'] },
  );
  return (
    <Section title="Activity per server">
      <ErrorNote error={activity.error} onRetry={activity.reload} />
      {activity.data ? <ActivityCharts timeline={activity.data} /> : <Spinner label="Counting calls" />}
    </Section>
  );
}

function RecentCalls() {
  const recent = useQuery((c) => c.call('audit.query', { type: 'call.outcome', limit: 8 }), [], { live: ['audit'] });
  return (
    <Section title="Recent calls">
      <ErrorNote error={recent.error} onRetry={recent.reload} />
      {!recent.data && recent.loading ? <Spinner label="Loading recent calls" /> : null}
      {recent.data && recent.data.events.length === 0 ? <Empty>No calls yet. Connect an IDE (see Clients) and use a tool.</Empty> : null}
      {recent.data && recent.data.events.length > 0 ? (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">The last calls</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Tool</th>
                <th scope="col">Client</th>
                <th scope="col">Outcome</th>
              </tr>
            </thead>
            <tbody>
              {[...recent.data.events].reverse().map((e) => (
                <tr key={e.seq}>
                  <td title={e.at}>{relative(e.at)}</td>
                  <td>{e.server && e.name ? `${e.server}__${e.name}` : e.name || e.server || '—'}</td>
                  <td>{e.client ?? '—'}</td>
                  <td>
                    <Badge tone={decisionTone(e.decision)}>{e.decision ?? '—'}</Badge> {e.code ? <span className="muted">{e.code}</span> : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </Section>
  );
}

/** Only in the desktop app: its own settings (start at login is off until the person turns it on). */
function DesktopApp() {
  const app = window.gatehouse?.app;
  const [openAtLogin, setOpenAtLogin] = useState<boolean>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    void app?.settings().then((r) => (r.ok ? setOpenAtLogin((r.result as AppSettings).openAtLogin) : setError(r.error.message)));
  }, [app]);
  if (!app) return null;
  const change = async (value: boolean) => {
    const r = await app.setSettings({ openAtLogin: value });
    if (r.ok) setOpenAtLogin(value);
    else setError(r.error.message);
  };
  return (
    <Section title="This desktop app">
      <div className="field field-check">
        <input
          id="open-at-login"
          type="checkbox"
          checked={openAtLogin ?? false}
          disabled={openAtLogin === undefined}
          onChange={(e) => void change(e.target.checked)}
        />
        <label htmlFor="open-at-login">Start Gatehouse when I log in</label>
      </div>
      {error ? <Notice tone="bad">{error}</Notice> : null}
    </Section>
  );
}

export function Overview() {
  const { status } = useLive();
  return (
    <>
      <ScreenTitle lead="How Gatehouse is doing right now.">Overview</ScreenTitle>
      {!status ? (
        <Spinner label="Loading" />
      ) : (
        <>
          <div className="cards">
            <Health status={status} />
            <You status={status} />
            <PolicyCard status={status} />
            <Section title="Connected clients">
              <p className="big">{plural(status.clients.length, 'session')}</p>
              {status.clients.length > 0 ? (
                <ul className="plain">
                  {status.clients.map((c) => (
                    <li key={c.id}>
                      {c.name}{' '}
                      <span className="muted">
                        ({c.transport}, {plural(c.calls, 'call')})
                      </span>{' '}
                      {c.verified ? null : <Badge tone="warn">unverified</Badge>}
                    </li>
                  ))}
                </ul>
              ) : (
                <p className="muted">No IDE or agent is connected.</p>
              )}
              <p>
                <a href={href('clients')}>Clients and how to connect</a>
              </p>
            </Section>
            <Waiting status={status} />
            <AuditCard status={status} />
            <Quotas status={status} />
            <DesktopApp />
          </div>
          <Activity />
          <RecentCalls />
        </>
      )}
    </>
  );
}
