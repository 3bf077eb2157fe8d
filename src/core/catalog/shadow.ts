/**
 * Shadow servers: MCP servers the person's clients (IDEs, agents) run themselves, outside
 * Gatehouse, where nothing governs, audits or confines them. Found in the clients' own configs by
 * the clients capability; reported in status, in the console and to the hub, never with a secret
 * value: environment and header names only, credential-looking arguments replaced.
 */
import type { ShadowServer } from '../../common/catalog.js';
import type { CatalogEntry } from './entry.js';
import { parseNpx } from './npx.js';

/** A server as a client has it, without secret values (src/node/clients extends it as `ConfiguredServer`). */
export interface ClientServer {
  client: string;
  file: string;
  name: string;
  type: 'stdio' | 'http';
  command?: string;
  args?: string[];
  /** Names only. */
  envKeys: string[];
  url?: string;
  disabled: boolean;
  /** The entry runs the Gatehouse bridge. */
  gatehouse: boolean;
}

const SECRET_FLAG = /(?:key|token|secret|passw(?:or)?d|credential|auth|bearer|cookie|session)/i;
/** A long run of letters and digits mixing both: how API keys look. */
const KEY_LIKE = /^(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9_\-.+/=]{24,}$/;

/** Arguments with values that may be credentials replaced by `…`: `--api-key X`, `--token=X`, and key-like strings. */
export function redactArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  let hideNext = false;
  for (const arg of args) {
    if (hideNext) {
      out.push('…');
      hideNext = false;
      continue;
    }
    const eq = arg.indexOf('=');
    if (arg.startsWith('-') && eq > 0 && SECRET_FLAG.test(arg.slice(0, eq))) out.push(`${arg.slice(0, eq)}=…`);
    else if (arg.startsWith('-') && eq < 0 && SECRET_FLAG.test(arg)) {
      out.push(arg);
      hideNext = true;
    } else if (KEY_LIKE.test(arg) && !arg.includes('/')) out.push('…');
    else out.push(/[?&][^=]*(?:key|token|secret)[^=]*=/i.test(arg) ? arg.replace(/=([^&]*)/g, '=…') : arg);
  }
  return out;
}

/** The catalogue entry that offers the same npm package (an `npx` line) or the same remote URL, if any. */
function catalogueMatch(server: ClientServer, entries: readonly CatalogEntry[]): string | undefined {
  if (server.type === 'http' && server.url) {
    const origin = server.url.split('?')[0];
    return entries.find((e) => e.server.remotes.some((r) => r.url.split('?')[0] === origin))?.name;
  }
  if (server.command === undefined) return undefined;
  const npx = parseNpx({ type: 'stdio', command: server.command, args: server.args ?? [] } as never);
  if (!npx) return undefined;
  return entries.find((e) => e.server.packages.some((p) => p.registryType === 'npm' && p.identifier === npx.package))?.name;
}

/** Every enabled server of every client that is not Gatehouse's own entry. */
export function shadowServers(found: readonly ClientServer[], entries: readonly CatalogEntry[]): ShadowServer[] {
  return found
    .filter((s) => !s.gatehouse && !s.disabled)
    .map((s) => {
      const inCatalog = catalogueMatch(s, entries);
      return {
        client: s.client,
        file: s.file,
        name: s.name,
        type: s.type,
        target: s.type === 'http' ? (s.url ?? '') : [s.command ?? '', ...redactArgs(s.args ?? [])].join(' ').trim(),
        envKeys: [...s.envKeys],
        ...(inCatalog ? { inCatalog } : {}),
      };
    })
    .sort((a, b) => a.client.localeCompare(b.client) || a.name.localeCompare(b.name));
}

/** A stable key for one shadow server (to report each once). */
export function shadowKey(s: ShadowServer): string {
  return JSON.stringify([s.client, s.name, s.type, s.target]);
}
