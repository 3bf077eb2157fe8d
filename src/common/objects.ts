/** A JSON object (not null, not an array), as parsed JSON and untrusted input are checked before their members are read. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
