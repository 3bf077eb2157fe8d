/**
 * A table that behaves like one, for lists of any length: TanStack Table keeps the sorting, the
 * quick filter and the column widths; TanStack Virtual draws only the rows in view. It stays a real
 * table for screen readers (aria-rowcount and aria-rowindex say where a row sits in the whole,
 * aria-sort which column orders it).
 *
 * By keyboard: a column's header button sorts by it (again: the other way, then unsorted); each
 * column edge is a separator that Arrow Left/Right resize; in the rows, Arrow Up/Down, Page Up/Down,
 * Home and End move between rows and Enter opens the row. With the mouse: click a header, drag an
 * edge (double-click it to reset), click a row.
 */
import {
  columnFilteringFeature,
  columnResizingFeature,
  columnSizingFeature,
  createFilteredRowModel,
  createSortedRowModel,
  filterFn_includesString,
  globalFilteringFeature,
  rowSortingFeature,
  sortFn_alphanumeric,
  sortFn_basic,
  tableFeatures,
  useTable,
  type ColumnDef,
  type RowData,
  type SortingState,
} from '@tanstack/react-table';
import { useVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useId, useMemo, useRef, useState, type KeyboardEvent, type ReactNode } from 'react';
import { nextRowIndex, resizedWidth } from '../lib/table.js';

const features = tableFeatures({
  rowSortingFeature,
  columnFilteringFeature,
  globalFilteringFeature,
  columnSizingFeature,
  columnResizingFeature,
  sortedRowModel: createSortedRowModel(),
  filteredRowModel: createFilteredRowModel(),
  sortFns: { alphanumeric: sortFn_alphanumeric, basic: sortFn_basic },
  filterFns: { includesString: filterFn_includesString },
});

export interface DataColumn<T extends RowData> {
  id: string;
  header: string;
  /** What the column sorts and filters by. */
  value: (row: T) => string | number;
  /** What the cell shows (default: the value). */
  cell?: (row: T) => ReactNode;
  /** Initial width in pixels. */
  size?: number;
}

export interface DataTableProps<T extends RowData> {
  rows: T[];
  columns: DataColumn<T>[];
  rowKey: (row: T) => string;
  label: string;
  onOpen?: (row: T) => void;
  /** How a row is announced to screen readers when it opens ("Event 42"). */
  rowLabel?: (row: T) => string;
  selected?: string;
  rowHeight?: number;
  height?: number;
  initialSort?: SortingState;
}

export function DataTable<T extends RowData>({
  rows,
  columns,
  rowKey,
  label,
  onOpen,
  rowLabel,
  selected,
  rowHeight = 34,
  height = 460,
  initialSort = [],
}: DataTableProps<T>) {
  const filterId = useId();
  const [sorting, setSorting] = useState<SortingState>(initialSort);
  const [globalFilter, setGlobalFilter] = useState('');
  const [active, setActive] = useState(0);
  const scroller = useRef<HTMLDivElement>(null);
  const focusAfterRender = useRef(false);

  const defs = useMemo<ColumnDef<typeof features, T>[]>(
    () =>
      columns.map((c) => ({
        id: c.id,
        header: c.header,
        accessorFn: (row: T) => c.value(row),
        cell: (info) => (c.cell ? c.cell(info.row.original) : String(info.getValue() ?? '')),
        size: c.size ?? 140,
        minSize: 48,
        sortFn: 'alphanumeric',
        // Every column sorts ascending first, then descending, then not at all: the same for numbers and words.
        sortDescFirst: false,
        filterFn: 'includesString',
      })),
    [columns],
  );

  const table = useTable({
    features,
    columns: defs,
    data: rows,
    getRowId: (row: T) => rowKey(row),
    state: { sorting, globalFilter },
    onSortingChange: setSorting,
    onGlobalFilterChange: setGlobalFilter,
    globalFilterFn: 'includesString',
    columnResizeMode: 'onChange',
  });

  const visible = table.getRowModel().rows;
  const virtualizer = useVirtualizer({ count: visible.length, getScrollElement: () => scroller.current, estimateSize: () => rowHeight, overscan: 12 });
  const items = virtualizer.getVirtualItems();
  const before = items.length > 0 ? items[0]!.start : 0;
  const after = items.length > 0 ? virtualizer.getTotalSize() - items[items.length - 1]!.end : 0;
  const current = Math.min(active, Math.max(0, visible.length - 1));

  // Moved by keyboard to a row that was not drawn yet: focus it once it is.
  useEffect(() => {
    if (!focusAfterRender.current) return;
    const row = scroller.current?.querySelector<HTMLElement>(`tr[data-index="${current}"]`);
    if (row) {
      focusAfterRender.current = false;
      row.focus({ preventScroll: true });
    }
  });

  const moveTo = (index: number) => {
    setActive(index);
    focusAfterRender.current = true;
    virtualizer.scrollToIndex(index, { align: 'auto' });
  };

  const onRowKey = (event: KeyboardEvent<HTMLTableRowElement>, index: number, row: T) => {
    if ((event.key === 'Enter' || event.key === ' ') && onOpen) {
      event.preventDefault();
      onOpen(row);
      return;
    }
    const page = Math.max(1, Math.floor((scroller.current?.clientHeight ?? height) / rowHeight) - 1);
    const next = nextRowIndex(event.key, index, visible.length, page);
    if (next === undefined) return;
    event.preventDefault();
    moveTo(next);
  };

  return (
    <div className="data-table">
      <div className="data-table-tools">
        <label htmlFor={filterId}>Filter these rows</label>
        <input id={filterId} type="search" value={globalFilter} onChange={(e) => setGlobalFilter(e.target.value)} autoComplete="off" spellCheck={false} />
        <span className="muted small" role="status">
          {visible.length === rows.length
            ? `${rows.length.toLocaleString('en')} rows`
            : `${visible.length.toLocaleString('en')} of ${rows.length.toLocaleString('en')} rows`}
        </span>
      </div>
      <div className="vtable" ref={scroller} style={{ maxHeight: height }} role="region" aria-label={`${label} (scrollable)`}>
        <table aria-rowcount={visible.length + 1} style={{ width: table.getTotalSize() }}>
          <caption className="visually-hidden">{label}</caption>
          <thead>
            {table.getHeaderGroups().map((group) => (
              <tr key={group.id} aria-rowindex={1}>
                {group.headers.map((header) => {
                  const sorted = header.column.getIsSorted();
                  const title = String(header.column.columnDef.header ?? header.id);
                  return (
                    <th
                      key={header.id}
                      scope="col"
                      style={{ width: header.getSize() }}
                      aria-sort={sorted === 'asc' ? 'ascending' : sorted === 'desc' ? 'descending' : 'none'}
                    >
                      <button type="button" className="sort" onClick={header.column.getToggleSortingHandler()} title={`Sort by ${title}`}>
                        {title}
                        <span aria-hidden="true" className="sort-mark">
                          {sorted === 'asc' ? ' ▲' : sorted === 'desc' ? ' ▼' : ''}
                        </span>
                      </button>
                      <span
                        role="separator"
                        aria-orientation="vertical"
                        aria-label={`Resize ${title}`}
                        aria-valuenow={header.getSize()}
                        aria-valuemin={48}
                        tabIndex={0}
                        className={`resizer${header.column.getIsResizing() ? ' resizing' : ''}`}
                        onMouseDown={header.getResizeHandler()}
                        onTouchStart={header.getResizeHandler()}
                        onDoubleClick={() => header.column.resetSize()}
                        onKeyDown={(e) => {
                          const width = resizedWidth(e.key, header.getSize(), 48);
                          if (width === undefined) return;
                          e.preventDefault();
                          table.setColumnSizing((old) => ({ ...old, [header.column.id]: width }));
                        }}
                      />
                    </th>
                  );
                })}
              </tr>
            ))}
          </thead>
          <tbody>
            {before > 0 ? (
              <tr aria-hidden="true" className="spacer">
                <td colSpan={columns.length} style={{ height: before }} />
              </tr>
            ) : null}
            {items.map((item) => {
              const row = visible[item.index]!;
              const key = row.id;
              const classes = [key === selected ? 'selected' : '', onOpen ? 'openable' : ''].filter(Boolean).join(' ');
              return (
                <tr
                  key={key}
                  data-index={item.index}
                  aria-rowindex={item.index + 2}
                  aria-selected={key === selected}
                  aria-label={rowLabel ? `${rowLabel(row.original)}${onOpen ? ': Enter opens its details' : ''}` : undefined}
                  tabIndex={item.index === current ? 0 : -1}
                  style={{ height: rowHeight }}
                  className={classes || undefined}
                  onKeyDown={(e) => onRowKey(e, item.index, row.original)}
                  onFocus={() => setActive(item.index)}
                  onClick={() => {
                    setActive(item.index);
                    onOpen?.(row.original);
                  }}
                >
                  {row.getAllCells().map((cell) => (
                    <td key={cell.id}>
                      <table.FlexRender cell={cell} />
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
    </div>
  );
}
