/**
 * What a desktop notification says about a waiting question: what is asked and where to answer,
 * never how. A notification's text travels through places a same-user process can read (the
 * notifier's command line, the session bus, the desktop's notification history), so it holds no
 * link, key or code that answers anything; the pairing code it may show is the one the asking
 * client prints itself.
 */
import type { AnswerSurface } from '../../common/questions.js';
import type { DeskQuestion } from './desk.js';

const WHERE: Record<AnswerSurface, string> = {
  'desktop app': 'the Gatehouse window',
  terminal: 'the terminal where Gatehouse runs',
  'question page': 'the terminal where Gatehouse runs',
  test: 'the test',
};

export function noticeText(entry: DeskQuestion, answerWhere: readonly AnswerSurface[]): { title: string; body: string } {
  const places = [...new Set(answerWhere.map((s) => WHERE[s]))];
  const lines = [
    ...(entry.question.code ? [`The client shows the code ${entry.question.code}.`] : []),
    `Answer in ${places.join(' or ')} before ${new Date(entry.deadline).toLocaleTimeString('en-GB', { hour12: false })}.`,
  ];
  return { title: `Gatehouse: ${entry.question.title}`, body: lines.join('\n') };
}
