// Colour for terminals, plain text for pipes: every render takes a Style, so the same code serves both.
import { styleText } from "node:util";

/** What a piece of text means to the reader; the Style decides how (and whether) to show it. */
export type Tone = "ok" | "warn" | "bad" | "muted" | "strong";

export interface Style {
  readonly color: boolean;
  paint(tone: Tone | undefined, text: string): string;
}

const FORMATS = {
  ok: "green",
  warn: "yellow",
  bad: "red",
  muted: "gray",
  strong: "bold",
} as const satisfies Record<Tone, Parameters<typeof styleText>[0]>;

export function makeStyle(color: boolean): Style {
  return {
    color,
    // validateStream off: the caller has already decided, from the stream it writes to.
    paint: (tone, text) =>
      color && tone && text ? styleText(FORMATS[tone], text, { validateStream: false }) : text,
  };
}

/** Colour only on a terminal that has colours, honouring NO_COLOR and FORCE_COLOR. */
export function wantsColor(stream: { isTTY?: boolean; hasColors?: () => boolean }): boolean {
  return stream.isTTY === true && typeof stream.hasColors === "function" && stream.hasColors();
}

/** The tone of a phase word, the same in every table. */
export function phaseTone(phase: string | undefined): Tone | undefined {
  switch (phase) {
    case "Ready":
    case "Bound":
    case "True":
      return "ok";
    case "Pending":
    case "Revoking":
    case "FailingOver":
    case "Degraded":
    case "Unknown":
      return "warn";
    case "Failed":
    case "Revoked":
    case "False":
      return "bad";
    case "Expired":
      return "muted";
    default:
      return undefined;
  }
}
