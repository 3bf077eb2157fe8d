/**
 * Approvals: the questions waiting for the person (approvals and pairing requests), and the
 * answers given. In the desktop app this is an inbox: each waiting question opens here with every
 * fact its own window shows, and an answer goes over the app's IPC like the window's. Served on
 * loopback (`gatehouse daemon --ui`) it shows, and says where to answer: the console there cannot
 * answer anything, so a page an agent opens cannot either.
 */
import { useState } from 'react';
import type { AuditRow, QuestionsReport, WaitingQuestion } from '../../src/common/console-api.js';
import { useLive, useQuery } from '../api/client.js';
import { Badge, Empty, ErrorNote, Notice, ScreenTitle, Section, Spinner } from '../components/ui.js';
import { relative, timestamp } from '../lib/format.js';
import { QuestionForm } from './Question.js';

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
  const waiting = useQuery((c) => c.call('questions.list', {}) as Promise<QuestionsReport>, [], { live: ['questions'] });
  const history = useQuery((c) => c.call('audit.query', { type: 'approval.decided', limit: 200 }), [], { live: ['audit'] });
  const approvals = status?.approvals;
  return (
    <>
      <ScreenTitle lead="Questions only you can answer: calls your policy or your own rules ask about, and clients asking to pair.">Approvals</ScreenTitle>
      <Section title="Waiting for you">
        <ErrorNote error={waiting.error} onRetry={waiting.reload} />
        {!waiting.data ? (
          <Spinner label="Loading" />
        ) : (
          <Waiting report={waiting.data} sessionGrants={approvals?.sessionGrants ?? 0} timeoutSeconds={approvals?.timeoutSeconds} />
        )}
      </Section>
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
                <code>{e.server && e.name ? `${e.server}__${e.name}` : e.name || ''}</code> {e.client ? `for ${e.client}` : ''}{' '}
                {e.reason ? <span className="muted">— {e.reason}</span> : null}
              </li>
            ))}
          </ul>
        )}
      </Section>
    </>
  );
}

function Waiting({ report, sessionGrants, timeoutSeconds }: { report: QuestionsReport; sessionGrants: number; timeoutSeconds: number | undefined }) {
  const inApp = window.gatehouse !== undefined;
  const [open, setOpen] = useState<string>();
  const grants = sessionGrants > 0 ? ` ${sessionGrants} "for this session" answers are in force.` : '';
  const deadline = timeoutSeconds !== undefined ? ` Unanswered, a call is refused after ${timeoutSeconds} s.` : '';
  if (report.answerAt.length === 0) {
    return <Notice tone="bad">Nobody can be asked here: run the daemon in a terminal, or use the desktop app. Until then every question is refused.</Notice>;
  }
  return (
    <>
      <p className="muted">
        {inApp
          ? 'Answer here, or in the window each question opens.'
          : "Answer in the terminal where Gatehouse runs (type the letter it shows), or on the question's page with the code the terminal shows beside it. This console cannot answer."}
        {deadline}
        {grants}
      </p>
      {report.questions.length === 0 ? (
        <Empty>Nothing waits for your answer.</Empty>
      ) : (
        <ul className="plain questions">
          {report.questions.map((q) => (
            <li key={q.id} className="question-item">
              <QuestionSummary question={q} />
              {inApp ? (
                open === q.id ? (
                  <QuestionForm question={q} send={(answer) => window.gatehouse!.human.answerOne(q.id, answer)} onSent={() => setOpen(undefined)} />
                ) : (
                  <button type="button" className="primary" onClick={() => setOpen(q.id)}>
                    Answer…
                  </button>
                )
              ) : report.pageOrigin ? (
                <p>
                  <a href={`${report.pageOrigin}/q/${q.id}`} target="_blank" rel="noreferrer">
                    Open its question page
                  </a>{' '}
                  and type the code shown beside it in the terminal.
                </p>
              ) : null}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

function QuestionSummary({ question }: { question: WaitingQuestion }) {
  return (
    <p>
      <Badge tone="warn">{question.kind === 'pairing' ? 'pairing' : 'approval'}</Badge> <strong>{question.title}</strong>{' '}
      <span className="muted">
        asked {relative(question.askedAt)}, refused at {timestamp(question.deadline)}
      </span>
    </p>
  );
}
