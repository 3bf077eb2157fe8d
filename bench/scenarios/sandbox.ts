/**
 * What confinement costs (issue 15), side by side in one daemon: the echo fixture unconfined
 * (`sandbox: "off"`), confined with the default profile (bubblewrap, no network), and confined with
 * an allow-list (bubblewrap plus the relay that starts first inside it). Start-up is the time
 * `servers.start` takes to bring a stopped server to ready (spawn, sandbox set-up, MCP handshake,
 * lists), interleaved; per-call latency is `tools/call echo` over the daemon's socket, interleaved
 * in rounds; memory is the resident set of each server's whole process tree.
 */
import { Client } from '@modelcontextprotocol/client';
import type { ConfinementStatus } from '../../src/common/sandbox.js';
import { callControl } from '../../src/node/control/control-client.js';
import { CLIENT_NAME, FIXTURE, spawnDaemon } from '../lib/gatehouse.js';
import { descendantsOf, rssMb } from '../lib/proc.js';
import { openSocketTransport } from '../lib/socket-transport.js';
import { summarize, type Summary } from '../lib/stats.js';

export const SANDBOX_VARIANTS = ['unconfined', 'confined', 'allowlisted'] as const;
export type SandboxVariant = (typeof SANDBOX_VARIANTS)[number];

export interface SandboxBenchResult {
  /** `servers.start` of a stopped server → ready, per variant (ms). */
  startupMs: Record<SandboxVariant, Summary>;
  /** `tools/call echo` through the daemon's socket, per variant (ms). */
  callMs: Record<SandboxVariant, Summary>;
  /** Resident memory of each server's process tree (the server, and bubblewrap and the relay where they run), MB. */
  treeRssMb: Record<SandboxVariant, number | undefined>;
  /** How each was confined, as status reported it. */
  confinement: Record<SandboxVariant, ConfinementStatus | undefined>;
}

export async function sandboxScenario(options: { restarts: number; calls: number; rounds: number; log: (line: string) => void }): Promise<SandboxBenchResult> {
  const { log } = options;
  const fixture = { type: 'stdio' as const, command: process.execPath, args: [FIXTURE] };
  const daemon = await spawnDaemon({
    servers: {
      unconfined: { ...fixture, sandbox: 'off' },
      confined: fixture,
      // A loopback port nothing listens on: the relay and the proxy are set up, and no traffic needs them.
      allowlisted: { ...fixture, sandbox: { network: { allow: ['127.0.0.1:9'] } } },
    },
  });
  try {
    const status = await daemon.status();
    const confinement = Object.fromEntries(
      SANDBOX_VARIANTS.map((v) => [v, status.servers.find((s) => s.name === v)?.confinement]),
    ) as SandboxBenchResult['confinement'];
    for (const v of SANDBOX_VARIANTS) log(`  ${v}: ${confinement[v]?.state ?? '?'}${confinement[v]?.mechanism ? ` (${confinement[v]!.mechanism})` : ''}`);
    const treeRssMb = Object.fromEntries(
      SANDBOX_VARIANTS.map((v) => {
        const pid = status.servers.find((s) => s.name === v)?.pid;
        if (pid === undefined) return [v, undefined];
        const total = [pid, ...descendantsOf(pid)].reduce((sum, p) => sum + (rssMb(p) ?? 0), 0);
        return [v, total];
      }),
    ) as SandboxBenchResult['treeRssMb'];

    const startup: Record<SandboxVariant, number[]> = { unconfined: [], confined: [], allowlisted: [] };
    for (let i = 0; i < options.restarts; i++) {
      for (const v of SANDBOX_VARIANTS) {
        await callControl(daemon.home.paths.controlSocketPath, 'servers.stop', { name: v }, 30_000);
        const t0 = performance.now();
        await callControl(daemon.home.paths.controlSocketPath, 'servers.start', { name: v }, 30_000);
        startup[v].push(performance.now() - t0);
      }
    }
    log(`  start-up p50: ${SANDBOX_VARIANTS.map((v) => `${v} ${summarize(startup[v]).p50.toFixed(0)} ms`).join(', ')}`);

    const client = new Client({ name: 'gatehouse-bench', version: '1.0.0' });
    await client.connect(await openSocketTransport(daemon.socketPath, CLIENT_NAME, daemon.home.token));
    const calls: Record<SandboxVariant, number[]> = { unconfined: [], confined: [], allowlisted: [] };
    try {
      const perRound = Math.ceil(options.calls / options.rounds);
      for (const v of SANDBOX_VARIANTS) for (let i = 0; i < 100; i++) await client.callTool({ name: `${v}__echo`, arguments: { text: 'warm-up' } });
      for (let round = 0; round < options.rounds; round++) {
        for (const v of SANDBOX_VARIANTS) {
          for (let i = 0; i < perRound; i++) {
            const t0 = performance.now();
            await client.callTool({ name: `${v}__echo`, arguments: { text: 'hello' } });
            calls[v].push(performance.now() - t0);
          }
        }
      }
    } finally {
      await client.close();
    }
    log(`  call p50: ${SANDBOX_VARIANTS.map((v) => `${v} ${summarize(calls[v]).p50.toFixed(3)} ms`).join(', ')}`);
    const by = <T>(f: (v: SandboxVariant) => T): Record<SandboxVariant, T> =>
      Object.fromEntries(SANDBOX_VARIANTS.map((v) => [v, f(v)])) as Record<SandboxVariant, T>;
    return { startupMs: by((v) => summarize(startup[v])), callMs: by((v) => summarize(calls[v])), treeRssMb, confinement };
  } finally {
    await daemon.stop();
  }
}
