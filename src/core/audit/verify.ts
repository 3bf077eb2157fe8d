/**
 * Verifies a device's audit chain from what a store holds: every event's hash, every link to its
 * predecessor, the sequence without gaps, the indexed copies of fields against the hashed body,
 * and the signed checkpoints (signature, and the hash they vouch for). Each problem names the
 * sequence number where it was found and what most likely happened there.
 *
 * Pure: the SQLite reader (`src/node/audit/verify-file.ts`) and the tests feed it rows.
 */
import type { KeyObject } from 'node:crypto';
import { GENESIS_HASH, openSealedEvent, short, verifyCheckpoint, type AuditEvent, type Checkpoint } from './event.js';

export type ProblemCode =
  'edited' | 'reordered' | 'missing' | 'broken_link' | 'malformed' | 'column_mismatch' | 'checkpoint_mismatch' | 'bad_signature' | 'truncated' | 'anchor';

export interface ChainProblem {
  seq: number;
  code: ProblemCode;
  message: string;
}

export interface StoredRow {
  /** The position the store holds the event at (the SQLite `seq` column). */
  seq: number;
  hash: string;
  body: string;
  /** Indexed copies of body fields the store filters on, to be compared with the body. */
  columns?: Partial<Record<'type' | 'at' | 'user' | 'client' | 'server' | 'name' | 'decision' | 'callId' | 'id', string | null>>;
}

export interface VerifyInput {
  device: string;
  publicKey?: KeyObject | undefined;
  /** Events before `anchor.seq + 1` were pruned; `anchor.hash` is event `anchor.seq`'s hash. */
  anchor?: { seq: number; hash: string } | undefined;
  checkpoints: Checkpoint[];
  /** The last event the writer committed, as it recorded it apart from the events. */
  head?: { seq: number; hash: string } | undefined;
}

export interface VerifyReport {
  ok: boolean;
  device: string;
  events: number;
  firstSeq: number | undefined;
  lastSeq: number | undefined;
  lastHash: string | undefined;
  checkpoints: { total: number; verified: number };
  problems: ChainProblem[];
}

const COLUMN_FIELDS: Record<string, keyof AuditEvent> = {
  type: 'type',
  at: 'at',
  user: 'user',
  client: 'client',
  server: 'server',
  name: 'name',
  decision: 'decision',
  callId: 'callId',
  id: 'id',
};

/** Verifies rows given in the store's order (ascending `seq`). At most `maxProblems` are listed. */
export function verifyChain(rows: Iterable<StoredRow>, input: VerifyInput, maxProblems = 100): VerifyReport {
  const problems: ChainProblem[] = [];
  let truncatedList = false;
  const report = (p: ChainProblem) => {
    if (problems.length < maxProblems) problems.push(p);
    else truncatedList = true;
  };
  const checkpointsAt = new Map<number, Checkpoint>();
  for (const c of input.checkpoints) checkpointsAt.set(c.seq, c);

  let expected = input.anchor ? input.anchor.seq + 1 : 1;
  let prev = input.anchor ? input.anchor.hash : GENESIS_HASH;
  let count = 0;
  let first: number | undefined;
  let lastHash: string | undefined;
  const hashAt = new Map<number, string>();
  /** After a row that could not be read as its own position, the next link says nothing new. */
  let resync = false;

  for (const row of rows) {
    count++;
    first ??= row.seq;
    if (row.seq < expected) {
      report({ seq: row.seq, code: 'reordered', message: `event ${row.seq} appears after event ${expected - 1}: the log is out of order` });
      continue;
    }
    if (row.seq > expected) {
      const span = row.seq - 1 === expected ? `event ${expected} is` : `events ${expected}–${row.seq - 1} are`;
      report({ seq: expected, code: 'missing', message: `${span} missing: event ${expected - 1} is followed by event ${row.seq} (deleted)` });
    }
    const opened = openSealedEvent({ seq: row.seq, hash: row.hash, body: row.body }, { device: input.device });
    const checkLink = !resync;
    resync = !opened.ok;
    if (!opened.ok) {
      const bodySeq = bodySeqOf(row.body);
      if (opened.problem.code === 'malformed' && bodySeq !== undefined && bodySeq !== row.seq) {
        report({ seq: row.seq, code: 'reordered', message: `position ${row.seq} holds event ${bodySeq}: events were moved or reordered` });
      } else {
        const code = opened.problem.code === 'hash_mismatch' ? 'edited' : 'malformed';
        report({ seq: row.seq, code, message: `event ${row.seq}: ${opened.problem.message}` });
      }
    } else {
      const event = opened.event;
      if (checkLink && row.seq === expected && event.prev !== prev) {
        report({
          seq: row.seq,
          code: 'broken_link',
          message: `event ${row.seq} does not follow event ${row.seq - 1}: it names predecessor ${short(event.prev)} but event ${row.seq - 1} hashes to ${short(prev)} (an event was replaced, re-hashed or reordered)`,
        });
      }
      if (row.columns) {
        for (const [column, field] of Object.entries(COLUMN_FIELDS)) {
          if (!(column in row.columns)) continue;
          const stored = row.columns[column as keyof typeof row.columns] ?? undefined;
          const signed = event[field] as string | undefined;
          if ((stored ?? undefined) !== (signed ?? undefined)) {
            report({
              seq: row.seq,
              code: 'column_mismatch',
              message: `event ${row.seq}: the indexed ${column} says ${JSON.stringify(stored ?? null)} but the hashed record says ${JSON.stringify(signed ?? null)} (edited)`,
            });
          }
        }
      }
    }
    const checkpoint = checkpointsAt.get(row.seq);
    if (checkpoint) hashAt.set(row.seq, row.hash);
    prev = row.hash;
    expected = row.seq + 1;
    lastHash = row.hash;
  }
  const last = expected - 1;

  // Checkpoints: each signature, and the hash each vouches for.
  let verified = 0;
  for (const c of input.checkpoints) {
    if (c.device !== input.device) {
      report({ seq: c.seq, code: 'bad_signature', message: `checkpoint at event ${c.seq} names device ${c.device}, not ${input.device}` });
      continue;
    }
    if (input.publicKey && !verifyCheckpoint(input.publicKey, c)) {
      report({
        seq: c.seq,
        code: 'bad_signature',
        message: `checkpoint at event ${c.seq}: the signature does not verify with the device key (forged or altered)`,
      });
      continue;
    }
    if (c.seq > last) continue; // reported as truncation below
    if (input.anchor && c.seq === input.anchor.seq) {
      if (c.hash !== input.anchor.hash)
        report({
          seq: c.seq,
          code: 'anchor',
          message: `the pruning anchor at event ${c.seq} (${short(input.anchor.hash)}) differs from the signed checkpoint (${short(c.hash)})`,
        });
      else verified++;
      continue;
    }
    if (input.anchor && c.seq < input.anchor.seq) {
      verified++;
      continue;
    }
    const held = hashAt.get(c.seq);
    if (held === undefined) continue; // that event is missing: reported above
    if (held !== c.hash) {
      report({
        seq: c.seq,
        code: 'checkpoint_mismatch',
        message: `event ${c.seq} hashes to ${short(held)} but the checkpoint signed ${short(c.hash)}: events up to ${c.seq} were rewritten after they were signed`,
      });
    } else verified++;
  }
  if (input.anchor && !input.checkpoints.some((c) => c.seq === input.anchor!.seq)) {
    report({
      seq: input.anchor.seq,
      code: 'anchor',
      message: `events through ${input.anchor.seq} were pruned, but no signed checkpoint vouches for the anchor hash ${short(input.anchor.hash)}`,
    });
  }
  const beyond = input.checkpoints.filter((c) => c.seq > last).map((c) => c.seq);
  const headBeyond = input.head && input.head.seq > last ? input.head.seq : undefined;
  const furthest = Math.max(...beyond, headBeyond ?? 0);
  if (furthest > last) {
    report({
      seq: last + 1,
      code: 'truncated',
      message: `the log ends at event ${last}, but ${beyond.length > 0 ? `a signed checkpoint vouches for event ${Math.max(...beyond)}` : `the writer recorded event ${furthest}`}: events ${last + 1}–${furthest} were removed (truncated)`,
    });
  }
  if (truncatedList) problems.push({ seq: last, code: 'malformed', message: `more than ${maxProblems} problems; only the first ${maxProblems} are listed` });

  return {
    ok: problems.length === 0,
    device: input.device,
    events: count,
    firstSeq: first,
    lastSeq: count > 0 ? last : undefined,
    lastHash,
    checkpoints: { total: input.checkpoints.length, verified },
    problems,
  };
}

function bodySeqOf(body: string): number | undefined {
  try {
    const seq = (JSON.parse(body) as { seq?: unknown }).seq;
    return typeof seq === 'number' ? seq : undefined;
  } catch {
    return undefined;
  }
}
