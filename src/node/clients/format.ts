/**
 * A client's config file format, as the clients capability edits it: read the whole document, set
 * or remove one value at a path, and leave every other byte alone (comments included). Formats:
 * JSON and JSONC (`json-format.ts`, jsonc-parser), TOML (`toml-format.ts`, toml_edit).
 */
export interface ConfigFormat {
  kind: 'json' | 'jsonc' | 'toml';
  /** The document as a value; an empty file is an empty object. Throws `client_config_invalid` with the line for a broken file. */
  read(text: string, file: string): Record<string, unknown>;
  /** The text with `value` at `path` (creating the tables or objects on the way), nothing else changed. */
  set(text: string, path: string[], value: unknown): string;
  /** The text without the value at `path`, nothing else changed. */
  remove(text: string, path: string[]): string;
}
