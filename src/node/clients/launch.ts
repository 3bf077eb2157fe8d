/**
 * The command a client's entry runs to start the bridge. It names Gatehouse by absolute path, so
 * it works under an IDE's minimal PATH: the Node that runs this CLI and the package's own bin
 * script for an npm install, or the packaged app's command (`main/cli-mode.ts` decides which, and
 * passes it in). The bridge's arguments are data (`extraArgs`), never a string template, so that
 * later views (`--view search`) are one more argument, not a new format.
 */
import { join } from 'node:path';
import { packageRoot } from '../version.js';
import type { BridgeLaunch, ClientId } from './registry.js';

/** How to run this Gatehouse from anywhere: an absolute command and the arguments before the subcommand. */
export interface SelfCommand {
  command: string;
  args: string[];
}

/** An npm install (or a checkout): this Node, by absolute path, running the package's bin script. */
export function nodeSelfCommand(): SelfCommand {
  return { command: process.execPath, args: [join(packageRoot(), 'bin', 'gatehouse.js')] };
}

export interface LaunchOptions {
  /** The name the client is paired under (default: the client's id). */
  clientName?: string;
  /** More bridge arguments (`['--server', 'memory']`, later `['--view', 'search']`). */
  extraArgs?: string[];
  /** The environment the setup ran in: a GATEHOUSE_HOME there is carried into the entry, so the bridge finds the same Gatehouse. */
  env: Readonly<Record<string, string | undefined>>;
}

export function bridgeLaunch(self: SelfCommand, client: ClientId, options: LaunchOptions): BridgeLaunch {
  const home = options.env.GATEHOUSE_HOME;
  return {
    command: self.command,
    args: [...self.args, 'connect', '--client', options.clientName ?? client, ...(options.extraArgs ?? [])],
    env: home ? { GATEHOUSE_HOME: home } : {},
  };
}
