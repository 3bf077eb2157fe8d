/**
 * Audit: the local tamper-evident log, filtered; its chain, signing and sync state with a
 * verification on demand; calls over time per tool or per client; every matching event in a
 * virtualized table.
 */
import { AUDIT_EVENT_TYPES } from '../../src/common/audit-events.js';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import type { AuditRow, AuditVerifyResult } from '../../src/common/console-api.js';
import type { DaemonStatus } from '../../src/common/status.js';
import { useLive, useQuery } from '../api/client.js';
import { CallsChart } from '../components/Chart.js';
import { DataTable, type DataColumn } from '../components/DataTable.js';
import { ActionButton, Badge, Empty, ErrorNote, KeyValues, Labeled, Notice, ScreenTitle, Section, Spinner, StateBadge } from '../components/ui.js';
import { plural, relative, shortHash, timestamp } from '../lib/format.js';

const RANGES: { id: string; label: string; ms?: number }[] = [
  { id: '15m', label: 'last 15 minutes', ms: 15 * 60_000 },
  { id: '1h', label: 'last hour', ms: 3_600_000 },
  { id: '24h', label: 'last 24 hours', ms: 86_400_000 },
  { id: '7d', label: 'last 7 days', ms: 7 * 86_400_000 },
  { id: '30d', label: 'last 30 days', ms: 30 * 86_400_000 },
  { id: 'all', label: 'all time' },
];
const DECISIONS = ['allowed', 'denied', 'failed', 'ok', 'error', 'interrupted'];
const TYPES = AUDIT_EVENT_TYPES;

interface Filters {
  range: string;
  client: string;
  server: string;
  tool: string;
  decision: string;
  type: string;
  limit: number;
}
const DEFAULTS: Filters = { range: '24h', client: '', server: '', tool: '', decision: '', type: '', limit: 2000 };

function toParams(f: Filters, now: number) {
  const range = RANGES.find((r) => r.id === f.range);
  return {
    ...(range?.ms ? { from: new Date(now - range.ms).toISOString() } : {}),
    ...(f.client ? { client: f.client } : {}),
    ...(f.server ? { server: f.server } : {}),
    ...(f.tool ? { tool: f.tool } : {}),
    ...(f.decision ? { decision: f.decision as 'allowed' } : {}),
    ...(f.type ? { type: f.type } : {}),
  };
}

/** The aggregate name when the event names both parts; an unknown tool's event names only what was asked for. */
function toolOf(r: AuditRow): string {
  return r.server && r.name ? `${r.server}__${r.name}` : r.name || r.server || '';
}

function tone(decision: string | undefined) {
  return decision === 'ok' || decision === 'allowed' ? 'ok' : decision === 'denied' ? 'warn' : decision ? 'bad' : 'muted';
}

const COLUMNS: DataColumn<AuditRow>[] = [
  { id: 'seq', header: '#', size: 64, value: (r) => r.seq },
  { id: 'at', header: 'Time', size: 160, value: (r) => r.at, cell: (r) => timestamp(r.at) },
  { id: 'type', header: 'Event', size: 130, value: (r) => r.type },
  { id: 'client', header: 'Client', size: 120, value: (r) => r.client ?? '' },
  { id: 'tool', header: 'Tool', size: 200, value: (r) => toolOf(r) },
  {
    id: 'decision',
    header: 'Outcome',
    size: 96,
    value: (r) => r.decision ?? '',
    cell: (r) => (r.decision ? <Badge tone={tone(r.decision)}>{r.decision}</Badge> : ''),
  },
  { id: 'latency', header: 'ms', size: 60, value: (r) => r.latencyMs ?? -1, cell: (r) => (r.latencyMs !== undefined ? String(r.latencyMs) : '') },
  { id: 'why', header: 'Why', size: 180, value: (r) => r.code ?? r.reason ?? '' },
];

function ChainPanel({ status }: { status: DaemonStatus }) {
  const { client } = useLive();
  const a = status.audit;
  const [result, setResult] = useState<AuditVerifyResult>();
  return (
    <Section
      title="Chain and sync"
      actions={
        <ActionButton label="Verify the whole chain" busyLabel="Verifying every event…" run={async () => setResult(await client.call('audit.verify'))} />
      }
    >
      <KeyValues
        label="Chain and sync state"
        items={[
          ['Records', `${a.records.toLocaleString('en')} (${(a.committed ?? a.records).toLocaleString('en')} committed)`],
          [
            'Writable',
            a.healthy === false ? (
              <Badge tone="bad">
                no since {timestamp(a.unavailableSince)}: {a.error}. Calls are refused until the log can be written (free disk space).
              </Badge>
            ) : (
              <Badge tone="ok">yes</Badge>
            ),
          ],
          ['Device', a.device ?? '—'],
          [
            'Signed checkpoints',
            a.signing?.state === 'ok'
              ? `by key ${a.signing.keyId ?? ''}${a.lastCheckpoint ? `, last at event ${a.lastCheckpoint.seq} (${relative(a.lastCheckpoint.at)})` : ''}`
              : `${a.signing?.state ?? 'unknown'}${a.signing?.error ? `: ${a.signing.error}` : ''}`,
          ],
          [
            'Hub',
            a.sync ? (
              <span key="sync">
                <StateBadge state={a.sync.state === 'idle' ? 'ready' : a.sync.state === 'refused' ? 'crash-looping' : 'starting'} label={a.sync.state} />{' '}
                {a.sync.hub}:{' '}
                {a.sync.lagRecords === 0 ? 'in sync' : `${plural(a.sync.lagRecords, 'event')} not yet acknowledged (oldest ${a.sync.lagSeconds} s)`}
                {a.sync.lastError ? ` — ${a.sync.lastError}` : ''}
              </span>
            ) : (
              (a.hubError ?? 'not enrolled with a hub (gatehouse audit enrol)')
            ),
          ],
          ['Acknowledged by the hub up to', a.hubAcked ? `event ${a.hubAcked}` : '—'],
        ]}
      />
      {a.sync?.flags?.length ? (
        <Notice tone="bad">The hub flagged: {a.sync.flags.map((f) => `${f.kind} at event ${f.seq}: ${f.message}`).join('; ')}</Notice>
      ) : null}
      {result ? (
        <div role="status">
          {result.ok ? (
            <Notice tone="ok">
              Intact: {plural(result.events, 'event')}
              {result.events ? ` (${result.firstSeq}–${result.lastSeq})` : ''} checked, {result.checkpoints.verified} of{' '}
              {plural(result.checkpoints.total, 'signed checkpoint')} verified, in {result.elapsedMs} ms.
            </Notice>
          ) : (
            <Notice tone="bad">
              <p>
                <strong>The audit log has been changed or damaged.</strong> {plural(result.problems.length, 'problem')}:
              </p>
              <ul>
                {result.problems.slice(0, 10).map((p) => (
                  <li key={`${p.seq}-${p.code}`}>
                    event {p.seq}: {p.code} — {p.message}
                  </li>
                ))}
              </ul>
              <p className="advice">Keep the file as evidence and tell your security team; the hub's copy shows what was there.</p>
            </Notice>
          )}
          {result.warnings.map((w) => (
            <Notice key={w} tone="warn">
              {w}
            </Notice>
          ))}
        </div>
      ) : null}
    </Section>
  );
}

/** One event's details, beside the table (not below it, off screen). Escape or Close puts them away. */
function EventDetails({ event: open, onClose }: { event: AuditRow; onClose: () => void }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [open.seq]);
  return (
    <aside className="details" aria-labelledby="event-details-title" onKeyDown={(e) => e.key === 'Escape' && onClose()}>
      <div className="details-head">
        <h3 id="event-details-title" tabIndex={-1} ref={heading}>
          Event {open.seq}
        </h3>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
      <KeyValues
        label={`Event ${open.seq}`}
        items={[
          ['Time', `${timestamp(open.at)} (${relative(open.at)})`],
          ['Event', open.type],
          ['User', open.user ?? '—'],
          ['Client', open.client ?? '—'],
          ['Tool', toolOf(open) || '—'],
          ['Outcome', open.decision ?? '—'],
          ['Stage and code', [open.stage, open.code].filter(Boolean).join(' · ') || '—'],
          ['Reason', open.reason ?? '—'],
          [
            'Approval',
            open.approval
              ? [
                  open.approval.decision ?? (open.approval.required ? 'asked' : 'not needed'),
                  open.approval.scope,
                  open.approval.by ? `by ${open.approval.by}` : '',
                ]
                  .filter(Boolean)
                  .join(', ')
              : '—',
          ],
          ['Latency', open.latencyMs !== undefined ? `${open.latencyMs} ms` : '—'],
          [
            'Policy',
            open.policyMode
              ? `${open.policyMode}${open.policyVersion ? ` v${open.policyVersion}` : ''}${open.policyIds?.length ? ` (${open.policyIds.join(', ')})` : ''}`
              : '—',
          ],
          [
            'Hash',
            <code key="h" title={open.hash}>
              {shortHash(open.hash)}…
            </code>,
          ],
          ['Call', open.callId ?? '—'],
        ]}
      />
      {open.detail ? <pre className="code">{JSON.stringify(open.detail, null, 2)}</pre> : null}
    </aside>
  );
}

export function Audit() {
  const { status } = useLive();
  const [draft, setDraft] = useState<Filters>(DEFAULTS);
  const [filters, setFilters] = useState<Filters>(DEFAULTS);
  const [by, setBy] = useState<'tool' | 'client'>('tool');
  const [open, setOpen] = useState<AuditRow>();
  const [applied, setApplied] = useState(0);
  const events = useQuery((c) => c.call('audit.query', { ...toParams(filters, Date.now()), limit: filters.limit }), [filters, applied], { live: ['audit'] });
  const chartRange = filters.range === 'all' ? '30d' : filters.range;
  const timeline = useQuery(
    (c) => {
      const { type: _type, from, ...rest } = toParams({ ...filters, range: chartRange }, Date.now());
      // Fitted to the first call in the range: a burst an hour ago is drawn with its shape, not as one sliver of a day.
      return c.call('audit.timeline', { ...rest, from: from!, by, buckets: 60, fit: true });
    },
    [filters, by, applied],
    { live: ['audit'] },
  );
  const set = <K extends keyof Filters>(key: K, value: Filters[K]) => setDraft((d) => ({ ...d, [key]: value }));
  const apply = (event: FormEvent) => {
    event.preventDefault();
    setFilters(draft);
    setApplied((n) => n + 1);
    setOpen(undefined);
  };
  const rows = events.data?.events ? [...events.data.events].reverse() : [];
  return (
    <>
      <ScreenTitle lead="What your agents did, as the tamper-evident local log records it.">Audit</ScreenTitle>
      {status ? <ChainPanel status={status} /> : null}
      <Section title="Filters">
        <form className="filters" onSubmit={apply} aria-label="Audit filters">
          <Labeled label="Time">
            {(id) => (
              <select id={id} value={draft.range} onChange={(e) => set('range', e.target.value)}>
                {RANGES.map((r) => (
                  <option key={r.id} value={r.id}>
                    {r.label}
                  </option>
                ))}
              </select>
            )}
          </Labeled>
          <Labeled label="Client">
            {(id) => <input id={id} value={draft.client} onChange={(e) => set('client', e.target.value)} list="audit-clients" autoComplete="off" />}
          </Labeled>
          <datalist id="audit-clients">
            {[...new Set(status?.clients.map((c) => c.name) ?? [])].map((c) => (
              <option key={c} value={c} />
            ))}
          </datalist>
          <Labeled label="Server">
            {(id) => (
              <select id={id} value={draft.server} onChange={(e) => set('server', e.target.value)}>
                <option value="">any</option>
                {status?.servers.map((s) => (
                  <option key={s.name}>{s.name}</option>
                ))}
              </select>
            )}
          </Labeled>
          <Labeled label="Tool">
            {(id) => <input id={id} value={draft.tool} onChange={(e) => set('tool', e.target.value)} placeholder="name on its server" autoComplete="off" />}
          </Labeled>
          <Labeled label="Outcome">
            {(id) => (
              <select id={id} value={draft.decision} onChange={(e) => set('decision', e.target.value)}>
                <option value="">any</option>
                {DECISIONS.map((d) => (
                  <option key={d}>{d}</option>
                ))}
              </select>
            )}
          </Labeled>
          <Labeled label="Event">
            {(id) => (
              <select id={id} value={draft.type} onChange={(e) => set('type', e.target.value)}>
                <option value="">any</option>
                {TYPES.map((t) => (
                  <option key={t}>{t}</option>
                ))}
              </select>
            )}
          </Labeled>
          <Labeled label="At most">
            {(id) => (
              <select id={id} value={draft.limit} onChange={(e) => set('limit', Number(e.target.value))}>
                {[500, 2000, 10000].map((n) => (
                  <option key={n} value={n}>
                    {n.toLocaleString('en')}
                  </option>
                ))}
              </select>
            )}
          </Labeled>
          <div className="form-actions">
            <button type="submit" className="primary">
              Apply filters
            </button>
            <button
              type="button"
              onClick={() => {
                setDraft(DEFAULTS);
                setFilters(DEFAULTS);
                setOpen(undefined);
              }}
            >
              Clear
            </button>
          </div>
        </form>
      </Section>
      <Section
        title="Calls over time"
        actions={
          <fieldset className="segmented">
            <legend className="visually-hidden">Count calls per</legend>
            {(['tool', 'client'] as const).map((b) => (
              <label key={b}>
                <input type="radio" name="chart-by" value={b} checked={by === b} onChange={() => setBy(b)} /> per {b}
              </label>
            ))}
          </fieldset>
        }
      >
        <ErrorNote error={timeline.error} onRetry={timeline.reload} />
        {timeline.data ? <CallsChart timeline={timeline.data} /> : <Spinner label="Counting calls" />}
        {filters.range === 'all' ? <p className="muted small">The chart shows the last 30 days.</p> : null}
      </Section>
      <Section title="Events">
        <ErrorNote error={events.error} onRetry={events.reload} />
        {!events.data ? (
          <Spinner label="Loading events" />
        ) : rows.length === 0 ? (
          <Empty>No event matches these filters.</Empty>
        ) : (
          <>
            <p className="muted" role="status">
              {plural(rows.length, 'event')}, newest first
              {events.data.more ? ` (the newest ${filters.limit.toLocaleString('en')}; narrow the filters to see older ones)` : ''}.
            </p>
            <div className={open ? 'split' : 'split split-closed'}>
              <DataTable
                rows={rows}
                columns={COLUMNS}
                rowKey={(r) => String(r.seq)}
                label="Audit events"
                onOpen={setOpen}
                rowLabel={(r) => `Event ${r.seq}, ${r.type}${r.decision ? `, ${r.decision}` : ''}`}
                selected={open ? String(open.seq) : undefined}
              />
              {open ? <EventDetails event={open} onClose={() => setOpen(undefined)} /> : null}
            </div>
          </>
        )}
      </Section>
    </>
  );
}
