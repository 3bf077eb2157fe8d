/**
 * The one line a bridge sends before MCP starts on the socket: who the client is, its credential,
 * and which view it wants. The daemon answers with one line, then the connection carries MCP.
 */
import { z } from 'zod';
import { ToolViewSchema } from '../../common/config.js';
import { CLIENT_NAME_PATTERN, SERVER_NAME_PATTERN } from '../../common/names.js';

export const HELLO_VERSION = 1;
export const MAX_HELLO_BYTES = 4096;

export const HelloSchema = z
  .object({
    gatehouse: z.literal('hello'),
    version: z.literal(HELLO_VERSION),
    client: z.string().regex(CLIENT_NAME_PATTERN, 'not a valid client name'),
    token: z.string().max(200).optional(),
    server: z.string().regex(SERVER_NAME_PATTERN, 'not a valid server name').optional(),
    /** Which view of the tools: `search` (find_tools, call_tool) or `aggregate`; absent: the client's setting in the config. */
    view: ToolViewSchema.optional(),
    /** What the bridge says about the program that launched it, shown (as unverified) when it asks to pair. */
    about: z.string().max(300).optional(),
    /**
     * A random value the bridge keeps (in its key store) while it waits to be paired. A later bridge
     * of the same client presenting it joins the waiting request, or picks up the credential the
     * person approved after the first one went away (a one-shot client such as the Inspector CLI).
     */
    claim: z.string().min(16).max(100).optional(),
  })
  .strict()
  .refine((h) => !(h.server !== undefined && h.view === 'search'), {
    message: 'a single-server view cannot also be the search view; choose one',
    path: ['view'],
  });
export type Hello = z.infer<typeof HelloSchema>;

export type HelloReply =
  /**
   * `credential`: only right after the person paired this client; the bridge keeps it in its key
   * store and presents it from then on. `pairing`: the person is being asked to pair this client
   * (`code` is shown on both sides); MCP starts at once in a pending state, and one of the in-band
   * lines below follows on the same connection when the person has answered. `notice`: why this
   * caller can do nothing yet (not signed in, no role), for the bridge's stderr.
   */
  | {
      gatehouse: 'welcome';
      version: number;
      session: string;
      credential?: string;
      pairing?: { code: string; deadline: string; where?: string };
      notice?: string;
    }
  | { gatehouse: 'refused'; version: number; reason: string };

/**
 * A line the daemon writes between MCP messages on a connection whose welcome said `pairing`: the
 * person answered. The bridge takes it out of the stream (MCP lines never start with `{"gatehouse":`).
 */
export type PairingOutcomeLine =
  | { gatehouse: 'paired'; version: number; credential: string }
  /** `code`: the refusal's stable code (`pairing_declined`, `pairing_expired`, …); `reason`: the words for people. */
  | { gatehouse: 'refused'; version: number; code?: string; reason: string };

/** The prefix every Gatehouse line on the socket starts with, and no MCP line does (JSON-RPC lines start with `{"jsonrpc"` or another key). */
export const GATEHOUSE_LINE_PREFIX = '{"gatehouse":';

export function parseHello(line: string): { ok: true; hello: Hello } | { ok: false; reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, reason: 'the first line must be a Gatehouse hello; connect through `gatehouse connect`' };
  }
  const result = HelloSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    return { ok: false, reason: `bad hello: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}` };
  }
  return { ok: true, hello: result.data };
}
