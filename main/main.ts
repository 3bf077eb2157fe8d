/**
 * The Electron entry point: process lifecycle and nothing else yet.
 *
 * The core is built by the same composition root as the headless daemon (src/node/daemon.ts), so
 * the desktop app and `gatehouse daemon` govern calls identically. Windows, the tray and approval
 * popups land with the desktop app issue; see main/README.md.
 */
import { app } from 'electron';
import { refuseNavigation } from './security.js';

/** What src/node/daemon.ts exports, as far as the shell needs it. */
interface DaemonModule {
  startDaemon(options: DaemonOptions): Promise<RunningDaemon>;
}
/** Options of `startDaemon`; the shell passes none yet and takes the daemon's defaults. */
type DaemonOptions = Readonly<Record<string, unknown>>;
interface RunningDaemon {
  stop(): Promise<void>;
}

// A variable, not a literal: TypeScript leaves the import unresolved, so main/ compiles whether or
// not the daemon module exists yet. At run time it resolves from dist/main/ to dist/src/node/.
const DAEMON_MODULE: string = '../src/node/daemon.js';

/** Longest wait for the core to stop before the app exits anyway. */
const STOP_TIMEOUT_MS = 10_000;

async function startCore(): Promise<RunningDaemon> {
  const daemon = (await import(DAEMON_MODULE)) as DaemonModule;
  return daemon.startDaemon({});
}

/** Resolves when `stop` settles or the timeout passes, whichever is first; never rejects. */
async function stopCore(running: Promise<RunningDaemon> | undefined): Promise<boolean> {
  if (running === undefined) return true;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), STOP_TIMEOUT_MS);
  });
  const stopped = running.then((daemon) => daemon.stop()).then(
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
  // One Gatehouse per user session: a second launch would fight the first for the socket and the audit log.
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return;
  }

  // Every renderer is sandboxed, whatever a window's own preferences say (see security.ts).
  app.enableSandbox();
  app.on('web-contents-created', (_event, contents) => refuseNavigation(contents));

  // The core serves IDEs with no window open; closing the last window must not quit the app.
  app.on('window-all-closed', () => {});

  let core: Promise<RunningDaemon> | undefined;
  let phase: 'running' | 'stopping' | 'stopped' = 'running';

  void app.whenReady().then(() => {
    if (phase !== 'running') return;
    core = startCore();
    core.catch((error: unknown) => {
      console.error('gatehouse: the core failed to start:', error);
      phase = 'stopped';
      app.exit(1);
    });
  });

  // Quitting waits for the core to stop (servers shut down, the audit log flushed), once.
  app.on('before-quit', (event) => {
    if (phase === 'stopped') return;
    event.preventDefault();
    if (phase === 'stopping') return;
    phase = 'stopping';
    void stopCore(core).then((clean) => {
      phase = 'stopped';
      if (clean) app.quit();
      else app.exit(1);
    });
  });
}

main();
