/**
 * V8's optimizing compiler (TurboFan), held back while the daemon loads its modules.
 *
 * Loading the core runs some code thousands of times and never again: zod's schema builders (the
 * SDK's and Gatehouse's schemas are built when their modules load) and Node's module loader. V8
 * optimizes that code as it would a hot path, and what the optimization leaves stays for the
 * daemon's whole life: the optimized code, the memory the compiler's threads took from the
 * allocator, and the compiler's own pages of the Node binary. An idle daemon with the default
 * servers held 6-7 MB less without it (ARCHITECTURE.md, Decisions). Holding the compiler only while
 * `startDaemon` ran saved nothing: it is the loading.
 *
 * The flag is read whenever V8 considers optimizing a function, so once released, the calls the
 * daemon serves are optimized as before; a function the loading ran often is optimized at its next
 * calls. The daemon releases it when it first works (a client connects, or it is busy after
 * start-up). Only TurboFan is held: the baseline compiler still runs, so start-up code is not
 * interpreted alone.
 */
import { setFlagsFromString } from 'node:v8';

export interface HeldCompiler {
  /** Lets V8 optimize again (its default). Idempotent. */
  release(): void;
}

/** Call in the process that runs the daemon, before its modules load; the daemon releases it when it first works. */
export function holdOptimizingCompiler(): HeldCompiler {
  setFlagsFromString('--no-turbofan');
  let held = true;
  return {
    release: () => {
      if (!held) return;
      held = false;
      setFlagsFromString('--turbofan');
    },
  };
}
