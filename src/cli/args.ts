/** What every `gatehouse` subcommand shares: option parsing with one-line errors, and waiting for a stop signal. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { GatehouseError, errorMessage } from '../common/errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;
const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;
export type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O & typeof HELP_OPTION; allowPositionals: true; strict: true }>>;

/** `--help`/`-h` is always accepted; a mistake becomes a `usage` error on one line. */
export function parseOptions<O extends Options>(args: string[], options: O): Parsed<O> {
  try {
    return parseArgs({ args, options: { ...options, ...HELP_OPTION } as O & typeof HELP_OPTION, allowPositionals: true as const, strict: true as const });
  } catch (error) {
    // Node's messages for some mistakes (an option value starting with a dash) span several lines.
    throw new GatehouseError(
      'usage',
      errorMessage(error)
        .replace(/\. To specify.*$/s, '')
        .replace(/\s*\n\s*/g, ' '),
    );
  }
}

/** Like `parseOptions`, for commands that take no positional arguments. */
export function parseFlags<O extends Options>(args: string[], options: O): Parsed<O> {
  const parsed = parseOptions(args, options);
  if (parsed.positionals.length > 0) throw new GatehouseError('usage', `Unexpected argument '${parsed.positionals[0]}'`);
  return parsed;
}

/** Resolves at the first SIGINT or SIGTERM, for commands that run until stopped. */
export function untilStopSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
