/**
 * The command for people without Node (issue 11): the packaged app runs Gatehouse's CLI on its own
 * runtime when started with --cli (main/cli-mode.ts), and the installers' wrappers put it on PATH.
 * Electron cannot run here, so the decisions are tested as pure functions and the wrappers as the
 * shell scripts they are, run against a stand-in for the app binary.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI_FLAG, appImageOffer, cliInvocation, macInstallCommand, packagedSelfCommand, wrapperScript, type PackagedPlace } from '../../main/cli-mode.js';

const REPO = resolve(import.meta.dirname, '../..');
const scratch = mkdtempSync(join(tmpdir(), 'gh-cli-mode-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A stand-in for the app binary: prints the arguments it got, one per line. */
function fakeApp(): string {
  const file = join(scratch, `app-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n', { mode: 0o755 });
  return file;
}

const place = (over: Partial<PackagedPlace>): PackagedPlace => ({
  platform: 'linux',
  execPath: '/opt/Gatehouse/gatehouse-desktop',
  env: {},
  home: '/home/ann',
  exists: () => false,
  ...over,
});

describe('running the app as the command line', () => {
  it('is the command line only when --cli comes first (after Chromium switches), with the rest as its arguments', () => {
    expect(cliInvocation(['/opt/Gatehouse/gatehouse-desktop', '--cli', 'status', '--json'], true)).toEqual({ kind: 'cli', args: ['status', '--json'] });
    expect(
      cliInvocation(['/opt/Gatehouse/gatehouse-desktop', '--ozone-platform=headless', '--disable-gpu', '--cli', 'connect', '--client', 'cursor'], true),
    ).toEqual({ kind: 'cli', args: ['connect', '--client', 'cursor'] });
    expect(cliInvocation(['electron', '/src/gatehouse', '--cli', 'status'], false)).toEqual({ kind: 'cli', args: ['status'] });
    expect(cliInvocation(['/opt/Gatehouse/gatehouse-desktop'], true)).toEqual({ kind: 'app' });
    expect(cliInvocation(['/opt/Gatehouse/gatehouse-desktop', '--hidden'], true)).toEqual({ kind: 'app' });
    // An argument that merely contains the flag later on is not a command-line launch.
    expect(cliInvocation(['/opt/Gatehouse/gatehouse-desktop', 'file.txt', '--cli'], true)).toEqual({ kind: 'app' });
  });

  it("writes IDE entries with the installed wrapper when it is there, else the app binary with the wrapper's switches", () => {
    expect(packagedSelfCommand(place({ exists: (f) => f === '/usr/bin/gatehouse' }))).toEqual({ command: '/usr/bin/gatehouse', args: [] });
    expect(packagedSelfCommand(place({}))).toEqual({
      command: '/opt/Gatehouse/gatehouse-desktop',
      args: ['--ozone-platform=headless', '--disable-gpu', CLI_FLAG],
    });
    expect(packagedSelfCommand(place({ env: { APPIMAGE: '/home/ann/Apps/Gatehouse.AppImage' } }))).toEqual({
      command: '/home/ann/Apps/Gatehouse.AppImage',
      args: ['--ozone-platform=headless', '--disable-gpu', CLI_FLAG],
    });
    expect(packagedSelfCommand(place({ env: { APPIMAGE: '/x.AppImage' }, exists: (f) => f === '/home/ann/.local/bin/gatehouse' }))).toEqual({
      command: '/home/ann/.local/bin/gatehouse',
      args: [],
    });
    expect(packagedSelfCommand(place({ platform: 'darwin', execPath: '/Applications/Gatehouse.app/Contents/MacOS/Gatehouse' }))).toEqual({
      command: '/Applications/Gatehouse.app/Contents/MacOS/Gatehouse',
      args: [CLI_FLAG],
    });
    expect(packagedSelfCommand(place({ platform: 'win32', execPath: 'C:\\Program Files\\Gatehouse\\Gatehouse.exe' }))).toEqual({
      command: 'C:\\Program Files\\Gatehouse\\Gatehouse.exe',
      args: [CLI_FLAG],
    });
  });

  it('a wrapper passes every argument on unchanged, spaces and quotes included', () => {
    const app = fakeApp();
    const wrapper = join(scratch, 'gatehouse');
    writeFileSync(wrapper, wrapperScript(app, 'linux'), { mode: 0o755 });
    const out = execFileSync(wrapper, ['connect', '--client', "it's a name", '$HOME'], { encoding: 'utf8' });
    expect(out.split('\n').slice(0, -1)).toEqual(['--ozone-platform=headless', '--disable-gpu', '--cli', 'connect', '--client', "it's a name", '$HOME']);
  });

  it("offers the AppImage command once: not when declined, not when this image's wrapper is there", () => {
    const appImage = place({ env: { APPIMAGE: '/home/ann/Gatehouse.AppImage' } });
    const offer = appImageOffer(appImage, { declined: false });
    expect(offer).toEqual({ offer: true, file: '/home/ann/.local/bin/gatehouse', script: wrapperScript('/home/ann/Gatehouse.AppImage', 'linux') });
    expect(appImageOffer(appImage, { declined: true })).toEqual({ offer: false });
    expect(appImageOffer(appImage, { declined: false, existing: wrapperScript('/home/ann/Gatehouse.AppImage', 'linux') })).toEqual({ offer: false });
    expect(appImageOffer(place({}), { declined: false })).toEqual({ offer: false });
  });

  it('macOS installs /usr/local/bin/gatehouse with a command that writes exactly the wrapper', () => {
    const app = fakeApp();
    const install = macInstallCommand(app);
    const target = join(scratch, 'mac-bin', 'gatehouse');
    execFileSync('sh', ['-c', install.shell.replaceAll('/usr/local/bin', join(scratch, 'mac-bin'))]);
    expect(readFileSync(target, 'utf8')).toBe(install.script);
    expect(execFileSync(target, ['status'], { encoding: 'utf8' })).toBe('--cli\nstatus\n');
  });
});

describe("the Linux packages' scripts", () => {
  /** The script as electron-builder fills it in, with /usr/bin and /opt moved into a scratch directory. */
  const filled = (name: string, root: string) =>
    readFileSync(join(REPO, 'resources', 'linux', name), 'utf8')
      .replaceAll('${sanitizedProductName}', 'Gatehouse')
      .replaceAll('${executable}', 'gatehouse-desktop')
      .replaceAll('/usr/bin', join(root, 'usr-bin'))
      .replaceAll('/opt/', `${join(root, 'opt')}/`)
      .replace(/update-desktop-database/g, 'true');

  it("after install: /usr/bin/gatehouse runs the app's runtime as the command line, and after remove it is gone", () => {
    const root = mkdtempSync(join(scratch, 'pkg-'));
    execFileSync('sh', ['-c', `mkdir -p ${root}/usr-bin ${root}/opt/Gatehouse`]);
    const app = join(root, 'opt', 'Gatehouse', 'gatehouse-desktop');
    writeFileSync(app, readFileSync(fakeApp()));
    chmodSync(app, 0o755);
    execFileSync('sh', ['-c', filled('after-install.sh', root)]);
    const wrapper = join(root, 'usr-bin', 'gatehouse');
    expect(execFileSync(wrapper, ['clients', 'setup', 'cursor'], { encoding: 'utf8' })).toBe(
      '--ozone-platform=headless\n--disable-gpu\n--cli\nclients\nsetup\ncursor\n',
    );
    expect(existsSync(join(root, 'usr-bin', 'gatehouse-desktop'))).toBe(true);
    execFileSync('sh', ['-c', filled('after-remove.sh', root)]);
    expect(existsSync(wrapper)).toBe(false);
    expect(existsSync(join(root, 'usr-bin', 'gatehouse-desktop'))).toBe(false);
  });

  it('Windows: gatehouse.cmd runs the installed Gatehouse.exe as the command line, with every argument', () => {
    const cmd = readFileSync(join(REPO, 'resources', 'windows', 'bin', 'gatehouse.cmd'), 'utf8');
    // Installed at <app>\resources\resources\windows\bin (extraResources), four levels below the app.
    expect(cmd).toContain('"%~dp0..\\..\\..\\..\\Gatehouse.exe" --cli %*');
    expect(readFileSync(join(REPO, 'electron-builder.yml'), 'utf8')).toMatch(/include: resources\/windows\/installer\.nsh/);
  });
});
