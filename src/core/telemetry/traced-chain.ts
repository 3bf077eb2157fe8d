/**
 * The chain of core/chain.ts with a span per stage. Built only when telemetry is on: with it off,
 * the gateway uses `chain` itself and a call allocates nothing for tracing.
 *
 * Interceptors nest (each stage runs inside the one before it), but a trace reads best as the call's
 * span with one child per stage, each covering that stage's own work: from entering the stage until
 * it hands the call on (or decides it). The audit stage also works after the call (the outcome
 * record), and gets a second span for that. The upstream span's context goes to the server in the
 * request's `_meta`, so the server's own spans join the same trace.
 */
import { errorMessage } from '../../common/errors.js';
import type { GovernedCall, Handler, Interceptor, Outcome } from '../chain.js';
import type { CallTrace, CallTracer, StageTrace, TraceContext, TracedStage } from './ports.js';

export interface TracedInterceptor {
  stage: TracedStage;
  interceptor: Interceptor;
}

/** What one call's tracing holds while it runs: its trace, and the one stage span open now (stages run one at a time). */
interface Tracing {
  trace: CallTrace;
  open: StageTrace | undefined;
}

/**
 * `tracedChain(tracer, a, b)(last)` runs as `chain(a, b)(last)` does, and traces it. `last` is the
 * upstream handler unless `upstream` is false (a refusal that never reaches a server gets no upstream span).
 */
export const tracedChain =
  (tracer: CallTracer, ...stages: TracedInterceptor[]) =>
  (last: Handler, upstream = true): Handler => {
    const calls = new WeakMap<GovernedCall, Tracing>();
    let next = upstream ? tracedUpstream(calls, last) : last;
    for (let i = stages.length - 1; i >= 0; i--) next = tracedStage(calls, stages[i]!, next);
    const first = next;
    return async (call) => {
      const tracing: Tracing = { trace: tracer.startCall(call), open: undefined };
      calls.set(call, tracing);
      let outcome: Outcome;
      try {
        outcome = await first(call);
      } catch (error) {
        tracing.trace.end({ kind: 'failed', stage: 'audit', error: `internal error: ${errorMessage(error)}` });
        throw error;
      }
      tracing.trace.end(outcome);
      return outcome;
    };
  };

function tracedStage(calls: WeakMap<GovernedCall, Tracing>, { stage, interceptor }: TracedInterceptor, after: Handler): Handler {
  const handedOn: Handler = async (call) => {
    const tracing = calls.get(call)!;
    tracing.open?.end();
    tracing.open = undefined;
    const outcome = await after(call);
    // The audit stage's second part: the outcome record, written after the call and before the caller hears it.
    if (stage === 'audit') tracing.open = tracing.trace.startStage(stage, 'after');
    return outcome;
  };
  const inner = interceptor(handedOn);
  return async (call) => {
    const tracing = calls.get(call)!;
    const own = tracing.trace.startStage(stage, 'before');
    tracing.open = own;
    let outcome: Outcome;
    try {
      outcome = await inner(call);
    } catch (error) {
      closeOpen(tracing, own, { kind: 'failed', stage, error: errorMessage(error) });
      throw error;
    }
    closeOpen(tracing, own, outcome);
    return outcome;
  };
}

/** The span still open when a stage returns: its own (it decided the call) or the audit's second part. */
function closeOpen(tracing: Tracing, own: StageTrace, outcome: Outcome): void {
  const open = tracing.open;
  tracing.open = undefined;
  if (open === own) open.end(outcome);
  else open?.end();
}

function tracedUpstream(calls: WeakMap<GovernedCall, Tracing>, last: Handler): Handler {
  return async (call) => {
    const span = calls.get(call)!.trace.startStage('upstream');
    const context = span.traceContext();
    if (context) call.meta = withTraceContext(call.meta, context);
    let outcome: Outcome;
    try {
      outcome = await last(call);
    } catch (error) {
      span.end({ kind: 'failed', stage: 'upstream', error: errorMessage(error) });
      throw error;
    }
    span.end(outcome);
    return outcome;
  };
}

/** The request's `_meta` with this trace context in place of the caller's (the rest of it passes unchanged). */
export function withTraceContext(meta: Record<string, unknown> | undefined, context: TraceContext): Record<string, unknown> {
  const { traceparent: _parent, tracestate: _state, ...rest } = meta ?? {};
  return context.tracestate ? { ...rest, traceparent: context.traceparent, tracestate: context.tracestate } : { ...rest, traceparent: context.traceparent };
}
