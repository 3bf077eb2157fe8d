/**
 * The daemon's heap as users start it (issue 13): `gatehouse daemon` keeps V8's young generation at
 * 8 MB instead of letting start-up and load grow it to 32 MB it never gives back, and `gatehouse
 * status --json` shows the figures.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVERYTHING } from '../support/servers.js';
import { closeAll, connectHttp, textOf } from './support/clients.js';
import { spawnGatehouse, type RunningGatehouse } from './support/gatehouse.js';

let gh: RunningGatehouse;

beforeAll(async () => {
  gh = await spawnGatehouse({ servers: { everything: { type: 'stdio', command: process.execPath, args: [EVERYTHING(), 'stdio'] } }, clients: ['ide'] });
});
afterAll(async () => {
  await closeAll();
  await gh?.stop();
});

describe('the daemon started by `gatehouse daemon`', () => {
  it("keeps its young generation at 8 MB, not V8's 32, through start-up and a burst of calls, and reports its memory", async () => {
    const { client } = await connectHttp(gh.httpUrl, { era: 'legacy', token: gh.tokens.ide });
    await Promise.all(
      Array.from({ length: 8 }, async (_, worker) => {
        for (let i = 0; i < 50; i++) {
          const message = `${worker}-${i}-${'x'.repeat(2000)}`;
          expect(textOf(await client.callTool({ name: 'everything__echo', arguments: { message } }))).toBe(`Echo: ${message}`);
        }
      }),
    );
    const memory = (await gh.status()).memory;
    expect(memory?.youngGenerationMb).toBeLessThanOrEqual(8);
    expect(memory?.rssMb).toBeGreaterThan(memory!.heapUsedMb);
    expect(memory?.heapTotalMb).toBeGreaterThanOrEqual(memory!.heapUsedMb + memory!.youngGenerationMb / 2);
    expect(memory?.httpConnections?.open).toBeGreaterThan(0);
  });
});
