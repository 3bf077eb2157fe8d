/**
 * Servers people add as `npx -y PACKAGE`: npx fetches whatever the registry serves that day, at
 * every start. Gatehouse offers to resolve such a server once (exact version and integrity),
 * install it, and pin it in the config (`installed.<name>.npm`), so later starts fetch nothing.
 */
import type { ServerConfig } from '../../common/config.js';

export interface NpxServer {
  package: string;
  /** What followed `@` (`1.2.3`, `latest`, `^2`), or `latest` when nothing did. */
  spec: string;
  /** The server's own arguments, after the package. */
  args: string[];
}

const NAME = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/;
/** npx's own options that take no value, before the package. */
const FLAGS = new Set(['-y', '--yes', '-q', '--quiet', '--no-install', '--prefer-offline', '--prefer-online']);

/** Recognises `npx [-y] PACKAGE[@SPEC] ARGS…` (also `npm exec -y -- …`); undefined for anything else. */
export function parseNpx(config: ServerConfig): NpxServer | undefined {
  if (config.type !== 'stdio') return undefined;
  const program = config.command.split(/[\\/]/).pop() ?? '';
  let rest: string[];
  if (program === 'npx' || program === 'npx.cmd') rest = [...config.args];
  else if ((program === 'npm' || program === 'npm.cmd') && config.args[0] === 'exec') rest = config.args.slice(1);
  else return undefined;
  while (rest.length > 0 && (FLAGS.has(rest[0]!) || rest[0] === '--')) rest.shift();
  const target = rest.shift();
  if (target === undefined || target.startsWith('-')) return undefined;
  const at = target.lastIndexOf('@');
  const name = at > 0 ? target.slice(0, at) : target;
  const spec = at > 0 ? target.slice(at + 1) : 'latest';
  if (!NAME.test(name) || spec === '') return undefined;
  return { package: name, spec, args: rest };
}
