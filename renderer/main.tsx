/**
 * The console's entry: picks the transport (the preload's IPC in the desktop app, the loopback
 * WebSocket headless), keeps the session token the login redirect handed over, and renders.
 */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.js';
import { LiveProvider } from './api/client.js';
import { SESSION_KEY, defaultTransport } from './api/transport.js';
import { ToastProvider } from './components/ui.js';
import { applyTheme, storedTheme } from './lib/theme.js';
import './styles.css';

// `/login` redirects to `/#session=<token>`: keep the token in this origin's storage and drop it from the address bar.
const handed = /^#session=([A-Za-z0-9_-]{20,100})$/.exec(window.location.hash);
if (handed) {
  window.localStorage.setItem(SESSION_KEY, handed[1]!);
  window.history.replaceState(null, '', `${window.location.pathname}#/overview`);
}

applyTheme(storedTheme());
const transport = defaultTransport();
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <LiveProvider transport={transport}>
      <ToastProvider>
        <App />
      </ToastProvider>
    </LiveProvider>
  </StrictMode>,
);
