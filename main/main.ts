/**
 * The Electron entry point: lifecycle, windows, tray, IPC. Thin on purpose: every decision that
 * can be made without Electron lives in a pure module beside this one (ipc.ts, bridge.ts,
 * app-protocol.ts, human-windows.ts, tray-model.ts, app-settings.ts, security.ts, deep-link.ts,
 * updates.ts), tested under Node; this file only wires them to Electron's objects.
 *
 * The core is built by the same composition root as headless (`startDaemon` in
 * src/node/daemon.ts), so the desktop app and `gatehouse daemon` govern calls identically; the
 * console talks to it through the daemon's console hub over the declared IPC channels.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BrowserWindow,
  Menu,
  Notification,
  Tray,
  app,
  ipcMain,
  nativeImage,
  protocol,
  shell,
  type BrowserWindowConstructorOptions,
  type IpcMainInvokeEvent,
} from 'electron';
import {
  AppSettingsSchema,
  IPC_APP_SET_SETTINGS,
  IPC_APP_SETTINGS,
  IPC_EVENT_CHANNEL,
  IPC_HUMAN_ANSWER,
  IPC_HUMAN_INBOX,
  IPC_HUMAN_INBOX_ANSWER,
  IPC_HUMAN_QUESTION,
  type BridgeResult,
} from '../src/common/console-api.js';
import { noticeText } from '../src/core/human/notice.js';
import type { DaemonStatus } from '../src/common/status.js';
import type { Daemon } from '../src/node/daemon.js';
import { managedDirFor } from '../src/node/policy/settings.js';
import { autoUpdater } from 'electron-updater';
import { APP_SCHEME, appUrl, resolveAppRequest } from './app-protocol.js';
import { readAppSettings, writeAppSettings } from './app-settings.js';
import { DEEP_LINK_SCHEME, deepLinkInArgv, followDeepLink } from './deep-link.js';
import { AppSurface, humanIpcHandlers } from './human-windows.js';
import { FORBIDDEN, consoleIpcHandlers, isTrustedSender } from './ipc.js';
import { isWebLink, refuseNavigation, secureWebPreferences } from './security.js';
import { trayModel } from './tray-model.js';
import { cliInvocation, packagedSelfCommand } from './cli-mode.js';
import { offerCommandLine, packagedPlace, runCommandLine } from './command-line.js';
import { VerifiedFeedProvider } from './update-provider.js';
import { UpdateGate, fetchFeed, readUpdateSettings, stateOf, type UpdateState } from './updates.js';
import { keepYoungGenerationSmall } from '../src/node/heap.js';

// The core runs in this process: its heap policy applies before the core's modules load (src/node/heap.ts).
keepYoungGenerationSmall();

const here = fileURLToPath(new URL('.', import.meta.url));
/** dist/main/ → the package root. */
const ROOT = join(here, '..', '..');
const RENDERER = join(ROOT, 'dist', 'renderer');
const PRELOAD = join(here, 'preload.cjs');
const ICON = join(ROOT, 'resources', 'icons', 'tray.png');
/** Longest wait for the core to stop before the app exits anyway. */
const STOP_TIMEOUT_MS = 10_000;

// Before `ready`: the app's own scheme is a secure, standard origin (so 'self' in the CSP and the IPC sender check mean it).
protocol.registerSchemesAsPrivileged([
  { scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: false, corsEnabled: false, stream: false } },
]);

/** Resolves when `stop` settles or the timeout passes, whichever is first; never rejects. */
async function stopCore(running: Promise<Daemon> | undefined): Promise<boolean> {
  if (running === undefined) return true;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), STOP_TIMEOUT_MS);
  });
  const stopped = running
    .then((daemon) => daemon.stop())
    .then(
      () => true,
      (error: unknown) => {
        console.error('gatehouse: the core did not stop cleanly:', error);
        return false;
      },
    );
  try {
    return await Promise.race([stopped, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function main(): void {
  // `gatehouse …` through the app's own runtime (the wrapper adds --cli): the command line, no window.
  const invocation = cliInvocation(process.argv, app.isPackaged);
  if (invocation.kind === 'cli') {
    void runCommandLine(invocation.args);
    return;
  }
  // One Gatehouse per user session: a second launch would fight the first for the socket and the audit log.
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return;
  }

  // Every renderer is sandboxed, whatever a window's own preferences say (see security.ts).
  app.enableSandbox();
  const openExternal = (url: string) => {
    if (isWebLink(url)) void shell.openExternal(url);
  };
  app.on('web-contents-created', (_event, contents) => refuseNavigation(contents, openExternal));

  // The core serves IDEs with no window open; closing the last window must not quit the app.
  app.on('window-all-closed', () => {});

  let core: Promise<Daemon> | undefined;
  let phase: 'running' | 'stopping' | 'stopped' = 'running';
  let consoleWindow: BrowserWindow | undefined;
  let tray: Tray | undefined;
  let lastStatus: DaemonStatus | undefined;
  const consoles = new Set<number>();
  const settingsFile = () => join(app.getPath('userData'), 'settings.json');

  /** Every window, the console and each popup, from the one secure preferences function. */
  const newWindow = (options: BrowserWindowConstructorOptions): BrowserWindow =>
    new BrowserWindow({ ...options, show: false, webPreferences: secureWebPreferences(PRELOAD) });

  // The human channel's surface: a window per question, and the console window's inbox (human-windows.ts).
  const questions = new AppSurface(
    {
      open(title, onClosed) {
        const win = newWindow({ width: 560, height: 640, alwaysOnTop: true, title: `Gatehouse: ${title}`, minimizable: false, fullscreenable: false });
        win.setAlwaysOnTop(true, 'modal-panel');
        win.once('ready-to-show', () => {
          win.show();
          win.focus();
        });
        win.on('closed', onClosed);
        void win.loadURL(appUrl('question'));
        const id = win.webContents.id;
        return {
          webContentsId: id,
          close: () => !win.isDestroyed() && win.close(),
          focus: () => {
            if (win.isDestroyed()) return;
            win.show();
            win.focus();
          },
        };
      },
    },
    () => updateTray(),
  );
  // Notifications say what waits and where; clicking one brings its window forward. They answer nothing.
  const notices = new Map<string, Notification>();
  const notice = {
    notify(entry: Parameters<typeof noticeText>[0], where: Parameters<typeof noticeText>[1]) {
      if (!Notification.isSupported()) return;
      const text = noticeText(entry, where);
      const shown = new Notification({ title: text.title, body: text.body, urgency: 'critical' });
      shown.on('click', () => {
        if (!questions.focus(entry.id)) showConsole('approvals');
      });
      notices.set(entry.id, shown);
      shown.show();
    },
    withdraw(id: string) {
      notices.get(id)?.close();
      notices.delete(id);
    },
  };

  const showConsole = (route = 'overview') => {
    if (consoleWindow && !consoleWindow.isDestroyed()) {
      void consoleWindow.loadURL(appUrl(route));
      consoleWindow.show();
      consoleWindow.focus();
      return;
    }
    const win = newWindow({ width: 1200, height: 820, minWidth: 720, minHeight: 480, title: 'Gatehouse' });
    consoleWindow = win;
    const id = win.webContents.id;
    consoles.add(id);
    win.once('ready-to-show', () => win.show());
    win.on('closed', () => {
      consoles.delete(id);
      if (consoleWindow === win) consoleWindow = undefined;
    });
    void win.loadURL(appUrl(route));
  };

  // Updates (updates.ts decides, electron-updater downloads what it verified): only in a packaged app, only with the organisation's updates.json.
  let update: UpdateState = { kind: 'idle' };
  const setUpdate = (next: UpdateState) => {
    update = next;
    updateTray();
  };
  const startUpdates = () => {
    if (!app.isPackaged) return;
    const found = readUpdateSettings(managedDirFor(process.platform));
    if (found.kind === 'absent') return;
    if (found.kind === 'invalid') return setUpdate({ kind: 'refused', reason: found.error });
    const gate = new UpdateGate(found.settings, { current: app.getVersion(), platform: process.platform, arch: process.arch, feed: fetchFeed() });
    autoUpdater.autoDownload = false;
    autoUpdater.autoInstallOnAppQuit = false;
    autoUpdater.setFeedURL({ provider: 'custom', updateProvider: VerifiedFeedProvider, gate } as never);
    autoUpdater.on('error', (error: Error) => setUpdate({ kind: 'refused', reason: error.message }));
    autoUpdater.on('update-downloaded', (event: { version: string; downloadedFile: string }) => {
      // The installer must be the one the signed manifest names before the tray offers it.
      void gate
        .verifyDownload(event.downloadedFile)
        .then((ok) =>
          setUpdate(
            ok ? { kind: 'ready', version: event.version } : { kind: 'refused', reason: 'the downloaded installer is not the one the signed feed names' },
          ),
        );
    });
    const check = async () => {
      if (update.kind === 'ready' || update.kind === 'downloading') return;
      const decision = await gate.check();
      setUpdate(stateOf(decision));
      if (decision.kind !== 'available') return;
      await autoUpdater.checkForUpdates();
      await autoUpdater.downloadUpdate();
    };
    const run = () => void check().catch((error: unknown) => setUpdate({ kind: 'refused', reason: error instanceof Error ? error.message : String(error) }));
    run();
    setInterval(run, found.settings.checkMs).unref();
  };
  /** "Restart to install": the core stops as at any quit (servers, audit log), then the installer runs and the app starts again. */
  const installUpdate = () => {
    if (update.kind !== 'ready' || phase !== 'running') return;
    phase = 'stopping';
    void stopCore(core).then(() => {
      phase = 'stopped';
      tray?.destroy();
      autoUpdater.quitAndInstall(false, true);
    });
  };

  const updateTray = () => {
    if (!tray) return;
    const model = trayModel(lastStatus, update);
    tray.setToolTip(model.tooltip);
    app.setBadgeCount(model.waiting);
    if (process.platform === 'darwin') tray.setTitle(model.title);
    tray.setContextMenu(
      Menu.buildFromTemplate(
        model.menu.map((item) => ({
          label: item.label,
          enabled: item.enabled,
          click: () =>
            item.id === 'quit' ? app.quit() : item.id === 'install-update' ? installUpdate() : showConsole(item.id === 'open' ? 'overview' : item.id),
        })),
      ),
    );
  };

  // IPC: one handler per declared channel; each checks the sender frame, then the hub parses the payload.
  const knownConsole = (id: number) => consoles.has(id);
  const wire = (d: Daemon) => {
    const handlers = consoleIpcHandlers(d.console, knownConsole, (channel, event) =>
      console.warn(`gatehouse: refused ${channel} from web contents ${event.sender.id}`),
    );
    for (const [channel, handler] of handlers) ipcMain.handle(channel, (event: IpcMainInvokeEvent, payload: unknown) => handler(event, payload));
    d.console.subscribe((event) => {
      if (event.type === 'status') {
        lastStatus = event.status;
        updateTray();
      }
      for (const id of consoles) {
        const contents = BrowserWindow.getAllWindows().find((w) => w.webContents.id === id)?.webContents;
        contents?.send(IPC_EVENT_CHANNEL, event);
      }
    });
  };
  const human = humanIpcHandlers(questions, knownConsole, {
    question: IPC_HUMAN_QUESTION,
    answer: IPC_HUMAN_ANSWER,
    inbox: IPC_HUMAN_INBOX,
    inboxAnswer: IPC_HUMAN_INBOX_ANSWER,
  });
  for (const [channel, handler] of human) ipcMain.handle(channel, (event: IpcMainInvokeEvent, payload: unknown): BridgeResult => handler(event, payload));
  ipcMain.handle(IPC_APP_SETTINGS, (event: IpcMainInvokeEvent): BridgeResult =>
    isTrustedSender(event, knownConsole) ? { ok: true, result: readAppSettings(settingsFile()) } : FORBIDDEN,
  );
  ipcMain.handle(IPC_APP_SET_SETTINGS, (event: IpcMainInvokeEvent, payload: unknown): BridgeResult => {
    if (!isTrustedSender(event, knownConsole)) return FORBIDDEN;
    const parsed = AppSettingsSchema.safeParse(payload);
    if (!parsed.success) return { ok: false, error: { code: 'invalid_params', message: parsed.error.issues[0]?.message ?? 'invalid settings' } };
    // Start at login is opt-in: nothing registers the app until the person turns it on here.
    app.setLoginItemSettings({ openAtLogin: parsed.data.openAtLogin, args: ['--hidden'] });
    writeAppSettings(settingsFile(), parsed.data);
    return { ok: true, result: parsed.data };
  });

  // gatehouse:// links point at a screen or a waiting question's window; they answer nothing (deep-link.ts).
  app.setAsDefaultProtocolClient(DEEP_LINK_SCHEME);
  const openLink = (url: string) =>
    followDeepLink(url, {
      showScreen: (route) => showConsole(route),
      focusQuestion: (id) => questions.focus(id),
      refused: (reason) => console.warn(`gatehouse: refused a gatehouse:// link: ${reason}`),
    });
  let coreReady = false;
  const pendingLinks: string[] = [];
  const linkArrived = (url: string) => (coreReady ? openLink(url) : void pendingLinks.push(url));
  app.on('open-url', (event, url) => {
    event.preventDefault();
    linkArrived(url);
  });
  app.on('second-instance', (_event, argv) => {
    const link = deepLinkInArgv(argv);
    if (link) linkArrived(link);
    else showConsole();
  });

  void app.whenReady().then(async () => {
    if (phase !== 'running') return;
    protocol.handle(APP_SCHEME, async (request) => {
      const resolved = resolveAppRequest(request.url, RENDERER);
      if (!resolved.ok) return new Response(null, { status: resolved.status });
      try {
        return new Response(await readFile(resolved.file), { headers: resolved.headers });
      } catch {
        return new Response(null, { status: 404 });
      }
    });
    tray = new Tray(nativeImage.createFromPath(ICON));
    tray.on('click', () => showConsole());
    updateTray();
    // On stdout for whoever started the app from a terminal (and for `npm run smoke:desktop`).
    console.log('gatehouse: tray shown');
    const { startDaemon } = await import('../src/node/daemon.js');
    core = startDaemon({ human: { terminal: null, surfaces: [questions], notice }, selfCommand: packagedSelfCommand(packagedPlace()) });
    offerCommandLine(settingsFile());
    core.then(
      (d) => {
        wire(d);
        lastStatus = d.status();
        updateTray();
        coreReady = true;
        const launchLink = deepLinkInArgv(process.argv);
        if (launchLink) pendingLinks.push(launchLink);
        if (pendingLinks.length > 0) for (const url of pendingLinks.splice(0)) openLink(url);
        else if (!process.argv.includes('--hidden')) showConsole();
        startUpdates();
      },
      (error: unknown) => {
        console.error('gatehouse: the core failed to start:', error);
        phase = 'stopped';
        app.exit(1);
      },
    );
  });

  // Quitting waits for the core to stop (servers shut down gracefully, the audit log flushed), once.
  app.on('before-quit', (event) => {
    if (phase === 'stopped') return;
    event.preventDefault();
    if (phase === 'stopping') return;
    phase = 'stopping';
    void stopCore(core).then((clean) => {
      phase = 'stopped';
      tray?.destroy();
      if (clean) app.quit();
      else app.exit(1);
    });
  });
}

main();
