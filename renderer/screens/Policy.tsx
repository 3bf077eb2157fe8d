/** Policy: the bundle in force (version, signer, expiry), its policies, roles and catalog, what changed, and its history. */
import type { PolicyChanges } from '../../src/common/console-api.js';
import { useQuery } from '../api/client.js';
import { Badge, Empty, ErrorNote, KeyValues, Notice, ScreenTitle, Section, Spinner, StateBadge } from '../components/ui.js';
import { relative, shortHash, timestamp } from '../lib/format.js';

function Changes({ changes }: { changes: PolicyChanges }) {
  const groups: [string, string[], string][] = [
    ['Policies added', changes.policies.added, 'ok'],
    ['Policies removed', changes.policies.removed, 'bad'],
    ['Policies changed', changes.policies.changed, 'warn'],
    ['Role mappings added', changes.roles.added, 'ok'],
    ['Role mappings removed', changes.roles.removed, 'bad'],
    ['Role mappings changed', changes.roles.changed, 'warn'],
    ['Servers added to the catalog', changes.servers.added, 'ok'],
    ['Servers removed from the catalog', changes.servers.removed, 'bad'],
    ['Tools added', changes.tools.added, 'ok'],
    ['Tools removed', changes.tools.removed, 'bad'],
    ['Tools pinned to a new definition', changes.tools.repinned, 'warn'],
  ];
  const any = groups.some(([, items]) => items.length > 0);
  return (
    <Section title={`What changed from v${changes.from} to v${changes.to}`}>
      {!any ? (
        <p className="muted">The same policies, roles and catalog, re-signed.</p>
      ) : (
        <ul className="plain">
          {groups
            .filter(([, items]) => items.length > 0)
            .map(([label, items, tone]) => (
              <li key={label}>
                <strong>{label}:</strong>{' '}
                {items.map((i) => (
                  <Badge key={i} tone={tone as 'ok'}>
                    {i}
                  </Badge>
                ))}
              </li>
            ))}
        </ul>
      )}
    </Section>
  );
}

export function Policy() {
  const report = useQuery((c) => c.call('policy.status'), [], { live: ['policy', 'audit'] });
  const r = report.data;
  const s = r?.status;
  return (
    <>
      <ScreenTitle lead="The rules your organisation signed, and what Gatehouse does with them.">Policy</ScreenTitle>
      <ErrorNote error={report.error} onRetry={report.reload} />
      {!r || !s ? (
        <Spinner label="Loading the policy" />
      ) : (
        <>
          <Section title="In force">
            {s.mode === 'unmanaged' ? (
              <Notice>
                Unmanaged: no policy bundle is in force{s.reason ? ` (${s.reason})` : ''}. The OS user may call every configured server, and every audit record
                says <code>unmanaged</code>.
              </Notice>
            ) : null}
            {s.state === 'fail-closed' ? (
              <Notice tone="bad">
                <strong>Failing closed:</strong> {s.reason}. Nothing is listed or callable until a valid bundle is in force; your administrator publishes one.
              </Notice>
            ) : null}
            {s.notice ? <Notice tone="warn">{s.notice}</Notice> : null}
            <KeyValues
              label="Policy in force"
              items={[
                ['Mode', <StateBadge key="m" state={s.state ?? s.mode} label={s.state ?? s.mode} />],
                ['Bundle version', s.version ? `v${s.version}` : '—'],
                ['Signed by', s.signedBy?.length ? s.signedBy.join(', ') : '—'],
                ['Issued', s.issuedAt ? timestamp(s.issuedAt) : '—'],
                ['Expires', s.expiresAt ? `${timestamp(s.expiresAt)} (${relative(s.expiresAt)})` : '—'],
                ['From', s.source ?? '—'],
                [
                  'Fetched from',
                  s.url
                    ? `${s.url}${s.lastFetch ? ` — last ${s.lastFetch.ok ? 'fetched' : `failed (${s.lastFetch.error})`} ${relative(s.lastFetch.at)}` : ''}`
                    : '—',
                ],
                ['Required by the managed settings', s.required === undefined ? '—' : s.required ? 'yes' : 'no'],
                ['Digest', r.bundle ? <code key="d">{shortHash(r.bundle.digest)}</code> : '—'],
              ]}
            />
            {s.lastRejection ? (
              <Notice tone="warn">
                Last bundle refused {relative(s.lastRejection.at)} ({s.lastRejection.source}): {s.lastRejection.code} — {s.lastRejection.reason}
              </Notice>
            ) : null}
          </Section>
          {r.changes ? <Changes changes={r.changes} /> : null}
          {r.bundle ? (
            <>
              <Section title="Policies">
                <div className="table-wrap">
                  <table>
                    <caption className="visually-hidden">Policies of the bundle</caption>
                    <thead>
                      <tr>
                        <th scope="col">Policy</th>
                        <th scope="col">Effect</th>
                        <th scope="col">File</th>
                        <th scope="col">Obligations</th>
                        <th scope="col">Reads arguments</th>
                      </tr>
                    </thead>
                    <tbody>
                      {r.bundle.policies.map((p) => (
                        <tr key={p.id}>
                          <th scope="row">
                            <code>{p.id}</code>
                          </th>
                          <td>
                            <Badge tone={p.effect === 'permit' ? 'ok' : 'bad'}>{p.effect}</Badge>
                          </td>
                          <td>{p.file}</td>
                          <td>{[p.approval ? `approval by ${p.approval}` : '', p.quota ? `quota ${p.quota}` : ''].filter(Boolean).join(', ') || '—'}</td>
                          <td>{p.readsArguments ? 'yes' : 'no'}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              </Section>
              <div className="cards">
                <Section title="Groups and roles">
                  {r.bundle.roles.length === 0 ? (
                    <Empty>No group is mapped to a role.</Empty>
                  ) : (
                    <KeyValues label="Group to role mapping" items={r.bundle.roles.map((m) => [m.group, m.roles.join(', ')])} />
                  )}
                </Section>
                <Section title="Approved servers">
                  {r.bundle.catalog.length === 0 ? (
                    <Empty>The catalog approves no server.</Empty>
                  ) : (
                    <KeyValues label="Catalog" items={r.bundle.catalog.map((c) => [c.server, `${c.tools} pinned tools`])} />
                  )}
                </Section>
              </div>
            </>
          ) : null}
          <Section title="History">
            {r.history.length === 0 ? (
              <Empty>No policy change is recorded in the audit log.</Empty>
            ) : (
              <ul className="plain timeline">
                {r.history.map((h, i) => (
                  <li key={`${h.at}-${i}`}>
                    <time dateTime={h.at}>{timestamp(h.at)}</time>{' '}
                    <Badge tone={h.type === 'policy.rejected' ? 'bad' : 'info'}>{h.type === 'policy.rejected' ? 'refused' : 'changed'}</Badge> {h.reason}
                    {h.code ? <span className="muted"> ({h.code})</span> : null}
                  </li>
                ))}
              </ul>
            )}
          </Section>
        </>
      )}
    </>
  );
}
