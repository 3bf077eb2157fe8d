/**
 * Opening an address in the person's browser with the platform's opener (xdg-open, open,
 * rundll32). Only addresses that carry no Gatehouse secret are ever opened, because an opener's
 * command line is readable by every local user (SECURITY.md, "The human channel"): an
 * authorization server's sign-in page carries a state and a PKCE challenge, which grant nothing
 * without the verifier that stays in the memory of the process waiting for the redirect.
 */
import { spawn } from 'node:child_process';
import { findOnPath } from './notify.js';

/** Opens a URL with the platform's opener; false when none can run (no desktop session, no opener). */
export async function openBrowser(url: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  let command: string | undefined;
  let args: string[];
  if (process.platform === 'darwin') {
    command = '/usr/bin/open';
    args = [url];
  } else if (process.platform === 'win32') {
    command = 'rundll32';
    args = ['url.dll,FileProtocolHandler', url];
  } else {
    if (!env.DISPLAY && !env.WAYLAND_DISPLAY) return false;
    command = findOnPath('xdg-open', env);
    args = [url];
  }
  if (!command) return false;
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: 'ignore', detached: true, env });
    child.once('error', () => resolve(false));
    child.once('spawn', () => {
      child.unref();
      resolve(true);
    });
  });
}
