/**
 * The human channel: the one way Gatehouse asks the person at the keyboard something, outside
 * every channel an agent can reach (not the MCP endpoints, not the command line, not the control
 * socket, not the console served on loopback). Pairing and approvals ask through it.
 *
 * The port is `HumanChannel`; its one implementation is the desk (`desk.ts`), which keeps the
 * questions and shows each on the surfaces that reach the person: the desktop app's windows
 * (`main/human-windows.ts`), the daemon's terminal and the question page behind a code shown only
 * there (`src/node/human/`). SECURITY.md ("The human channel") says what each surface relies on.
 */

import type { AnswerSurface } from '../../common/questions.js';

/** One fact shown to the person, such as the client's name or the process that asked. */
export interface Fact {
  label: string;
  value: string;
}

/** A choice of scope for a client being paired (the pairing form). */
export interface ScopeOptions {
  /** Servers the person may pick from, each with the names of its tools and prompts. */
  servers: { name: string; tools: string[] }[];
  /** Offered lifetimes of the credential, in days; the first is the default. */
  expiryDays: number[];
}

export interface HumanQuestion {
  /** What kind of question, so an adapter can choose its form. */
  kind: 'pairing' | 'approval';
  /** One line: "Pair the client "cursor"?" */
  title: string;
  /** What the person needs to decide, in the order shown. */
  facts: Fact[];
  /**
   * A short code the asking client also shows (the bridge prints it on its stderr); the person
   * checks that both say the same, so that a look-alike request cannot take the place of theirs.
   */
  code?: string;
  /** For pairing: the scope form. */
  scope?: ScopeOptions;
  /** For approval: the answers offered besides "deny" (for example "once", "for this session"). */
  choices?: { id: string; label: string }[];
}

/** What the person chose. Declining is an answer too; silence until the deadline is `expired`. */
export type HumanAnswer =
  | { kind: 'approved'; choice?: string; scope?: PairingScopeAnswer; via?: AnswerSurface }
  | { kind: 'declined'; via?: AnswerSurface }
  | { kind: 'expired' }
  /** No person can be asked (no page could be opened); the caller fails closed. */
  | { kind: 'unavailable'; reason: string };

/** The scope picked on the pairing form. */
export interface PairingScopeAnswer {
  kind: 'all' | 'read-only' | 'listed';
  servers: string[];
  /** `<server>__<tool or prompt>` names. */
  tools: string[];
  expiryDays: number;
}

export interface HumanChannel {
  /**
   * Asks the person; resolves with their answer, or `expired` at the deadline (epoch ms) or when
   * `signal` aborts (the asker went away). `onAsked` runs once the question has reached a person's
   * screen. Never throws for a person's answer.
   */
  ask(question: HumanQuestion, deadline: number, signal?: AbortSignal, onAsked?: () => void): Promise<HumanAnswer>;
  /** How many questions are waiting for an answer. */
  pending(): number;
}
