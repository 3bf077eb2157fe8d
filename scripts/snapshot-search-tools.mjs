#!/usr/bin/env node
// Writes test/fixtures/search/servers.json: the tools/list of the real servers the search query set
// is labelled against (server-everything, server-filesystem, server-memory from npm, and the CRM
// fixture), as Gatehouse's connector would see them. Run it again after upgrading those packages;
// test/integration/search-view.test.ts fails when the snapshot no longer matches the live servers.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const binOf = (pkg) => {
  const manifestPath = require.resolve(`${pkg}/package.json`);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  const bin = typeof manifest.bin === 'string' ? manifest.bin : Object.values(manifest.bin)[0];
  return join(dirname(manifestPath), bin);
};

const scratch = mkdtempSync(join(tmpdir(), 'gh-snapshot-'));
const servers = {
  everything: { args: [binOf('@modelcontextprotocol/server-everything'), 'stdio'] },
  files: { args: [binOf('@modelcontextprotocol/server-filesystem'), scratch] },
  memory: { args: [binOf('@modelcontextprotocol/server-memory')], env: { MEMORY_FILE_PATH: join(scratch, 'memory.jsonl') } },
  crm: { args: [join(root, 'test/fixtures/crm-server.mjs')] },
};
const out = {};
try {
  for (const [name, spec] of Object.entries(servers)) {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: spec.args,
      env: { PATH: process.env.PATH, ...(spec.env ?? {}) },
      stderr: 'ignore',
    });
    // The capabilities Gatehouse's connector declares (server-everything lists more tools to a client that has them).
    const client = new Client(
      { name: 'gatehouse-snapshot', version: '1.0.0' },
      { capabilities: { elicitation: {}, sampling: {}, roots: { listChanged: false } } },
    );
    await client.connect(transport);
    const { tools } = await client.listTools();
    out[name] = tools;
    await client.close();
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
writeFileSync(join(root, 'test/fixtures/search/servers.json'), JSON.stringify(out, null, 1) + '\n');
console.log(
  Object.entries(out)
    .map(([k, v]) => `${k}: ${v.length} tools`)
    .join(', '),
);
