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
  })
  .strict()
  .refine((h) => !(h.server !== undefined && h.view === 'search'), { message: 'a single-server view cannot also be the search view; choose one', path: ['view'] });
export type Hello = z.infer<typeof HelloSchema>;

export type HelloReply =
  /**
   * `credential`: only right after the person paired this client; the bridge keeps it in the keychain and presents it from then on.
   * `notice`: why this caller can do nothing yet (not signed in, no role), for the bridge's stderr.
   */
  | { gatehouse: 'welcome'; version: number; session: string; credential?: string; notice?: string }
  | { gatehouse: 'refused'; version: number; reason: string }
  /** Not an answer yet: the client has no credential and the person is being asked to pair it; `code` is shown on both sides. */
  | { gatehouse: 'pairing'; version: number; code: string; deadline: string };

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
