// Kubernetes resource quantities ("500m", "2", "0.5", "512Mi", "1G", "1e3") to integers.
//
// The arithmetic is exact (BigInt over a rational), because floating point turns "0.1" cpu into
// 100.00000000000001 millicores; results round up like the API server's MilliValue() and Value().

const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|n|u|m|k|M|G|T|P|E)?$/;

const BINARY_EXPONENTS: Record<string, bigint> = { Ki: 10n, Mi: 20n, Gi: 30n, Ti: 40n, Pi: 50n, Ei: 60n };
const DECIMAL_EXPONENTS: Record<string, number> = {
  n: -9,
  u: -6,
  m: -3,
  "": 0,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};

/** An exact quantity: numerator / denominator, denominator > 0. */
interface Exact {
  numerator: bigint;
  denominator: bigint;
}

export class QuantityError extends Error {
  constructor(value: unknown, why: string) {
    super(`invalid quantity ${JSON.stringify(value)}: ${why}`);
    this.name = "QuantityError";
  }
}

function parseExact(value: string | number): Exact {
  const text = typeof value === "number" ? numberToText(value) : value.trim();
  const match = QUANTITY.exec(text);
  if (!match) throw new QuantityError(value, "not a Kubernetes quantity");
  const [, sign, number, suffix = ""] = match as unknown as [string, string, string, string | undefined];
  const [whole = "", fraction = ""] = number.split(".");
  let numerator = BigInt((whole || "0") + fraction);
  let denominator = 10n ** BigInt(fraction.length);
  if (sign === "-") numerator = -numerator;

  if (suffix in BINARY_EXPONENTS) {
    numerator *= 2n ** BINARY_EXPONENTS[suffix]!;
  } else {
    const exponent = suffix in DECIMAL_EXPONENTS ? DECIMAL_EXPONENTS[suffix]! : Number(suffix.slice(1));
    if (!Number.isSafeInteger(exponent) || Math.abs(exponent) > 60) {
      throw new QuantityError(value, "exponent out of range");
    }
    if (exponent >= 0) numerator *= 10n ** BigInt(exponent);
    else denominator *= 10n ** BigInt(-exponent);
  }
  return { numerator, denominator };
}

function numberToText(value: number): string {
  if (!Number.isFinite(value)) throw new QuantityError(value, "not finite");
  // Plain decimal notation for the common case; exponent notation ("1e+21") parses too.
  return String(value).replace("e+", "e");
}

function ceilToSafeInteger(exact: Exact, value: unknown): number {
  const { numerator, denominator } = exact;
  if (numerator < 0n) throw new QuantityError(value, "negative");
  const ceiling = (numerator + denominator - 1n) / denominator;
  if (ceiling > BigInt(Number.MAX_SAFE_INTEGER)) throw new QuantityError(value, "too large");
  return Number(ceiling);
}

/** A cpu quantity in millicores, rounded up: "500m" → 500, "2" → 2000, "0.5" → 500, 1 → 1000. */
export function parseCpuMillis(value: string | number): number {
  const exact = parseExact(value);
  return ceilToSafeInteger({ numerator: exact.numerator * 1000n, denominator: exact.denominator }, value);
}

/** A memory quantity in bytes, rounded up: "512Mi" → 536870912, "1G" → 1e9, "1e3" → 1000. */
export function parseMemoryBytes(value: string | number): number {
  return ceilToSafeInteger(parseExact(value), value);
}

/** Millicores as a canonical cpu quantity: 2000 → "2", 500 → "500m". */
export function formatCpuMillis(millis: number): string {
  if (!Number.isSafeInteger(millis) || millis < 0)
    throw new QuantityError(millis, "not a count of millicores");
  return millis % 1000 === 0 ? String(millis / 1000) : `${millis}m`;
}

/** Bytes as a canonical memory quantity, in the largest binary unit that divides it: 536870912 → "512Mi". */
export function formatMemoryBytes(bytes: number): string {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new QuantityError(bytes, "not a count of bytes");
  if (bytes === 0) return "0";
  let value = BigInt(bytes);
  const units = ["", "Ki", "Mi", "Gi", "Ti", "Pi"];
  let unit = 0;
  while (unit < units.length - 1 && value % 1024n === 0n) {
    value /= 1024n;
    unit++;
  }
  return `${value}${units[unit]}`;
}
