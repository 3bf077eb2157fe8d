/**
 * The fleet view: devices (user, last sync, lag, policy version, chain status with gaps and forks
 * flagged), refusals and approvals over time, an event search with the admin API's filters, and
 * the catalogue's view of the fleet (shadow servers, tool baselines). Every figure comes from the
 * hub's admin API; the page holds no data of its own.
 */
import { useCallback, useEffect, useMemo, useState, type FormEvent } from 'react';
import type { z } from 'zod';
import {
  FLAG_KINDS,
  FLEET_EVENT_FILTERS,
  FleetBaselinesSchema,
  FleetDevicesSchema,
  FleetEventsSchema,
  FleetShadowServersSchema,
  FleetTimelineSchema,
  type FleetBaseline,
  type FleetDevice,
  type FleetEvent,
  type FleetShadowServer,
  type FleetTimeline,
} from '../../src/common/fleet.js';
import { DataTable, type DataColumn } from '../components/DataTable.js';
import { TimeChart, type TimeSeries } from '../components/TimeChart.js';
import { Badge, Empty, ErrorNote, Field, ScreenTitle, Section, Spinner, Tabs, type Tone } from '../components/ui.js';
import { bucketStarts } from '../lib/chart.js';
import { duration, plural, relative, shortHash, timestamp } from '../lib/format.js';
import { FleetError, adminGet, storeToken, storedToken } from './api.js';

const TABS = [
  { id: 'devices', label: 'Devices' },
  { id: 'activity', label: 'Refusals and approvals' },
  { id: 'events', label: 'Event search' },
  { id: 'catalogue', label: 'Shadow servers and baselines' },
];

export function FleetApp() {
  const [token, setToken] = useState(storedToken());
  const [signInError, setSignInError] = useState<string>();
  const [tab, setTab] = useState('devices');
  const signOut = useCallback((why?: string) => {
    storeToken(undefined);
    setToken(undefined);
    setSignInError(why);
  }, []);
  if (!token) {
    return (
      <SignIn
        error={signInError}
        onToken={(t) => {
          storeToken(t);
          setSignInError(undefined);
          setToken(t);
        }}
      />
    );
  }
  return (
    <main className="fleet">
      <ScreenTitle lead="Every enrolled device, what it reported and whether its audit chain is whole, from this hub's admin API.">Gatehouse fleet</ScreenTitle>
      <p>
        <button type="button" className="link" onClick={() => signOut()}>
          Sign out of the fleet view
        </button>
      </p>
      <Tabs tabs={TABS} selected={tab} onSelect={setTab} label="Fleet views">
        {tab === 'devices' ? <Devices token={token} onUnauthorized={signOut} /> : null}
        {tab === 'activity' ? <Activity token={token} onUnauthorized={signOut} /> : null}
        {tab === 'events' ? <EventSearch token={token} onUnauthorized={signOut} /> : null}
        {tab === 'catalogue' ? <Catalogue token={token} onUnauthorized={signOut} /> : null}
      </Tabs>
    </main>
  );
}

function SignIn({ error, onToken }: { error: string | undefined; onToken: (token: string) => void }) {
  const [value, setValue] = useState('');
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (value.trim()) onToken(value.trim());
  };
  return (
    <main className="fleet">
      <ScreenTitle lead="The fleet view reads the hub's admin API: sign in with an admin token (made with `gatehouse hub token`). It is kept in this tab only, until you close it.">
        Gatehouse fleet
      </ScreenTitle>
      <form onSubmit={submit} aria-label="Sign in with an admin token">
        <Field label="Admin token" error={error}>
          {(props) => <input {...props} type="password" autoComplete="off" value={value} onChange={(e) => setValue(e.target.value)} required />}
        </Field>
        <button type="submit">Open the fleet view</button>
      </form>
    </main>
  );
}

interface ViewProps {
  token: string;
  onUnauthorized: (why: string) => void;
}

/** One admin API answer, loaded when its inputs change, with a way to load it again. */
function useAdmin<S extends z.ZodType>({ token, onUnauthorized }: ViewProps, path: string, schema: S, params?: Record<string, string>) {
  const [state, setState] = useState<{ data?: z.infer<S>; error?: Error; loading: boolean }>({ loading: true });
  const key = JSON.stringify(params ?? {});
  const load = useCallback(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    adminGet(token, path, schema, JSON.parse(key) as Record<string, string>).then(
      (data) => live && setState({ data, loading: false }),
      (error: Error) => {
        if (!live) return;
        if (error instanceof FleetError && error.status === 401) onUnauthorized('The hub did not accept this admin token.');
        setState({ error, loading: false });
      },
    );
    return () => void (live = false);
  }, [token, path, schema, key, onUnauthorized]);
  useEffect(load, [load]);
  return { ...state, reload: load };
}

// --- Devices ---------------------------------------------------------------------------------

function chainStatus(d: FleetDevice): { tone: Tone; text: string } {
  const kinds = FLAG_KINDS.filter((k) => (d.openFlags[k] ?? 0) > 0);
  if (kinds.length === 0) return d.highest > d.acked ? { tone: 'warn', text: 'waiting' } : { tone: 'ok', text: 'intact' };
  const bad = kinds.some((k) => k !== 'gap');
  return { tone: bad ? 'bad' : 'warn', text: kinds.map((k) => `${k.replace('_', ' ')}${d.openFlags[k]! > 1 ? ` ×${d.openFlags[k]}` : ''}`).join(', ') };
}

function lagText(d: FleetDevice, at: string): string {
  const since = d.lastSeenAt ? duration(Math.max(0, Date.parse(at) - Date.parse(d.lastSeenAt))) : 'never synced';
  return d.highest > d.acked ? `${since}; acknowledged to ${d.acked} of ${d.highest}` : since;
}

function Devices(props: ViewProps) {
  const { data, error, loading, reload } = useAdmin(props, 'fleet', FleetDevicesSchema);
  const columns = useMemo<DataColumn<FleetDevice>[]>(
    () => [
      { id: 'device', header: 'Device', value: (d) => d.id, cell: (d) => <code>{d.id}</code>, size: 250 },
      { id: 'host', header: 'Host', value: (d) => d.host, size: 120 },
      { id: 'user', header: 'User', value: (d) => d.user ?? '', cell: (d) => d.user ?? <span className="muted">none yet</span>, size: 120 },
      {
        id: 'sync',
        header: 'Last sync',
        value: (d) => d.lastSeenAt ?? '',
        cell: (d) =>
          d.lastSeenAt ? (
            <time dateTime={d.lastSeenAt} title={timestamp(d.lastSeenAt)}>
              {relative(d.lastSeenAt)}
            </time>
          ) : (
            'never'
          ),
        size: 120,
      },
      {
        id: 'lag',
        header: 'Lag',
        value: (d) => (d.lastSeenAt ? Date.parse(data?.at ?? '') - Date.parse(d.lastSeenAt) : Number.MAX_SAFE_INTEGER),
        cell: (d) => lagText(d, data?.at ?? new Date().toISOString()),
        size: 200,
      },
      { id: 'acked', header: 'Acknowledged', value: (d) => d.acked, size: 110 },
      {
        id: 'policy',
        header: 'Policy',
        value: (d) => d.policyVersion ?? '',
        cell: (d) => d.policyVersion ?? <span className="muted">{d.policyMode ?? 'unknown'}</span>,
        size: 110,
      },
      {
        id: 'chain',
        header: 'Chain',
        value: (d) => chainStatus(d).text,
        cell: (d) => {
          const s = chainStatus(d);
          return <Badge tone={s.tone}>{s.text}</Badge>;
        },
        size: 150,
      },
      {
        id: 'status',
        header: 'Status',
        value: (d) => d.status,
        cell: (d) => <Badge tone={d.status === 'active' ? 'ok' : 'muted'}>{d.status}</Badge>,
        size: 90,
      },
    ],
    [data?.at],
  );
  if (error) return <ErrorNote error={error} onRetry={reload} context="Devices" />;
  if (!data) return <Spinner label="Loading devices" />;
  const flagged = data.devices.filter((d) => chainStatus(d).tone !== 'ok');
  return (
    <Section
      title={`Devices (${data.devices.length})`}
      actions={
        <button type="button" onClick={reload} disabled={loading}>
          Refresh
        </button>
      }
    >
      <p role="status">
        {data.devices.length === 0
          ? 'No device has enrolled yet.'
          : flagged.length === 0
            ? 'Every chain is intact.'
            : `${plural(flagged.length, 'device')} with a gap, a fork or another flag.`}
      </p>
      {data.devices.length > 0 ? (
        <DataTable
          rows={data.devices}
          columns={columns}
          rowKey={(d) => d.id}
          label="Devices"
          height={Math.min(460, 60 + data.devices.length * 34)}
          initialSort={[{ id: 'device', desc: false }]}
        />
      ) : null}
    </Section>
  );
}

// --- Refusals and approvals -------------------------------------------------------------------

const RANGES = [
  { id: '24h', label: 'Last 24 hours', buckets: '48' },
  { id: '7d', label: 'Last 7 days', buckets: '56' },
  { id: '30d', label: 'Last 30 days', buckets: '60' },
];

function Activity(props: ViewProps) {
  const [range, setRange] = useState(RANGES[0]!);
  const params = useMemo(() => ({ from: range.id, buckets: range.buckets }), [range]);
  const { data, error, reload } = useAdmin(props, 'timeline', FleetTimelineSchema, params);
  return (
    <Section
      title="Refusals and approvals over time"
      actions={
        <select aria-label="Time range" value={range.id} onChange={(e) => setRange(RANGES.find((r) => r.id === e.target.value)!)}>
          {RANGES.map((r) => (
            <option key={r.id} value={r.id}>
              {r.label}
            </option>
          ))}
        </select>
      }
    >
      {error ? (
        <ErrorNote error={error} onRetry={reload} context="Timeline" />
      ) : data ? (
        <TimelineChart timeline={data} />
      ) : (
        <Spinner label="Loading the timeline" />
      )}
    </Section>
  );
}

const TIMELINE_SERIES = [
  { key: 'refused', name: 'Refused' },
  { key: 'approvalsAsked', name: 'Approvals asked' },
  { key: 'approved', name: 'Approved' },
  { key: 'declined', name: 'Declined or expired' },
] as const;

function TimelineChart({ timeline }: { timeline: FleetTimeline }) {
  const [asTable, setAsTable] = useState(false);
  const buckets = timeline.refused.length;
  const x = useMemo(() => bucketStarts(timeline.from, timeline.bucketMs, buckets), [timeline.from, timeline.bucketMs, buckets]);
  const totals = TIMELINE_SERIES.map((s) => timeline[s.key].reduce((a, b) => a + b, 0));
  const series = useMemo<TimeSeries[]>(() => TIMELINE_SERIES.map((s, i) => ({ name: s.name, values: timeline[s.key], color: i })), [timeline]);
  const summary = `${TIMELINE_SERIES.map((s, i) => `${totals[i]} ${s.name.toLowerCase()}`).join(', ')} from ${timestamp(timeline.from)} to ${timestamp(timeline.to)}, in ${duration(timeline.bucketMs)} buckets`;
  return (
    <figure className="chart">
      <figcaption>Across the fleet, {duration(timeline.bucketMs)} per bar</figcaption>
      <p data-testid="timeline-summary">{summary}</p>
      {totals.every((t) => t === 0) ? (
        <Empty>No refusals and no approvals in this range.</Empty>
      ) : (
        <div role="img" aria-label={summary}>
          <TimeChart x={x} series={series} kind="stacked-bars" height={220} testId="fleet-timeline" />
          <ul className="legend" aria-label="Legend">
            {TIMELINE_SERIES.map((s, i) => (
              <li key={s.key}>
                <span className={`swatch series-${i}`} aria-hidden="true" /> {s.name} <span className="muted">({totals[i]})</span>
              </li>
            ))}
          </ul>
        </div>
      )}
      <button type="button" className="link" aria-expanded={asTable} onClick={() => setAsTable(!asTable)}>
        {asTable ? 'Hide the numbers' : 'Show the numbers as a table'}
      </button>
      {asTable ? (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Refusals and approvals per time</caption>
            <thead>
              <tr>
                <th scope="col">From</th>
                {TIMELINE_SERIES.map((s) => (
                  <th scope="col" key={s.key}>
                    {s.name}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {x.map((start, i) => (
                <tr key={start}>
                  <th scope="row">{timestamp(new Date(start * 1000).toISOString())}</th>
                  {TIMELINE_SERIES.map((s) => (
                    <td key={s.key}>{timeline[s.key][i]}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </figure>
  );
}

// --- Event search ------------------------------------------------------------------------------

const FILTER_HINTS: Record<(typeof FLEET_EVENT_FILTERS)[number], string> = {
  from: 'ISO time or a duration back from now (24h, 7d)',
  to: 'ISO time or a duration back from now',
  user: "os:alice, or the identity provider's subject",
  client: 'cursor, claude-code, …',
  server: 'server name',
  tool: 'tool, prompt or resource name',
  decision: 'allowed, denied, failed, ok, error, interrupted',
  type: 'call.outcome, approval.decided, …',
  device: 'device id',
  limit: '1 to 10,000 (default 100)',
};

function EventSearch(props: ViewProps) {
  const empty = Object.fromEntries(FLEET_EVENT_FILTERS.map((k) => [k, ''])) as Record<(typeof FLEET_EVENT_FILTERS)[number], string>;
  const [draft, setDraft] = useState({ ...empty, from: '24h' });
  const [query, setQuery] = useState<Record<string, string>>({ from: '24h' });
  const { data, error, loading } = useAdmin(props, 'events', FleetEventsSchema, query);
  const columns = useMemo<DataColumn<FleetEvent>[]>(
    () => [
      { id: 'at', header: 'Time', value: (r) => r.event.at, cell: (r) => timestamp(r.event.at), size: 170 },
      { id: 'device', header: 'Device', value: (r) => r.device, cell: (r) => <code title={r.device}>{r.device.slice(0, 14)}…</code>, size: 130 },
      { id: 'seq', header: 'Seq', value: (r) => r.seq, size: 60 },
      { id: 'type', header: 'Type', value: (r) => r.event.type, size: 140 },
      { id: 'user', header: 'User', value: (r) => r.event.user ?? '', size: 100 },
      { id: 'client', header: 'Client', value: (r) => r.event.client ?? '', size: 90 },
      { id: 'item', header: 'Server / tool', value: (r) => [r.event.server, r.event.name].filter(Boolean).join('/'), size: 170 },
      {
        id: 'decision',
        header: 'Decision',
        value: (r) => r.event.decision ?? '',
        cell: (r) =>
          r.event.decision ? <Badge tone={r.event.decision === 'denied' || r.event.decision === 'failed' ? 'bad' : 'ok'}>{r.event.decision}</Badge> : null,
        size: 90,
      },
      { id: 'code', header: 'Why', value: (r) => r.event.code ?? r.event.reason ?? '', size: 140 },
      { id: 'hash', header: 'Hash', value: (r) => r.hash, cell: (r) => <code>{shortHash(r.hash)}</code>, size: 110 },
    ],
    [],
  );
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setQuery(
      Object.fromEntries(
        Object.entries(draft)
          .filter(([, v]) => v.trim() !== '')
          .map(([k, v]) => [k, v.trim()]),
      ),
    );
  };
  return (
    <Section title="Event search">
      <form onSubmit={submit} aria-label="Filters" className="filters">
        {FLEET_EVENT_FILTERS.map((key) => (
          <Field key={key} label={key} hint={FILTER_HINTS[key]}>
            {(p) => <input {...p} name={key} value={draft[key]} onChange={(e) => setDraft({ ...draft, [key]: e.target.value })} />}
          </Field>
        ))}
        <button type="submit" disabled={loading}>
          Search
        </button>
      </form>
      {error ? <ErrorNote error={error} context="Search" /> : null}
      {data ? (
        <>
          <p role="status">{plural(data.events.length, 'event')} found.</p>
          {data.events.length > 0 ? (
            <DataTable
              rows={data.events}
              columns={columns}
              rowKey={(r) => `${r.device}:${r.seq}`}
              label="Events"
              height={Math.min(460, 60 + data.events.length * 34)}
            />
          ) : null}
        </>
      ) : !error ? (
        <Spinner label="Searching" />
      ) : null}
    </Section>
  );
}

// --- Catalogue -----------------------------------------------------------------------------------

function Catalogue(props: ViewProps) {
  const shadow = useAdmin(props, 'shadow-servers', FleetShadowServersSchema);
  const baselines = useAdmin(props, 'baselines', FleetBaselinesSchema);
  const shadowColumns = useMemo<DataColumn<FleetShadowServer>[]>(
    () => [
      { id: 'host', header: 'Host', value: (s) => s.host || s.device, size: 130 },
      { id: 'client', header: 'Client', value: (s) => s.client, size: 100 },
      { id: 'name', header: 'Server', value: (s) => s.name, size: 120 },
      { id: 'target', header: 'Runs', value: (s) => s.target, cell: (s) => <code>{s.target}</code>, size: 260 },
      { id: 'env', header: 'Environment names', value: (s) => s.envKeys.join(', '), size: 160 },
      {
        id: 'catalog',
        header: 'In the catalogue',
        value: (s) => s.inCatalog ?? '',
        cell: (s) => (s.inCatalog ? <Badge tone="info">{s.inCatalog}</Badge> : <Badge tone="warn">no</Badge>),
        size: 120,
      },
      { id: 'at', header: 'Reported', value: (s) => s.at, cell: (s) => relative(s.at), size: 110 },
    ],
    [],
  );
  const baselineColumns = useMemo<DataColumn<FleetBaseline>[]>(
    () => [
      { id: 'server', header: 'Server', value: (b) => b.server, size: 120 },
      { id: 'version', header: 'Version', value: (b) => b.version, size: 90 },
      { id: 'tool', header: 'Tool', value: (b) => b.tool, size: 160 },
      {
        id: 'agree',
        header: 'Definitions',
        value: (b) => (b.disagree ? 0 : 1),
        cell: (b) => (b.disagree ? <Badge tone="bad">{`${b.hashes.length} different`}</Badge> : <Badge tone="ok">one</Badge>),
        size: 120,
      },
      {
        id: 'hashes',
        header: 'Seen by',
        value: (b) => b.hashes.map((h) => `${shortHash(h.sha256)} ${h.devices}`).join(', '),
        cell: (b) => b.hashes.map((h) => `${shortHash(h.sha256)}: ${plural(h.devices, 'device')}`).join('; '),
        size: 280,
      },
    ],
    [],
  );
  return (
    <>
      <Section title="Shadow servers">
        <p className="muted">Servers the devices' clients run outside Gatehouse (environment variable names only, never values).</p>
        {shadow.error ? (
          <ErrorNote error={shadow.error} onRetry={shadow.reload} />
        ) : !shadow.data ? (
          <Spinner label="Loading shadow servers" />
        ) : shadow.data.shadowServers.length === 0 ? (
          <Empty>No device reported a shadow server.</Empty>
        ) : (
          <DataTable
            rows={shadow.data.shadowServers}
            columns={shadowColumns}
            rowKey={(s) => `${s.device}:${s.client}:${s.name}`}
            label="Shadow servers"
            height={Math.min(400, 60 + shadow.data.shadowServers.length * 34)}
          />
        )}
      </Section>
      <Section title="Tool baselines">
        <p className="muted">Tool definitions per server and version across the fleet; where devices disagree comes first.</p>
        {baselines.error ? (
          <ErrorNote error={baselines.error} onRetry={baselines.reload} />
        ) : !baselines.data ? (
          <Spinner label="Loading baselines" />
        ) : baselines.data.baselines.length === 0 ? (
          <Empty>No device reported tool definitions yet.</Empty>
        ) : (
          <DataTable
            rows={[...baselines.data.baselines].sort((a, b) => Number(b.disagree) - Number(a.disagree))}
            columns={baselineColumns}
            rowKey={(b) => `${b.server}:${b.version}:${b.tool}`}
            label="Tool baselines"
            height={Math.min(400, 60 + baselines.data.baselines.length * 34)}
          />
        )}
      </Section>
    </>
  );
}
