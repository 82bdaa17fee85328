// Kubernetes resource quantities ("500m", "512Mi", 2): the schema and an approximate numeric value.

/**
 * A non-negative Kubernetes quantity: a decimal number with an optional binary suffix
 * (Ki, Mi, ... Ei), decimal suffix (n, u, m, k, M, G, T, P, E) or exponent. The same grammar as
 * resource.Quantity, without the sign, because every quantity here is an amount of capacity.
 */
export const QUANTITY_PATTERN =
  "^(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$";

const QUANTITY_REGEX = new RegExp(QUANTITY_PATTERN);

const SUFFIX_FACTORS: Record<string, number> = {
  "": 1,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

export type Quantity = string | number;

export function isQuantity(value: Quantity): boolean {
  if (typeof value === "number") return Number.isInteger(value) && value >= 0;
  return QUANTITY_REGEX.test(value);
}

/**
 * The value of a quantity in base units (cores, bytes) as a float; exact for every integer
 * below 2^53, which covers any memory size in bytes and any cpu amount in millicores.
 * Throws on a string that is not a quantity.
 */
export function quantityValue(value: Quantity): number {
  if (typeof value === "number") return value;
  if (!QUANTITY_REGEX.test(value)) throw new Error(`not a quantity: ${JSON.stringify(value)}`);
  const match = /^([0-9.]+)(.*)$/.exec(value);
  if (!match) throw new Error(`not a quantity: ${JSON.stringify(value)}`);
  const mantissa = match[1]!;
  const suffix = match[2]!;
  const factor = SUFFIX_FACTORS[suffix];
  // Not a suffix, so the grammar leaves an exponent ("1e3"); "1E" alone is the exa suffix.
  return factor === undefined ? Number(mantissa + suffix) : Number(mantissa) * factor;
}
