/**
 * The console's frame: a skip link, the section navigation, the connection banner, the theme
 * switch, and the screen the address names. Moving to a screen puts the keyboard focus on its
 * heading, so a screen reader announces where the person landed.
 */
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { useLive } from './api/client.js';
import { Spinner } from './components/ui.js';
import { SCREENS, href, useRoute, type ScreenId } from './lib/routes.js';
import { saveTheme, storedTheme, type Theme } from './lib/theme.js';
import { Approvals } from './screens/Approvals.js';
import { Audit } from './screens/Audit.js';
import { Clients } from './screens/Clients.js';
import { Identity } from './screens/Identity.js';
import { Overview } from './screens/Overview.js';
import { Policy } from './screens/Policy.js';
import { Question } from './screens/Question.js';
import { Secrets } from './screens/Secrets.js';
import { Catalog } from './screens/Catalog.js';
import { Servers } from './screens/Servers.js';
import { Tools } from './screens/Tools.js';

function screenFor(screen: ScreenId, rest: string[]): ReactNode {
  switch (screen) {
    case 'overview':
      return <Overview />;
    case 'approvals':
      return <Approvals />;
    case 'servers':
      return <Servers selected={rest[0]} />;
    case 'tools':
      return <Tools />;
    case 'audit':
      return <Audit />;
    case 'secrets':
      return <Secrets />;
    case 'catalog':
      return <Catalog />;
    case 'identity':
      return <Identity />;
    case 'policy':
      return <Policy />;
    case 'clients':
      return <Clients />;
    case 'question':
      return <Question />;
  }
}

function ConnectionBanner() {
  const { connection, connectionReason, status } = useLive();
  if (connection === 'open' && status) return null;
  if (connection === 'connecting' || (connection === 'open' && !status)) {
    return (
      <div className="banner banner-info" role="status">
        <Spinner /> Connecting to Gatehouse…
      </div>
    );
  }
  if (connection === 'signed-out') {
    return (
      <div className="banner banner-bad" role="alert">
        <strong>Not signed in to the console.</strong> {connectionReason ?? ''} Run <code>gatehouse console</code> in a terminal and open the link the daemon
        prints.
      </div>
    );
  }
  return (
    <div className="banner banner-warn" role="alert">
      <Spinner /> <strong>Connection to Gatehouse lost.</strong> Reconnecting by itself… If the daemon stopped, start it again with{' '}
      <code>gatehouse daemon --ui</code>.
    </div>
  );
}

export function App() {
  const route = useRoute();
  const { status } = useLive();
  const [theme, setTheme] = useState<Theme>(storedTheme);
  const main = useRef<HTMLElement>(null);
  const routeKey = `${route.screen}/${route.rest.join('/')}`;
  const shown = useRef(routeKey);

  useEffect(() => {
    const title = route.screen === 'question' ? 'Gatehouse asks' : (SCREENS.find((s) => s.id === route.screen)?.title ?? 'Gatehouse');
    document.title = `${title} — Gatehouse`;
    // The first screen keeps the browser's own focus order (the skip link first); a move to another screen focuses its heading.
    if (shown.current === routeKey) return;
    shown.current = routeKey;
    requestAnimationFrame(() => main.current?.querySelector<HTMLElement>('h1')?.focus());
  }, [routeKey, route.screen]);

  if (route.screen === 'question') {
    return (
      <main id="main" ref={main} className="popup">
        <Question />
      </main>
    );
  }

  const toggle = () => {
    const next = theme === 'dark' ? 'light' : 'dark';
    saveTheme(next);
    setTheme(next);
  };
  // Approvals appear once the daemon reports them (the approval module in force).
  const screens = SCREENS.filter((s) => s.id !== 'approvals' || status?.approvals !== undefined);
  const pending = status?.approvals?.pending.length ?? 0;

  return (
    <div className="app">
      <a className="skip" href="#main" onClick={(e) => (e.preventDefault(), main.current?.querySelector<HTMLElement>('h1')?.focus())}>
        Skip to the content
      </a>
      <header className="topbar">
        <span className="brand">Gatehouse</span>
        <span className="muted topbar-detail">
          {status
            ? `${status.user} · ${status.policy.mode === 'managed' ? `managed policy${status.policy.version ? ` v${status.policy.version}` : ''}` : 'unmanaged'}`
            : ''}
        </span>
        <button type="button" className="theme-toggle" onClick={toggle} aria-pressed={theme === 'dark'}>
          Dark theme
        </button>
      </header>
      <ConnectionBanner />
      <div className="layout">
        <nav aria-label="Sections" className="sidebar">
          <ul>
            {screens.map((s) => (
              <li key={s.id}>
                <a href={href(s.id)} aria-current={route.screen === s.id ? 'page' : undefined}>
                  {s.title}
                  {s.id === 'approvals' && pending > 0 ? (
                    <span className="count" aria-label={`${pending} pending`}>
                      {pending}
                    </span>
                  ) : null}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <main id="main" ref={main} className="content">
          {screenFor(route.screen, route.rest)}
        </main>
      </div>
    </div>
  );
}
