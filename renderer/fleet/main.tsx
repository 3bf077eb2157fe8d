/**
 * The hub's fleet view (docs/hub.md): a page the hub serves at /fleet/, built from the console's
 * components, that reads the hub's admin API with the admin token the admin types in.
 */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { ToastProvider } from '../components/ui.js';
import { applyTheme, storedTheme } from '../lib/theme.js';
import { FleetApp } from './FleetApp.js';
import '../styles.css';

applyTheme(storedTheme());
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <ToastProvider>
      <FleetApp />
    </ToastProvider>
  </StrictMode>,
);
