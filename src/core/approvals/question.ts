/**
 * The question a person is asked about one call, in the human channel's terms (facts and choices),
 * so that every adapter (the loopback page, the terminal line, a notification, the desktop popup)
 * shows the same: who asks (user and client), which tool on which server, why, the arguments
 * pretty-printed with the fields the policy read marked, and until when.
 *
 * Each choice's id carries the request digest (`once:sha256:…`, `session:sha256:…`): an answer
 * names exactly the request it approves, and the broker refuses an answer whose digest differs.
 * There is no "always": the longest an answer lasts is the client's session.
 */
import type { Fact, HumanQuestion } from '../human/channel.js';
import type { ApprovalReason } from '../governance.js';
import type { Principal } from '../principal.js';
import { describeReason, fieldValues } from './request.js';

export interface ApprovalView {
  id: string;
  digest: string;
  principal: Principal;
  server: string;
  kind: 'tool' | 'prompt' | 'resource';
  name: string;
  args: Record<string, unknown> | undefined;
  reasons: readonly ApprovalReason[];
  /** Argument paths the approving policies read. */
  fields: readonly string[];
  /** What the catalog says of the tool, when it lists it. */
  tool?: { readOnly: boolean; destructive: boolean };
  askedAt: number;
  deadline: number;
  /** Whether "allow for this session" is offered (never for a destructive tool). */
  offersSession: boolean;
}

export type ApprovalChoice = 'once' | 'session';

export const MARK = '◀ the policy reads this';
const MAX_LINES = 120;
const MAX_STRING = 240;

/** `once:sha256:…` → { scope, digest }, or undefined for anything else. */
export function parseChoice(choice: string | undefined): { scope: ApprovalChoice; digest: string } | undefined {
  const match = /^(once|session):(sha256:[0-9a-f]{64})$/.exec(choice ?? '');
  return match ? { scope: match[1] as ApprovalChoice, digest: match[2]! } : undefined;
}

function clock(ms: number): string {
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
}

/** Arguments as indented JSON, one member per line, with the fields the policy reads marked. */
export function prettyArguments(args: Record<string, unknown> | undefined, fields: readonly string[]): { text: string; shortened: boolean } {
  const marked = new Set(fields);
  const lines: string[] = [];
  let shortened = false;
  const scalar = (value: unknown): string => {
    if (typeof value === 'string' && value.length > MAX_STRING) {
      shortened = true;
      return JSON.stringify(value.slice(0, MAX_STRING)) + `… (${value.length - MAX_STRING} more characters)`;
    }
    return JSON.stringify(value) ?? 'null';
  };
  const walk = (value: unknown, path: string, prefix: string, indent: string, comma: string): void => {
    if (lines.length >= MAX_LINES) {
      shortened = true;
      return;
    }
    const mark = path !== '' && marked.has(path.replace(/\[\d+\]/g, '')) ? `   ${MARK}` : '';
    const isArray = Array.isArray(value);
    if (value !== null && typeof value === 'object' && (isArray ? value.length > 0 : Object.keys(value).length > 0)) {
      lines.push(`${indent}${prefix}${isArray ? '[' : '{'}${mark}`);
      const entries: [string, unknown][] = isArray ? (value as unknown[]).map((v, i) => [String(i), v]) : Object.entries(value as Record<string, unknown>);
      entries.forEach(([key, child], i) => {
        const childPath = isArray ? `${path}[${key}]` : path === '' ? key : `${path}.${key}`;
        walk(child, childPath, isArray ? '' : `${JSON.stringify(key)}: `, indent + '  ', i < entries.length - 1 ? ',' : '');
      });
      lines.push(`${indent}${isArray ? ']' : '}'}${comma}`);
      return;
    }
    const text = value !== null && typeof value === 'object' ? (isArray ? '[]' : '{}') : scalar(value);
    lines.push(`${indent}${prefix}${text}${comma}${mark}`);
  };
  walk(args ?? {}, '', '', '', '');
  if (lines.length >= MAX_LINES) lines.push('…');
  return { text: lines.join('\n'), shortened };
}

export function approvalQuestion(view: ApprovalView): HumanQuestion {
  const { principal, server, name } = view;
  const client = principal.client;
  const what = view.kind === 'tool' ? 'Tool' : view.kind === 'prompt' ? 'Prompt' : 'Resource';
  const nature = view.tool ? (view.tool.destructive ? ' (destructive)' : view.tool.readOnly ? ' (read-only)' : ' (writes)') : '';
  const args = prettyArguments(view.args, view.fields);
  const read = fieldValues(view.args, view.fields);
  const seconds = Math.max(0, Math.round((view.deadline - view.askedAt) / 1000));
  const facts: Fact[] = [
    { label: 'Client', value: `${client.name} (${client.verified ? 'paired' : 'NOT paired: it has no credential'}, over ${client.transport})` },
    { label: 'Acting for', value: `${principal.user.displayName} (${principal.user.id})` },
    { label: what, value: `${name} on server ${server}${nature}` },
    { label: 'Why you are asked', value: `This call ${view.reasons.map(describeReason).join('; and it ')}` },
  ];
  if (view.fields.length > 0) {
    facts.push({
      label: 'What the policy looked at',
      value: view.fields.map((f) => `${f} = ${Object.hasOwn(read, f) ? JSON.stringify(read[f]) : '(absent)'}`).join(', '),
    });
  }
  if (view.kind !== 'resource')
    facts.push({
      label: 'Arguments',
      value: args.text + (args.shortened ? '\n(shortened here; your answer covers the exact arguments, by their digest)' : ''),
    });
  facts.push(
    { label: 'Answer by', value: `${clock(view.deadline)} (${seconds} s after it was asked); unanswered, the call is refused` },
    { label: 'Request', value: `${view.id}, digest ${view.digest}` },
  );
  const choices = [{ id: `once:${view.digest}`, label: 'Allow once: this call only' }];
  if (view.offersSession) {
    const pattern = view.fields.length > 0 ? `, with the same ${view.fields.join(', ')}` : '';
    choices.push({
      id: `session:${view.digest}`,
      label: `Allow for this session of ${client.name}: later calls to ${name}${pattern} and arguments of the same shape, until it disconnects`,
    });
  }
  return { kind: 'approval', title: `Allow ${client.name} to call ${server}__${name}?`, facts, choices };
}
