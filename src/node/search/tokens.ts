/**
 * Token counts with a real tokenizer: OpenAI's `o200k_base` encoding from gpt-tokenizer, whose
 * encodings ship inside the package (nothing is fetched at run time). Other models' tokenizers
 * differ by a few per cent on JSON; the figures are for comparing views, not for billing.
 *
 * The encoding (a few MB) is loaded at the first count, not when the daemon starts, and counts are
 * remembered by the text's digest, so the console asking again costs a hash.
 */
import { createHash } from 'node:crypto';
import type { TokenCounter } from '../../core/search/cost.js';

/** Counts remembered; a tool list's text changes only when the tools do. */
const REMEMBERED = 64;

export class O200kTokenCounter implements TokenCounter {
  readonly encoding = 'o200k_base';
  private counter: Promise<(text: string) => number> | undefined;
  private remembered = new Map<string, number>();

  async count(text: string): Promise<number> {
    const key = createHash('sha256').update(text).digest('base64url');
    const known = this.remembered.get(key);
    if (known !== undefined) return known;
    this.counter ??= import('gpt-tokenizer/encoding/o200k_base').then((m) => m.countTokens);
    const tokens = (await this.counter)(text);
    if (this.remembered.size >= REMEMBERED) this.remembered.delete(this.remembered.keys().next().value!);
    this.remembered.set(key, tokens);
    return tokens;
  }
}
