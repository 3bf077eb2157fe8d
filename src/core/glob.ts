/**
 * Names with `*` wildcards (`github__*`, `*__delete_*`), as the user's restrictions and the quota
 * rules write them. A pattern matching the whole name; `*` stands for any run of characters, every
 * other character for itself.
 */
export function globToRegExp(glob: string): RegExp {
  return new RegExp(
    '^' +
      glob
        .split('*')
        .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*') +
      '$',
  );
}
