/**
 * Reads a sandbox's trace (the failed file calls strace reports on descriptor 3, see
 * `tracedCommand` in src/core/sandbox/bwrap.ts) and records each one the sandbox caused as a
 * `sandbox.denied` event of kind `file-read` or `file-write` (and, where an rlimit holds the process
 * limit, each refused fork as `processes`). The decisions are in
 * src/core/sandbox/file-denials.ts; this file splits lines and asks the host whether a path exists.
 */
import type { Readable } from 'node:stream';
import { classifyFailure, isRefusedFork, TraceParser, type DenialFacts } from '../../core/sandbox/file-denials.js';
import type { SandboxEvents } from '../../core/sandbox/events.js';
import { readLines } from '../lines.js';
import { entryExists } from '../paths.js';

/** Longest trace line kept: a call with two 4,096-byte paths printed as hex escapes fits; longer lines are not calls strace prints. */
const MAX_LINE = 64 * 1024;
/** The longest path an audit record names; the rest is cut with an ellipsis. */
const MAX_TARGET = 1_024;

export interface FileTraceInput {
  server: string;
  events: SandboxEvents;
  /** The sandbox's grants and system directories, and what it hides (see DenialFacts). */
  visible: readonly string[];
  hidden: readonly string[];
  /** Record forks refused at this process limit: set where an rlimit holds it (a cgroup's own counter reports those otherwise). */
  forks?: { limit: number };
}

/** Consumes the trace until it ends (the tracer exited); the promise settles then, or when the stream fails. */
export function readFileTrace(stream: Readable, input: FileTraceInput): Promise<void> {
  const parser = new TraceParser();
  const facts: DenialFacts = { exists: entryExists, visible: input.visible, hidden: input.hidden };
  const handle = (line: string): void => {
    const failure = parser.line(line);
    if (!failure) return;
    if (isRefusedFork(failure)) {
      if (input.forks) input.events.denied(input.server, 'processes', `${input.forks.limit} processes`, 'a fork was refused at the process limit');
      return;
    }
    const denial = classifyFailure(failure, facts);
    if (!denial) return;
    const target = denial.path.length > MAX_TARGET ? `${denial.path.slice(0, MAX_TARGET)}…` : denial.path;
    input.events.denied(input.server, denial.op === 'read' ? 'file-read' : 'file-write', target, denial.reason);
  };
  // A longer line is not a call strace writes: it is skipped.
  return readLines(stream, { maxLine: MAX_LINE, onLine: handle });
}
