/**
 * Client config files in JSON and JSON with comments (VS Code, Zed, Gemini CLI and Cursor accept
 * comments; Claude Desktop and Claude Code want plain JSON). Edits go through `jsonc-parser`'s
 * `modify`, which changes only the text of the entry it touches: comments, key order, indentation
 * and every other setting stay as the user wrote them. A plain-JSON client's file is checked to
 * still be plain JSON after the edit.
 */
import { applyEdits, modify, parse, printParseErrorCode, type ParseError } from 'jsonc-parser';
import { GatehouseError } from '../../common/errors.js';
import type { ConfigFormat } from './format.js';

export function jsonFormat(kind: 'json' | 'jsonc'): ConfigFormat {
  return {
    kind,
    read(text, file) {
      if (text.trim() === '') return {};
      const errors: ParseError[] = [];
      const value: unknown = parse(text, errors, { allowTrailingComma: kind === 'jsonc', disallowComments: kind === 'json' });
      if (errors.length > 0) {
        const first = errors[0]!;
        const line = text.slice(0, first.offset).split('\n').length;
        throw new GatehouseError('client_config_invalid', `${file}: line ${line}: ${printParseErrorCode(first.error)}; fix the file (nothing was changed)`);
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        throw new GatehouseError('client_config_invalid', `${file}: the top level is not an object; nothing was changed`);
      return value as Record<string, unknown>;
    },
    set(text, path, value) {
      const source = text.trim() === '' ? '{}\n' : text;
      const indent = detectIndent(source);
      const edits = modify(source, path, value, {
        formattingOptions: { insertSpaces: indent !== '\t', tabSize: indent === '\t' ? 1 : indent.length, eol: source.includes('\r\n') ? '\r\n' : '\n' },
      });
      return applyEdits(source, edits);
    },
    remove(text, path) {
      if (text.trim() === '') return text;
      return applyEdits(text, modify(text, path, undefined, { formattingOptions: { insertSpaces: true, tabSize: 2 } }));
    },
  };
}

/** The indentation the file already uses (two spaces when it cannot tell). */
function detectIndent(text: string): string {
  const match = /\n([ \t]+)"/.exec(text);
  if (!match) return '  ';
  return match[1]!.startsWith('\t') ? '\t' : match[1]!;
}
