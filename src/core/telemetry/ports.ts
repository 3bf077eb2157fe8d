/**
 * What the chain needs to trace a governed call, and never how: the OpenTelemetry SDK lives behind
 * these ports in src/node/telemetry, loaded only when telemetry is configured. With telemetry off
 * the gateway builds the chain without any of this (core/telemetry/traced-chain.ts), so a call pays
 * nothing for it.
 */
import type { Stage } from '../../common/errors.js';
import type { GovernedCall, Outcome } from '../chain.js';

/** W3C trace context as it travels in a request's `_meta` (https://www.w3.org/TR/trace-context/). */
export interface TraceContext {
  traceparent: string;
  tracestate?: string;
}

/** The stages that get a span of their own, in the order they run. */
export type TracedStage = Extract<Stage, 'audit' | 'identity' | 'policy' | 'quota' | 'approval' | 'upstream'>;

/** Opens the trace of one governed call. */
export interface CallTracer {
  /**
   * The call's own span, a child of the trace context the caller sent in `_meta` (if any, and
   * valid), else a new trace. Called once per call, before the first stage.
   */
  startCall(call: GovernedCall): CallTrace;
}

export interface CallTrace {
  /**
   * A child span of the call for one stage's own work. The audit stage gets two: writing the
   * attempt (`phase: 'before'`) and writing the outcome (`phase: 'after'`).
   */
  startStage(stage: TracedStage, phase?: 'before' | 'after'): StageTrace;
  /** Ends the call's span with what the caller is answered. */
  end(outcome: Outcome): void;
}

export interface StageTrace {
  /** The context naming this span, for the upstream request's `_meta`; undefined when there is none to pass on. */
  traceContext(): TraceContext | undefined;
  /** Ends the span; with the outcome when this stage decided the call. */
  end(outcome?: Outcome): void;
}
