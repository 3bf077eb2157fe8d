/**
 * The fleet view's only way to the hub: GET requests to the admin API of the origin that served
 * the page, with the admin token as a bearer token, and every answer parsed with the contract's
 * schema (src/common/fleet.ts) before it is shown.
 *
 * The token lives in this tab's sessionStorage: it is gone when the tab closes, other sites cannot
 * read it, and it is never in a cookie, so no other page can make the browser send it (no CSRF).
 */
import type { z } from 'zod';

const TOKEN_KEY = 'gatehouse.fleet.adminToken';

export class FleetError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function storedToken(): string | undefined {
  return window.sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

export function storeToken(token: string | undefined): void {
  if (token === undefined) window.sessionStorage.removeItem(TOKEN_KEY);
  else window.sessionStorage.setItem(TOKEN_KEY, token);
}

export async function adminGet<S extends z.ZodType>(token: string, path: string, schema: S, params: Record<string, string> = {}): Promise<z.infer<S>> {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '')).toString();
  const response = await fetch(`/v1/admin/${path}${query ? `?${query}` : ''}`, { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' });
  const body = (await response.json().catch(() => undefined)) as { error?: { message?: string } } | undefined;
  if (!response.ok) throw new FleetError(response.status, body?.error?.message ?? `the hub answered ${response.status}`);
  const parsed = schema.safeParse(body);
  if (!parsed.success)
    throw new FleetError(
      502,
      `the hub's answer to ${path} is not what this page expects (${parsed.error.issues[0]?.message ?? 'invalid'}): is the hub another version?`,
    );
  return parsed.data;
}
