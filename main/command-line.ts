/**
 * The desktop app's side of the `gatehouse` command, wired to Electron (thin: every decision is in
 * cli-mode.ts). `runCommandLine` runs the CLI in the main process for `--cli` launches; the
 * AppImage's first-run offer and macOS's "Install Command Line Tool…" put the wrapper on PATH.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { execFile } from 'node:child_process';
import { app, dialog, Menu, MenuItem } from 'electron';
import { appImageOffer, macInstallCommand, packagedSelfCommand, type PackagedPlace } from './cli-mode.js';

export function packagedPlace(): PackagedPlace {
  return { platform: process.platform, execPath: process.execPath, env: process.env, home: homedir(), exists: existsSync };
}

/** Runs `gatehouse ARGS` in this process: no window, no tray, no single-instance lock; exits with its code. */
export async function runCommandLine(args: string[]): Promise<void> {
  app.dock?.hide();
  const { main } = await import('../src/cli/main.js');
  const code = await main(args, {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    env: process.env,
    self: packagedSelfCommand(packagedPlace()),
  });
  app.exit(code);
}

/** After the app is ready (windows allowed): offer the command line where the platform needs the app to. */
export function offerCommandLine(settingsFile: string): void {
  const place = packagedPlace();
  if (process.platform === 'darwin') {
    const install = macInstallCommand(process.execPath);
    const menu = Menu.getApplicationMenu() ?? new Menu();
    // osascript asks for an administrator's password: /usr/local/bin belongs to the system.
    const click = () => execFile('osascript', ['-e', `do shell script ${JSON.stringify(install.shell)} with administrator privileges`], () => undefined);
    menu.append(new MenuItem({ label: 'Command Line', submenu: [{ label: 'Install Command Line Tool…', click }] }));
    Menu.setApplicationMenu(menu);
    return;
  }
  const declinedFile = join(dirname(settingsFile), 'command-line-declined');
  const existing = place.env.APPIMAGE ? readIfThere(join(place.home, '.local', 'bin', 'gatehouse')) : undefined;
  const offer = appImageOffer(place, { declined: existsSync(declinedFile), ...(existing !== undefined ? { existing } : {}) });
  if (!offer.offer) return;
  void dialog
    .showMessageBox({
      type: 'question',
      buttons: ['Install the command', 'Not now', 'Never'],
      defaultId: 0,
      message: 'Use Gatehouse from a terminal and from your IDEs?',
      detail: `Gatehouse can put a "gatehouse" command in ${offer.file} that runs this app (no Node needed).`,
    })
    .then(({ response }) => {
      if (response === 0) {
        mkdirSync(dirname(offer.file), { recursive: true });
        writeFileSync(offer.file, offer.script, { mode: 0o755 });
      } else if (response === 2) writeFileSync(declinedFile, '');
    });
}

function readIfThere(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
