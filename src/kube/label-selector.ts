// Matching a Kubernetes label selector string ("tier=prod,zone in (a,b),!legacy") against labels,
// for the settings' --pool-selector; the API server does the same when a selector is sent to it.

type Requirement = (labels: Record<string, string>) => boolean;

const SET = /^([A-Za-z0-9_./-]+)\s+(in|notin)\s+\(([^)]*)\)$/;
const EQUALITY = /^([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)$/;
const EXISTS = /^(!?)([A-Za-z0-9_./-]+)$/;

/** Splits on commas outside parentheses. */
function terms(selector: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of selector) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(current.trim());
      current = "";
    } else current += ch;
  }
  if (current.trim()) out.push(current.trim());
  return out;
}

/** Parses a selector; throws on one it cannot read. The empty selector matches everything. */
export function parseLabelSelector(selector: string): Requirement {
  const requirements = terms(selector).map((term): Requirement => {
    let m = SET.exec(term);
    if (m) {
      const [, key, op, list] = m as unknown as [string, string, string, string];
      const values = new Set(
        list
          .split(",")
          .map((v) => v.trim())
          .filter(Boolean),
      );
      return op === "in"
        ? (l) => key in l && values.has(l[key]!)
        : (l) => !(key in l) || !values.has(l[key]!);
    }
    m = EQUALITY.exec(term);
    if (m) {
      const [, key, op, value] = m as unknown as [string, string, string, string];
      return op === "!=" ? (l) => l[key] !== value : (l) => l[key] === value;
    }
    m = EXISTS.exec(term);
    if (m) {
      const [, not, key] = m as unknown as [string, string, string];
      return not ? (l) => !(key in l) : (l) => key in l;
    }
    throw new Error(`cannot read "${term}" in the label selector "${selector}"`);
  });
  return (labels) => requirements.every((r) => r(labels));
}
