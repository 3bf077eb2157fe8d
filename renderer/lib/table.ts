/** The keyboard arithmetic of the console's tables (components/DataTable.tsx). Pure, unit-tested. */

/** Where a row key moves the active row, or undefined when the key does not move it. */
export function nextRowIndex(key: string, index: number, count: number, page: number): number | undefined {
  if (count <= 0) return undefined;
  const last = count - 1;
  switch (key) {
    case 'ArrowDown':
      return Math.min(last, index + 1);
    case 'ArrowUp':
      return Math.max(0, index - 1);
    case 'PageDown':
      return Math.min(last, index + page);
    case 'PageUp':
      return Math.max(0, index - page);
    case 'Home':
      return 0;
    case 'End':
      return last;
    default:
      return undefined;
  }
}

/** A column's width after a key on its resize handle (Arrow Left/Right by 16 px, Shift by 64), never below `min`. */
export function resizedWidth(key: string, width: number, min: number, shift = false): number | undefined {
  const step = shift ? 64 : 16;
  if (key === 'ArrowRight') return width + step;
  if (key === 'ArrowLeft') return Math.max(min, width - step);
  return undefined;
}
