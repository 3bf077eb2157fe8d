#!/usr/bin/env node
// The `gatehouse` command: runs the compiled CLI (npm install builds it).
// The heap policy comes first, before the CLI's modules load (see src/node/heap.ts).
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
