/**
 * Approvals: the calls waiting for the person's answer, and the answers given. Answering happens
 * only in the human channel (the desktop app's popup, or the page linked from the daemon's
 * terminal), never through anything an agent can reach; this screen shows, it does not answer.
 */
import type { AuditRow } from '../../src/common/console-api.js';
import { useLive, useQuery } from '../api/client.js';
import { Badge, Empty, ErrorNote, Notice, ScreenTitle, Section, Spinner } from '../components/ui.js';
import { relative, timestamp } from '../lib/format.js';

/** "approved once", "approved for this session", "declined", "timed out"… */
function answerLabel(e: AuditRow): string {
  const a = e.approval;
  if (e.decision === 'allowed') return a?.scope === 'session' ? 'approved for this session' : 'approved once';
  if (a?.decision === 'timeout') return 'nobody answered';
  if (a?.decision === 'withdrawn') return 'withdrawn';
  return a?.by ? 'declined' : 'refused';
}

export function Approvals() {
  const { status } = useLive();
  const history = useQuery((c) => c.call('audit.query', { type: 'approval.decided', limit: 200 }), [], { live: true });
  const approvals = status?.approvals;
  return (
    <>
      <ScreenTitle lead="Calls your policy asks you to approve before they run.">Approvals</ScreenTitle>
      {!approvals ? (
        <Notice>This Gatehouse asks for no approvals.</Notice>
      ) : (
        <Section title="Waiting for you">
          <p className="muted">
            Answer each in its approval window (or the page linked from the desktop notification). Unanswered, a request is refused after {approvals.timeoutSeconds} s. {approvals.sessionGrants > 0 ? `${approvals.sessionGrants} "for this session" answers are in force.` : ''}
          </p>
          {approvals.pending.length === 0 ? (
            <Empty>No call waits for your approval.</Empty>
          ) : (
            <div className="table-wrap">
              <table>
                <caption className="visually-hidden">Calls waiting for approval</caption>
                <thead>
                  <tr>
                    <th scope="col">Tool</th>
                    <th scope="col">Client</th>
                    <th scope="col">User</th>
                    <th scope="col">Why</th>
                    <th scope="col">Asked</th>
                    <th scope="col">Refused at</th>
                  </tr>
                </thead>
                <tbody>
                  {approvals.pending.map((p) => (
                    <tr key={p.id}>
                      <th scope="row">
                        <code>
                          {p.server}__{p.name}
                        </code>
                      </th>
                      <td>{p.client}</td>
                      <td>{p.user}</td>
                      <td>{p.reasons.join('; ')}</td>
                      <td>{relative(p.askedAt)}</td>
                      <td>{timestamp(p.deadline)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Section>
      )}
      <Section title="Answers given">
        <ErrorNote error={history.error} onRetry={history.reload} />
        {!history.data ? (
          <Spinner label="Loading" />
        ) : history.data.events.length === 0 ? (
          <Empty>No approval was asked yet.</Empty>
        ) : (
          <ul className="plain timeline">
            {[...history.data.events].reverse().map((e) => (
              <li key={e.seq}>
                <time dateTime={e.at}>{timestamp(e.at)}</time> <Badge tone={e.decision === 'allowed' ? 'ok' : 'warn'}>{answerLabel(e)}</Badge>{' '}
                <code>{e.server && e.name ? `${e.server}__${e.name}` : e.name || ''}</code> {e.client ? `for ${e.client}` : ''} {e.reason ? <span className="muted">— {e.reason}</span> : null}
              </li>
            ))}
          </ul>
        )}
      </Section>
    </>
  );
}
