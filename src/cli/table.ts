// Aligned text tables, in the style of kubectl get: upper-case headers, columns padded with spaces.
import type { Style, Tone } from "./style.ts";

export interface Cell {
  text: string;
  tone?: Tone;
}

export type CellInput = string | number | Cell | undefined;

const NONE = "-";

function toCell(input: CellInput): Cell {
  if (input === undefined || input === "") return { text: NONE, tone: "muted" };
  if (typeof input === "string" || typeof input === "number") return { text: String(input) };
  return input.text === "" ? { text: NONE, tone: "muted" } : input;
}

/** Columns are as wide as their widest cell; colour is applied after padding so it never skews widths. */
export function renderTable(headers: readonly string[], rows: readonly CellInput[][], style: Style): string {
  const cells = rows.map((row) => headers.map((_, i) => toCell(row[i])));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]!.text.length)));
  const line = (row: Cell[]) =>
    row
      .map((cell, i) => {
        const last = i === row.length - 1;
        const padded = last ? cell.text : cell.text.padEnd(widths[i]!);
        return cell.tone ? style.paint(cell.tone, cell.text) + padded.slice(cell.text.length) : padded;
      })
      .join("   ")
      .trimEnd();
  const header = line(headers.map((h) => ({ text: h.toUpperCase(), tone: "strong" as const })));
  return [header, ...cells.map(line)].join("\n") + "\n";
}

/** A column of key: value lines, for one object shown in detail. */
export function renderFields(fields: readonly [string, CellInput][], style: Style): string {
  const width = Math.max(...fields.map(([k]) => k.length)) + 1;
  return (
    fields
      .map(([key, value]) => {
        const cell = toCell(value);
        return `${style.paint("strong", `${key}:`.padEnd(width))}  ${style.paint(cell.tone, cell.text)}`;
      })
      .join("\n") + "\n"
  );
}
