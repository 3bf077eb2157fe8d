#!/usr/bin/env node
// The `gatehouse` command: runs the compiled CLI (npm install builds it).
// The heap policy comes first, before the CLI's modules load (see src/node/heap.ts).
import { keepYoungGenerationSmall } from '../dist/src/node/heap.js';

keepYoungGenerationSmall();
const { main } = await import('../dist/src/cli/main.js');

const code = await main(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
});
if (code !== 0 || process.argv[2] !== 'connect') process.exitCode = code;
