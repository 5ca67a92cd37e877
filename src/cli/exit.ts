import { isKapokError, messageOf } from '../core/errors.js';

/** The contract's exit codes. */
export const EXIT = { OK: 0, FAILURE: 1, CONFIG: 2 } as const;

/** One line on stderr, then the contract's exit code: 2 for configuration errors, 1 for the rest. */
export function fail(err: unknown): never {
  if (isKapokError(err)) {
    process.stderr.write(`kapok: ${err.message} [${err.code}]\n`);
    process.exit(err.code.startsWith('KAPOK_CONFIG_') ? EXIT.CONFIG : EXIT.FAILURE);
  }
  process.stderr.write(`kapok: unexpected error: ${messageOf(err)}\n`);
  process.exit(EXIT.FAILURE);
}
