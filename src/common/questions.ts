/**
 * The human channel's contract as it crosses a process boundary: a question waiting for the
 * person (what the desktop app's windows and the console show) and the answer a person gives
 * (parsed wherever it arrives, then checked against the question it answers in the core).
 *
 * A question carries no secret: it is what the person is asked, and the agent that caused it
 * knows most of it already. What lets someone answer is where they answer: the desktop app's own
 * windows, the daemon's terminal, or the question page behind a code shown only there.
 */
import { z } from 'zod';

/** A question waiting for the person: the core's question plus its id and deadline. */
export interface WaitingQuestion {
  /** Names the question; not a secret (it is in the page's address and the log). */
  id: string;
  kind: 'pairing' | 'approval';
  title: string;
  facts: { label: string; value: string }[];
  /** The short code the asking client also shows (pairing), for the person to compare. */
  code?: string;
  scope?: { servers: { name: string; tools: string[] }[]; expiryDays: number[] };
  choices?: { id: string; label: string }[];
  askedAt: string;
  deadline: string;
}

/** One answer, as a window, the terminal or the page submits it. */
export const QuestionAnswerSchema = z.discriminatedUnion('decision', [
  z.object({ decision: z.literal('decline') }).strict(),
  z
    .object({
      decision: z.literal('approve'),
      choice: z.string().max(200).optional(),
      scope: z
        .object({
          kind: z.enum(['all', 'read-only', 'listed']),
          servers: z.array(z.string().max(64)).max(1000),
          tools: z.array(z.string().max(300)).max(10_000),
          expiryDays: z.number().int().min(1).max(3650),
        })
        .strict()
        .optional(),
    })
    .strict(),
]);
export type QuestionAnswer = z.infer<typeof QuestionAnswerSchema>;

/** Where an answer came from, as the audit log and the other surfaces are told. */
export type AnswerSurface = 'desktop app' | 'terminal' | 'question page' | 'test';

/** The result of offering an answer: it counted, or why not (the question stays as it was). */
export type AnswerResult = { ok: true } | { ok: false; code: 'no_question' | 'invalid_answer'; message: string };
