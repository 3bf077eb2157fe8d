/** Tools: every tool of every running server, who may see and call it, its pin and its annotations. */
import { useMemo, useState } from 'react';
import type { ToolEntry } from '../../src/common/console-api.js';
import { useQuery } from '../api/client.js';
import { Badge, Empty, ErrorNote, KeyValues, Labeled, Notice, ScreenTitle, Section, Spinner } from '../components/ui.js';
import { plural, shortHash } from '../lib/format.js';

const PIN_LABELS: Record<ToolEntry['pin']['state'], [string, 'ok' | 'bad' | 'warn' | 'muted']> = {
  unpinned: ['not pinned (unmanaged)', 'muted'],
  match: ['matches its pin', 'ok'],
  changed: ['changed since pinned', 'bad'],
  'not-in-catalog': ['not in the catalog', 'warn'],
};

function Hints({ tool }: { tool: ToolEntry }) {
  const a = tool.annotations;
  const readOnly = tool.catalog ? tool.catalog.readOnly : a.readOnlyHint === true;
  const destructive = tool.catalog ? tool.catalog.destructive : a.destructiveHint === true;
  return (
    <>
      {readOnly ? <Badge tone="ok">read-only</Badge> : null} {destructive ? <Badge tone="bad">destructive</Badge> : null}{' '}
      {a.idempotentHint === true ? <Badge tone="info">idempotent</Badge> : null} {a.openWorldHint === true ? <Badge tone="info">open world</Badge> : null}
      {tool.catalog?.tags.map((t) => (
        <Badge key={t} tone="muted">
          {t}
        </Badge>
      ))}
    </>
  );
}

function ToolDetail({ tool }: { tool: ToolEntry }) {
  return (
    <Section title={tool.exposedAs} headingLevel={3}>
      {tool.description ? <p>{tool.description}</p> : null}
      <KeyValues
        label={`Details of ${tool.exposedAs}`}
        items={[
          ['Server', tool.server],
          ['Name on its server', tool.name],
          ['Arguments', tool.inputs.length ? tool.inputs.join(', ') : 'none'],
          ['Definition hash', <code key="h">{tool.hash}</code>],
          ['Pinned hash', tool.pin.pinned ? <code key="p">{tool.pin.pinned}</code> : '—'],
          ['Annotations (as the server says)', <code key="a">{JSON.stringify(tool.annotations)}</code>],
        ]}
      />
      {tool.pin.state === 'changed' ? (
        <Notice tone="bad">
          This tool's definition changed since the policy bundle pinned it ({shortHash(tool.pin.pinned)} → {shortHash(tool.hash)}). It is hidden and refused
          until an administrator pins the new definition (<code>gatehouse policy pin</code>) and publishes a new bundle.
        </Notice>
      ) : null}
    </Section>
  );
}

export function Tools() {
  const report = useQuery((c) => c.call('tools.list'), [], { live: ['tools', 'clients', 'policy'] });
  const [text, setText] = useState('');
  const [server, setServer] = useState('');
  const [onlyHidden, setOnlyHidden] = useState(false);
  const [open, setOpen] = useState<string>();
  const tools = report.data?.tools ?? [];
  const servers = useMemo(() => [...new Set(tools.map((t) => t.server))], [tools]);
  const shown = tools.filter(
    (t) =>
      (!server || t.server === server) &&
      (!onlyHidden || !t.visibleToYou) &&
      (!text || `${t.exposedAs} ${t.description ?? ''}`.toLowerCase().includes(text.toLowerCase())),
  );
  const managed = report.data?.mode === 'managed';
  const detail = tools.find((t) => t.exposedAs === open);
  return (
    <>
      <ScreenTitle lead="Every tool your servers offer, and who may see and call it.">Tools</ScreenTitle>
      <ErrorNote error={report.error} onRetry={report.reload} />
      {report.data?.note ? <Notice>{report.data.note}</Notice> : null}
      {report.data ? (
        <p>
          You are <strong>{report.data.you}</strong>
          {managed ? (
            <>
              {' '}
              with the roles {report.data.yourRoles.length ? report.data.yourRoles.join(', ') : 'none'} (policy v{report.data.version})
            </>
          ) : null}
          .
        </p>
      ) : null}
      <div className="toolbar" role="search" aria-label="Filter the tools">
        <label>
          Find <input type="search" value={text} onChange={(e) => setText(e.target.value)} />
        </label>
        <Labeled label="Server">
          {(id) => (
            <select id={id} value={server} onChange={(e) => setServer(e.target.value)}>
              <option value="">all</option>
              {servers.map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          )}
        </Labeled>
        <label>
          <input type="checkbox" checked={onlyHidden} onChange={(e) => setOnlyHidden(e.target.checked)} /> Only tools hidden from me
        </label>
        <span className="muted" role="status">
          {plural(shown.length, 'tool')}
        </span>
      </div>
      {!report.data ? (
        <Spinner label="Loading tools" />
      ) : shown.length === 0 ? (
        <Empty>{tools.length === 0 ? 'No running server lists tools yet.' : 'No tool matches.'}</Empty>
      ) : (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Tools and who may use them</caption>
            <thead>
              <tr>
                <th scope="col">Tool</th>
                <th scope="col">You</th>
                {managed ? <th scope="col">Roles that may use it</th> : null}
                <th scope="col">Paired clients that see it</th>
                <th scope="col">Pin</th>
                <th scope="col">Hints</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((t) => {
                const [pinLabel, pinTone] = PIN_LABELS[t.pin.state];
                const clients = t.clients.filter((c) => c.visible).map((c) => c.name);
                return (
                  <tr key={t.exposedAs} className={open === t.exposedAs ? 'selected' : undefined}>
                    <th scope="row">
                      <button
                        type="button"
                        className="link"
                        aria-expanded={open === t.exposedAs}
                        onClick={() => setOpen(open === t.exposedAs ? undefined : t.exposedAs)}
                      >
                        <code>{t.exposedAs}</code>
                      </button>
                    </th>
                    <td>
                      {t.visibleToYou ? (
                        <Badge tone="ok">may call</Badge>
                      ) : (
                        <Badge tone="warn" title={t.hiddenBecause}>
                          hidden
                        </Badge>
                      )}
                      {!t.visibleToYou && t.hiddenBecause ? <div className="muted small">{t.hiddenBecause}</div> : null}
                    </td>
                    {managed ? (
                      <td>
                        {(t.roles ?? [])
                          .filter((r) => r.visible)
                          .map((r) => r.role)
                          .join(', ') || <span className="muted">none</span>}
                        {(t.roles ?? []).some((r) => r.approval) ? <div className="muted small">needs approval for some</div> : null}
                      </td>
                    ) : null}
                    <td>
                      {t.clients.length === 0 ? (
                        <span className="muted">no paired client</span>
                      ) : clients.length ? (
                        clients.join(', ')
                      ) : (
                        <span className="muted">none</span>
                      )}
                    </td>
                    <td>
                      <Badge tone={pinTone}>{pinLabel}</Badge>
                    </td>
                    <td>
                      <Hints tool={t} />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {detail ? <ToolDetail tool={detail} /> : null}
    </>
  );
}
