/**
 * Names that cross the wire: server names, and the `<server>__<item>` names the aggregate exposes.
 *
 * The MCP spec allows tool names of 1–128 characters from `[A-Za-z0-9_.-]`. Server names are
 * narrower (lower-case letters, digits and single hyphens, no underscores) so that the first
 * `__` in an aggregated name always ends the server part, whatever the tool is called.
 */

export const SERVER_NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;
export const SERVER_NAME_RULE = 'a server name is 1-32 characters of lower-case letters, digits and hyphens, and starts and ends with a letter or digit';

/** The separator between the server part and the item part of an aggregated name. */
export const NAME_SEPARATOR = '__';

export const TOOL_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/;

export function isServerName(name: string): boolean {
  return SERVER_NAME_PATTERN.test(name);
}

/** `memory` + `read_graph` → `memory__read_graph`. */
export function joinName(server: string, item: string): string {
  return `${server}${NAME_SEPARATOR}${item}`;
}

/** Splits at the first separator; undefined when the name has no server part. */
export function splitName(name: string): { server: string; item: string } | undefined {
  const at = name.indexOf(NAME_SEPARATOR);
  if (at <= 0) return undefined;
  const server = name.slice(0, at);
  const item = name.slice(at + NAME_SEPARATOR.length);
  if (!isServerName(server) || item.length === 0) return undefined;
  return { server, item };
}

/** True when `<server>__<tool>` is a name the spec allows a client to see. */
export function isExposableToolName(server: string, tool: string): boolean {
  return TOOL_NAME_PATTERN.test(joinName(server, tool));
}

/** Client names come from a bridge flag or a pairing; they label audit records and status lines. */
export const CLIENT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/;
export function isClientName(name: string): boolean {
  return CLIENT_NAME_PATTERN.test(name);
}
