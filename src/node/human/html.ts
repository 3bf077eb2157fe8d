/**
 * The small server-rendered pages the daemon shows a person on loopback (the question page, the
 * console's sign-in): the console's palette from resources/theme.css, following the system's light
 * or dark setting, no script, nothing loaded from anywhere, no framing.
 */
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { packageRoot } from '../version.js';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

let themeCss: string | undefined;
/** The console's palette (resources/theme.css), read once. */
function theme(): string {
  themeCss ??= readFileSync(join(packageRoot(), 'resources', 'theme.css'), 'utf8');
  return themeCss;
}

const PAGE_CSS = `body{margin:0;padding:2rem 1rem}main{max-width:46rem;margin:0 auto;background:var(--panel);border:1px solid var(--border);
border-radius:10px;padding:1.5rem 2rem}h1{font-size:1.35rem;margin:0 0 1rem}dl{margin:0 0 1rem}dt{font-weight:600;color:var(--muted);
font-size:.85rem;margin-top:.6rem}dd{margin:.1rem 0 0;white-space:pre-wrap;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;
font-size:.9rem;background:var(--code-bg);border-radius:6px;padding:.35rem .5rem}fieldset{border:1px solid var(--border);border-radius:8px;
margin:1rem 0;padding:.5rem 1rem}legend{font-weight:600}ul{list-style:none;padding-left:1rem}label{cursor:pointer}
input[type=text]{font:1.4rem ui-monospace,monospace;letter-spacing:.15em;padding:.4rem .6rem;border:1px solid var(--border);border-radius:6px;
background:var(--bg);color:var(--text);width:12ch;text-transform:uppercase}
button{font:inherit;padding:.5rem 1.1rem;border-radius:6px;border:1px solid var(--border);background:var(--panel);color:var(--text);cursor:pointer}
button.primary{background:var(--accent);color:var(--accent-text);border-color:var(--accent)}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}.code{font-family:ui-monospace,monospace;font-size:1.3rem;font-weight:700}
.note{padding:.6rem .8rem;border-radius:6px;background:var(--info-bg);color:var(--info-fg)}.bad{background:var(--bad-bg);color:var(--bad-fg)}
.ok{background:var(--ok-bg);color:var(--ok-fg)}.muted{color:var(--muted)}.actions{display:flex;gap:.75rem;margin-top:1rem}
.left{height:6px;border-radius:3px;background:var(--accent);transform-origin:left;animation:left linear forwards;margin-top:1rem}
@keyframes left{from{transform:scaleX(1)}to{transform:scaleX(0)}}@media (prefers-reduced-motion:reduce){.left{animation:none}}`;

/** Sends one page; `html` is the body below the title, already escaped. */
export function sendFormPage(res: ServerResponse, status: number, title: string, html: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    // A browser's form POST carries `Origin: null` under no-referrer, which the origin checks would refuse.
    'referrer-policy': 'same-origin',
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(
    `<!doctype html><html lang="en" data-theme="auto"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">` +
      `<title>${escapeHtml(title)} · Gatehouse</title><style>${theme()}${PAGE_CSS}</style></head>` +
      `<body><main><h1>${escapeHtml(title)}</h1>${html}</main></body></html>`,
  );
}
