/**
 * Tables as Markdown pipes: readable in a terminal, and pasted as they are into bench/RESULTS.md.
 */

export type Cell = string | number | boolean | undefined;

export interface Table {
  title: string;
  headers: string[];
  rows: Cell[][];
  /** Lines printed under the table: what a column means, which target applies. */
  notes?: string[];
}

export function formatCell(cell: Cell): string {
  if (cell === undefined) return '–';
  if (typeof cell === 'boolean') return cell ? 'yes' : 'no';
  if (typeof cell === 'number') {
    if (Number.isNaN(cell)) return '–';
    if (!Number.isFinite(cell)) return cell > 0 ? '∞' : '-∞';
    return Number.isInteger(cell) ? String(cell) : cell.toFixed(Math.abs(cell) >= 100 ? 0 : 2);
  }
  return cell.replaceAll('|', '\\|');
}

export function renderTable(table: Table): string {
  const cells = table.rows.map((row) => row.map(formatCell));
  const widths = table.headers.map((header, i) =>
    Math.max(header.length, 3, ...cells.map((row) => (row[i] ?? '').length)),
  );
  const line = (values: string[]) =>
    `| ${values.map((value, i) => value.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const numeric = table.headers.map((_, i) => table.rows.every((row) => typeof row[i] !== 'string'));
  const rule = `| ${widths.map((w, i) => (numeric[i] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`;
  const notes = (table.notes ?? []).map((note) => `${note}\n`).join('');
  return `### ${table.title}\n\n${line(table.headers)}\n${rule}\n${cells.map(line).join('\n')}\n${notes ? `\n${notes}` : ''}`;
}
