/**
 * What a tool list costs a model before the user says a word: the tokens of the `tools/list`
 * result a client receives, in the aggregate and in the search view. Counting is a port: the
 * tokenizer is an adapter (src/node/search/tokens.ts), loaded only when someone asks.
 */
import type { ToolItem } from '../ports.js';

export interface TokenCounter {
  /** The encoding counted with, for the reader (`o200k_base`). */
  readonly encoding: string;
  count(text: string): Promise<number>;
}

export interface ToolListCost {
  tools: number;
  /** Bytes of the `tools/list` result as JSON, as it goes over the wire. */
  bytes: number;
  tokens: number;
}

/** The `tools/list` result a client would receive for these tools, as the JSON it is sent as. */
export function toolListText(tools: readonly ToolItem[]): string {
  return JSON.stringify({ tools });
}

export async function toolListCost(tools: readonly ToolItem[], counter: TokenCounter): Promise<ToolListCost> {
  const text = toolListText(tools);
  return { tools: tools.length, bytes: new TextEncoder().encode(text).length, tokens: await counter.count(text) };
}

/** How much smaller the search view's list is, as a share of the aggregate's tokens (0.97 = 97 % fewer). */
export function saving(aggregate: ToolListCost, search: ToolListCost): number {
  return aggregate.tokens === 0 ? 0 : 1 - search.tokens / aggregate.tokens;
}
