/**
 * The `gatehouse` command for people without Node: the packaged app runs the CLI on its own
 * runtime. Electron's RunAsNode fuse is off (the app binary must not become a general-purpose Node
 * that runs any script), so the app does not become Node: its main process runs Gatehouse's own CLI
 * (`src/cli/main.ts`, from the signed archive) when started with `--cli`, opens no window, takes no
 * single-instance lock, and exits with the command's code. Installers put a small `gatehouse`
 * wrapper on PATH that adds `--cli` (deb and rpm: /usr/bin/gatehouse; AppImage: ~/.local/bin/gatehouse
 * on a first-run offer; macOS: /usr/local/bin/gatehouse from the "Install Command Line Tool" menu
 * item; Windows: a gatehouse.cmd folder added to the user's PATH by the installer).
 *
 * Every decision is here, pure, and unit-tested (test/unit/cli-mode.test.ts); main.ts only wires it.
 * ARCHITECTURE.md ("The command for people without Node") has the reasoning.
 */
import path from 'node:path';

/** The first argument that makes the app a command line instead of a window. */
export const CLI_FLAG = '--cli';

/**
 * Chromium switches the Linux wrappers pass before `--cli`: the command runs where no display is
 * (an IDE starts the bridge with HOME, PATH and USER only, no DISPLAY), so Chromium must not look for one.
 */
export const LINUX_HEADLESS_SWITCHES = ['--ozone-platform=headless', '--disable-gpu'] as const;

export type Invocation = { kind: 'cli'; args: string[] } | { kind: 'app' };

/**
 * Whether this launch is the command line, and its arguments. Packaged, argv is `[app, ...]`; in
 * development (`electron .`) it is `[electron, appDir, ...]`. Chromium switches before `--cli` are skipped.
 */
export function cliInvocation(argv: readonly string[], isPackaged: boolean): Invocation {
  const rest = argv.slice(isPackaged ? 1 : 2);
  const at = rest.findIndex((a) => !a.startsWith('--') || a === CLI_FLAG);
  if (at === -1 || rest[at] !== CLI_FLAG) return { kind: 'app' };
  return { kind: 'cli', args: rest.slice(at + 1) };
}

export interface PackagedPlace {
  platform: NodeJS.Platform;
  /** The app's own binary (`process.execPath`). */
  execPath: string;
  env: Readonly<Record<string, string | undefined>>;
  home: string;
  exists(file: string): boolean;
}

/** Where each platform's installer or the app itself puts the `gatehouse` wrapper. */
export function wrapperPath(place: Pick<PackagedPlace, 'platform' | 'env' | 'home'>): string | undefined {
  if (place.platform === 'darwin') return '/usr/local/bin/gatehouse';
  if (place.platform === 'linux') return place.env.APPIMAGE ? path.posix.join(place.home, '.local', 'bin', 'gatehouse') : '/usr/bin/gatehouse';
  return undefined;
}

/**
 * How the entries `clients setup` writes run this Gatehouse, by absolute path: the installed
 * wrapper when it is there (its path survives app updates), else the app binary itself with the
 * switches the wrapper would add (an AppImage: the image file, which is what the user keeps).
 */
export function packagedSelfCommand(place: PackagedPlace): { command: string; args: string[] } {
  const wrapper = wrapperPath(place);
  if (wrapper && place.exists(wrapper)) return { command: wrapper, args: [] };
  if (place.platform === 'linux') return { command: place.env.APPIMAGE ?? place.execPath, args: [...LINUX_HEADLESS_SWITCHES, CLI_FLAG] };
  return { command: place.execPath, args: [CLI_FLAG] };
}

/** The POSIX wrapper script: runs `target` as the command line, with every argument passed on unchanged. */
export function wrapperScript(target: string, platform: NodeJS.Platform): string {
  const switches = platform === 'linux' ? `${LINUX_HEADLESS_SWITCHES.join(' ')} ` : '';
  return `#!/bin/sh\n# The gatehouse command, run by the Gatehouse app's own runtime (written by the Gatehouse app).\nexec ${shellQuote(target)} ${switches}${CLI_FLAG} "$@"\n`;
}

function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The AppImage's first-run offer: ask once to put `gatehouse` in ~/.local/bin, unless the person
 * declined before, or a wrapper for this image is already there.
 */
export function appImageOffer(
  place: PackagedPlace,
  state: { declined: boolean; existing?: string },
): { offer: false } | { offer: true; file: string; script: string } {
  const image = place.env.APPIMAGE;
  if (place.platform !== 'linux' || !image || state.declined) return { offer: false };
  const file = wrapperPath(place)!;
  const script = wrapperScript(image, 'linux');
  if (state.existing === script) return { offer: false };
  return { offer: true, file, script };
}

/**
 * macOS's "Install Command Line Tool…": the wrapper for /usr/local/bin, and the shell command that
 * installs it with an administrator's consent (`osascript … with administrator privileges` runs it).
 */
export function macInstallCommand(execPath: string): { file: string; script: string; shell: string } {
  const file = '/usr/local/bin/gatehouse';
  const script = wrapperScript(execPath, 'darwin');
  const shell = `mkdir -p /usr/local/bin && printf %s ${shellQuote(script)} > ${file} && chmod 755 ${file}`;
  return { file, script, shell };
}
