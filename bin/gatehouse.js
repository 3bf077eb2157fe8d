#!/usr/bin/env -S node --max-semi-space-size=4
// The `gatehouse` command: runs the compiled CLI (npm install builds it).
// The heap policy comes first: the first line's option caps V8's young generation when Node starts
// (HEAP_NODE_FLAGS), and keepYoungGenerationSmall caps it from inside when the script is run as
// `node bin/gatehouse.js`, without that line, before the CLI's modules load (see src/node/heap.ts).
import { keepYoungGenerationSmall } from '../dist/src/node/heap.js';
import { holdOptimizingCompiler } from '../dist/src/node/optimizing-compiler.js';

keepYoungGenerationSmall();
// `gatehouse daemon`: V8 optimizes nothing until the daemon first works (see src/node/optimizing-compiler.ts).
const heldCompiler = process.argv[2] === 'daemon' ? holdOptimizingCompiler() : undefined;
const { main } = await import('../dist/src/cli/main.js');

const code = await main(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
  ...(heldCompiler ? { heldCompiler } : {}),
});
if (code !== 0 || process.argv[2] !== 'connect') process.exitCode = code;
