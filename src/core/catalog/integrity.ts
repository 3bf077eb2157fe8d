/**
 * Integrity of package bytes: npm's Subresource Integrity strings (`sha512-<base64>`, what a
 * packument's `dist.integrity` holds) and `sha256:<hex>` digests (PyPI files, OCI images). The
 * installer hashes what the package manager fetched and compares it with the signed entry before
 * anything of it runs.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export function npmIntegrityOf(bytes: Uint8Array): string {
  return `sha512-${createHash('sha512').update(bytes).digest('base64')}`;
}

export function sha256DigestOf(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Compares two integrity strings of the same form in constant time (a mismatch of form is a mismatch). */
export function sameIntegrity(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * A digest of a directory's files, given as (relative path, SHA-256 hex) pairs: what the installer
 * recorded at install and checks again before each start, so a program edited after it was
 * verified does not run.
 */
export function treeDigest(files: { path: string; sha256: string }[]): string {
  const hash = createHash('sha256');
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) hash.update(`${f.path}\0${f.sha256}\n`);
  return hash.digest('hex');
}
