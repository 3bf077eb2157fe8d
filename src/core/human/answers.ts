/**
 * What a person's answer means for the question it answers. Every surface (the desktop app's
 * windows, the terminal, the question page) submits the same shape, and this one function decides
 * whether it is an answer the question offered: a scope only of what was offered, a lifetime from
 * the list, a choice from the choices. Anything else is refused and the question keeps waiting.
 */
import type { QuestionAnswer } from '../../common/questions.js';
import type { HumanAnswer, HumanQuestion, PairingScopeAnswer } from './channel.js';

export function checkAnswer(question: HumanQuestion, answer: QuestionAnswer): { answer: HumanAnswer } | { error: string } {
  if (answer.decision === 'decline') return { answer: { kind: 'declined' } };
  if (question.scope) {
    const scope = answer.scope;
    if (!scope) return { error: 'choose what the client may do' };
    const offeredServers = new Set(question.scope.servers.map((s) => s.name));
    const offeredTools = new Set(question.scope.servers.flatMap((s) => s.tools.map((t) => `${s.name}__${t}`)));
    if (scope.servers.some((s) => !offeredServers.has(s)) || scope.tools.some((t) => !offeredTools.has(t))) {
      return { error: 'the answer names a server or tool that was not offered' };
    }
    if (scope.kind === 'listed' && scope.servers.length === 0 && scope.tools.length === 0) {
      return { error: 'tick at least one server or tool, or choose another scope' };
    }
    if (!question.scope.expiryDays.includes(scope.expiryDays)) return { error: 'choose one of the offered lifetimes' };
    const picked: PairingScopeAnswer = {
      kind: scope.kind,
      servers: scope.kind === 'listed' ? [...new Set(scope.servers)].sort() : [],
      tools: scope.kind === 'listed' ? [...new Set(scope.tools)].sort() : [],
      expiryDays: scope.expiryDays,
    };
    return { answer: { kind: 'approved', scope: picked } };
  }
  if (question.choices) {
    if (!question.choices.some((c) => c.id === answer.choice)) return { error: 'choose one of the answers' };
    return { answer: { kind: 'approved', choice: answer.choice! } };
  }
  return { answer: { kind: 'approved' } };
}
