/**
 * A table that draws only the rows in view, for audit logs of any length. It stays a real table
 * for screen readers (aria-rowcount and aria-rowindex say where a row sits in the whole), scrolls
 * by keyboard (the scroll area takes focus), and each row's first cell is a button that opens it.
 */
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { visibleRange } from '../lib/virtual.js';

export interface Column<T> {
  id: string;
  header: string;
  width?: string;
  cell: (row: T) => ReactNode;
}

export function VirtualTable<T>({
  rows,
  columns,
  rowKey,
  label,
  rowHeight = 34,
  height = 420,
  onOpen,
  openLabel,
  selected,
}: {
  rows: T[];
  columns: Column<T>[];
  rowKey: (row: T) => string;
  label: string;
  rowHeight?: number;
  height?: number;
  onOpen?: (row: T) => void;
  openLabel?: (row: T) => string;
  selected?: string;
}) {
  const scroller = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(height);
  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const observer = new ResizeObserver(() => setViewport(el.clientHeight));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  const { start, end } = visibleRange(scrollTop, viewport, rowHeight, rows.length);
  const before = start * rowHeight;
  const after = Math.max(0, (rows.length - end) * rowHeight);
  return (
    <div className="vtable" ref={scroller} style={{ maxHeight: height }} tabIndex={0} role="region" aria-label={`${label} (scrollable)`} onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}>
      <table aria-rowcount={rows.length + 1}>
        <caption className="visually-hidden">{label}</caption>
        <thead>
          <tr aria-rowindex={1}>
            {columns.map((c) => (
              <th key={c.id} scope="col" style={c.width ? { width: c.width } : undefined}>
                {c.header}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {before > 0 ? (
            <tr aria-hidden="true" className="spacer">
              <td colSpan={columns.length} style={{ height: before }} />
            </tr>
          ) : null}
          {rows.slice(start, end).map((row, i) => {
            const key = rowKey(row);
            return (
              <tr key={key} aria-rowindex={start + i + 2} style={{ height: rowHeight }} className={key === selected ? 'selected' : undefined}>
                {columns.map((c, ci) => (
                  <td key={c.id}>
                    {ci === 0 && onOpen ? (
                      <button type="button" className="link" onClick={() => onOpen(row)} aria-label={openLabel?.(row)}>
                        {c.cell(row)}
                      </button>
                    ) : (
                      c.cell(row)
                    )}
                  </td>
                ))}
              </tr>
            );
          })}
          {after > 0 ? (
            <tr aria-hidden="true" className="spacer">
              <td colSpan={columns.length} style={{ height: after }} />
            </tr>
          ) : null}
        </tbody>
      </table>
    </div>
  );
}
