/**
 * Codes a person reads off one screen and types into another: the question page's code and the
 * console's sign-in code. Eight characters of Crockford's base32 (40 bits), shown as `K7QF-2M9X`,
 * read back forgivingly (any case, spaces and dashes ignored, O for 0 and I or L for 1). With a
 * handful of attempts allowed per code, guessing is hopeless; the code's only copy outside this
 * process's memory is the person's screen.
 */
import { createHash, randomInt, timingSafeEqual } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const LENGTH = 8;

/** A fresh code, as shown: `K7QF-2M9X`. */
export function newCode(): string {
  let code = '';
  for (let i = 0; i < LENGTH; i++) code += ALPHABET[randomInt(ALPHABET.length)];
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

/** A typed code in its canonical form, or undefined when it cannot be one. */
export function normalizeCode(typed: string): string | undefined {
  if (typed.length > 64) return undefined;
  const canonical = typed.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
  if (canonical.length !== LENGTH || [...canonical].some((c) => !ALPHABET.includes(c))) return undefined;
  return canonical;
}

/** What is kept of a code once it is shown: its hash (the comparison needs nothing more). */
export function codeHash(code: string): Buffer {
  return createHash('sha256')
    .update(normalizeCode(code) ?? '', 'utf8')
    .digest();
}

/** Whether a typed code is the one whose hash is kept, in constant time. */
export function sameCode(typed: string, hash: Buffer): boolean {
  const canonical = normalizeCode(typed);
  if (canonical === undefined) return false;
  const got = createHash('sha256').update(canonical, 'utf8').digest();
  return got.length === hash.length && timingSafeEqual(got, hash);
}
