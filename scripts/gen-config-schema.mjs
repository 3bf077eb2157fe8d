#!/usr/bin/env node
// Regenerates resources/config.schema.json from the zod schema in src/common/config.ts.
// Run after changing the schema:  npm run build && node scripts/gen-config-schema.mjs
// test/unit/config-file.test.ts fails while the committed file differs from what this writes.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigSchema } from '../dist/src/common/config.js';

const out = fileURLToPath(new URL('../resources/config.schema.json', import.meta.url));
const schema = z.toJSONSchema(ConfigSchema, { io: 'input' });
writeFileSync(out, `${JSON.stringify(schema, null, 2)}\n`);
console.log(`wrote ${out}`);
