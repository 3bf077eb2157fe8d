/**
 * TOML client configs (Codex CLI's config.toml), edited with toml_edit (the Rust crate Codex itself
 * uses, built to WebAssembly): a value is set or removed at a path and the rest of the document,
 * comments and layout included, is kept as written.
 */
import { edit, initSync, parse } from '@rainbowatcher/toml-edit-js';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import type { ConfigFormat } from './format.js';

/** A dotted path toml_edit understands: bare keys where possible, quoted otherwise. */
function tomlPath(path: string[]): string {
  return path.map((key) => (/^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key))).join('.');
}

let loaded = false;
/** The WebAssembly module is compiled on first use only: most commands never touch a TOML file. */
function ready(): void {
  if (loaded) return;
  initSync();
  loaded = true;
}

export const tomlFormat: ConfigFormat = {
  kind: 'toml',
  read(text, file) {
    if (text.trim() === '') return {};
    ready();
    try {
      const value = parse(text) as unknown;
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('the top level is not a table');
      return value as Record<string, unknown>;
    } catch (error) {
      throw new GatehouseError('client_config_invalid', `${file}: ${errorMessage(error).split('\n')[0]}; fix the file (nothing was changed)`);
    }
  },
  set(text, path, value) {
    ready();
    // Tables are written as [tables] rather than inline, as people write them in config.toml.
    return edit(text, tomlPath(path), value, { inline: false });
  },
  remove(text, path) {
    if (text.trim() === '') return text;
    ready();
    return edit(text, tomlPath(path), undefined);
  },
};
