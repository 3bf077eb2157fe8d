/**
 * The human channel in the desktop app: a question window (one pairing consent or approval, always
 * on top) and the form it shows, which the console window's inbox (Approvals) uses too. Main checks
 * that an answer comes from that question's own window, or from the console window, and the desk
 * checks it against what the question offered. Headless there is no such window: questions are
 * answered in the daemon's terminal or on the question page.
 */
import { useEffect, useId, useState, type FormEvent } from 'react';
import type { BridgeResult, QuestionAnswer, WaitingQuestion } from '../../src/common/console-api.js';
import { KeyValues, Labeled, Notice, Spinner } from '../components/ui.js';
import { relative } from '../lib/format.js';

/** A question window: its own question, its own answer. */
export function Question() {
  const bridge = window.gatehouse;
  const [question, setQuestion] = useState<WaitingQuestion>();
  const [error, setError] = useState<string>();
  const [sent, setSent] = useState(false);
  useEffect(() => {
    if (!bridge) return;
    void bridge.human.question().then((answer) => {
      if (!answer.ok) return setError(answer.error.message);
      setQuestion(answer.result as WaitingQuestion);
    });
  }, [bridge]);
  if (!bridge)
    return <Notice>This page is the desktop app's question window. Headless, questions are answered in the daemon's terminal or on its question page.</Notice>;
  if (error) return <Notice tone="bad">{error}</Notice>;
  if (!question) return <Spinner label="Loading the question" />;
  if (sent) return <Notice tone="ok">Your answer was recorded. This window closes by itself.</Notice>;
  return <QuestionForm question={question} send={(answer) => bridge.human.answer(answer)} onSent={() => setSent(true)} />;
}

/** Every fact of a question, the code to compare, and the answers it offers. */
export function QuestionForm({
  question,
  send: deliver,
  onSent,
}: {
  question: WaitingQuestion;
  send: (answer: QuestionAnswer) => Promise<BridgeResult>;
  onSent: () => void;
}) {
  const [error, setError] = useState<string>();
  const [scope, setScope] = useState<'all' | 'read-only' | 'listed'>('read-only');
  const [servers, setServers] = useState<string[]>([]);
  const [tools, setTools] = useState<string[]>([]);
  const [expiry, setExpiry] = useState<number | undefined>(question.scope?.expiryDays[0]);
  const [choice, setChoice] = useState<string | undefined>(question.choices?.[0]?.id);
  const titleId = useId();

  const send = async (answer: QuestionAnswer) => {
    const result = await deliver(answer);
    if (result.ok) onSent();
    else setError(result.error.message);
  };
  const approve = (event: FormEvent) => {
    event.preventDefault();
    if (question.scope) {
      if (scope === 'listed' && servers.length === 0 && tools.length === 0) return setError('Tick at least one server or tool, or choose another scope.');
      void send({
        decision: 'approve',
        scope: {
          kind: scope,
          servers: scope === 'listed' ? servers : [],
          tools: scope === 'listed' ? tools : [],
          expiryDays: expiry ?? question.scope.expiryDays[0]!,
        },
      });
    } else void send({ decision: 'approve', ...(choice ? { choice } : {}) });
  };
  const toggle = (list: string[], set: (v: string[]) => void, value: string) => set(list.includes(value) ? list.filter((v) => v !== value) : [...list, value]);

  return (
    <form onSubmit={approve} aria-labelledby={titleId} className="question">
      <h1 id={titleId} tabIndex={-1}>
        {question.title}
      </h1>
      {error ? <Notice tone="bad">{error}</Notice> : null}
      <KeyValues label="What is asked" items={question.facts.map((f) => [f.label, f.value])} />
      {question.code ? (
        <p>
          Check that the client shows the same code: <code className="big">{question.code}</code>. If it does not, decline.
        </p>
      ) : null}
      {question.scope ? (
        <>
          <fieldset>
            <legend>What may this client do?</legend>
            {(
              [
                ['all', 'All my tools'],
                ['read-only', 'Read-only tools'],
                ['listed', 'Only what I tick below'],
              ] as const
            ).map(([value, label]) => (
              <label key={value} className="choice">
                <input type="radio" name="scope" value={value} checked={scope === value} onChange={() => setScope(value)} /> {label}
              </label>
            ))}
            <ul className="plain">
              {question.scope.servers.map((s) => (
                <li key={s.name}>
                  <label className="choice">
                    <input
                      type="checkbox"
                      checked={servers.includes(s.name)}
                      disabled={scope !== 'listed'}
                      onChange={() => toggle(servers, setServers, s.name)}
                    />{' '}
                    all of <strong>{s.name}</strong>
                  </label>
                  <ul className="plain indent">
                    {s.tools.map((t) => (
                      <li key={t}>
                        <label className="choice">
                          <input
                            type="checkbox"
                            checked={tools.includes(`${s.name}__${t}`)}
                            disabled={scope !== 'listed'}
                            onChange={() => toggle(tools, setTools, `${s.name}__${t}`)}
                          />{' '}
                          {t}
                        </label>
                      </li>
                    ))}
                  </ul>
                </li>
              ))}
            </ul>
          </fieldset>
          <Labeled label="Credential valid for">
            {(id) => (
              <select id={id} value={expiry} onChange={(e) => setExpiry(Number(e.target.value))}>
                {question.scope!.expiryDays.map((d) => (
                  <option key={d} value={d}>
                    {d} day{d === 1 ? '' : 's'}
                  </option>
                ))}
              </select>
            )}
          </Labeled>
        </>
      ) : null}
      {question.choices ? (
        <fieldset>
          <legend>Answer</legend>
          {question.choices.map((c) => (
            <label key={c.id} className="choice">
              <input type="radio" name="choice" value={c.id} checked={choice === c.id} onChange={() => setChoice(c.id)} /> {c.label}
            </label>
          ))}
        </fieldset>
      ) : null}
      <p className="muted">Unanswered, this is refused {relative(question.deadline)}.</p>
      <div className="form-actions">
        <button type="submit" className="primary">
          Approve
        </button>
        <button type="button" className="danger" onClick={() => void send({ decision: 'decline' })}>
          Decline
        </button>
      </div>
    </form>
  );
}
