// Prints results as aligned tables (for people) or JSON (for scripts).

export type OutputFormat = 'table' | 'json';

export interface Column<T> {
  header: string;
  value: (row: T) => unknown;
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (Array.isArray(v)) return v.map(cell).join(',');
  if (typeof v === 'object') return Object.entries(v as Record<string, unknown>).map(([k, x]) => `${k}=${cell(x)}`).join(',') || '-';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

export function printRows<T>(format: OutputFormat, rows: readonly T[], columns: readonly Column<T>[], write: (s: string) => void = (s) => process.stdout.write(s)): void {
  if (format === 'json') {
    write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  const table = [columns.map((c) => c.header), ...rows.map((r) => columns.map((c) => cell(c.value(r))))];
  const widths = columns.map((_, i) => Math.max(...table.map((line) => line[i]!.length)));
  for (const line of table) write(`${line.map((v, i) => (i === line.length - 1 ? v : v.padEnd(widths[i]!))).join('  ')}\n`);
}

export function printObject(format: OutputFormat, obj: unknown, write: (s: string) => void = (s) => process.stdout.write(s)): void {
  if (format === 'json') {
    write(`${JSON.stringify(obj, null, 2)}\n`);
    return;
  }
  const entries = Object.entries(obj as Record<string, unknown>);
  const width = Math.max(...entries.map(([k]) => k.length));
  for (const [k, v] of entries) {
    const text = typeof v === 'object' && v !== null && !Array.isArray(v) ? JSON.stringify(v) : Array.isArray(v) && v.some((x) => typeof x === 'object') ? JSON.stringify(v) : cell(v);
    write(`${k.padEnd(width)}  ${text}\n`);
  }
}
