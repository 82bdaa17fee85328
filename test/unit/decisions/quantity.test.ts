import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  QuantityError,
  formatCpuMillis,
  formatMemoryBytes,
  parseCpuMillis,
  parseMemoryBytes,
} from "../../../src/decisions/quantity.ts";

describe("parseCpuMillis", () => {
  it.each([
    ["500m", 500],
    ["2", 2000],
    ["0.5", 500],
    [".5", 500],
    ["1.", 1000],
    ["0.1", 100],
    ["1.001", 1001],
    ["100u", 1],
    ["1n", 1],
    ["0", 0],
    ["1k", 1_000_000],
    ["2e-3", 2],
    ["1E3", 1_000_000],
    ["+3", 3000],
  ])("%s is %d millicores", (text, millis) => {
    expect(parseCpuMillis(text)).toBe(millis);
  });

  it("accepts numbers as the API returns them", () => {
    expect(parseCpuMillis(2)).toBe(2000);
    expect(parseCpuMillis(0.25)).toBe(250);
  });

  it("rounds a fraction of a millicore up, as the API server's MilliValue does", () => {
    expect(parseCpuMillis("1500u")).toBe(2);
    expect(parseCpuMillis("0.0001")).toBe(1);
  });

  it.each(["", "m", "1.2.3", "abc", "1 m", "-1", "1Ki5", "e3", "1e"])("refuses %j", (text) => {
    expect(() => parseCpuMillis(text)).toThrow(QuantityError);
  });
});

describe("parseMemoryBytes", () => {
  it.each([
    ["512Mi", 512 * 1024 ** 2],
    ["1G", 1e9],
    ["1e3", 1000],
    ["128974848", 128974848],
    ["129e6", 129_000_000],
    ["123Mi", 128974848],
    ["1.5Gi", 1.5 * 1024 ** 3],
    ["1Ki", 1024],
    ["1k", 1000],
    ["1M", 1_000_000],
    ["2Ti", 2 * 1024 ** 4],
    ["1Pi", 1024 ** 5],
    ["100m", 1],
    ["1P", 1e15],
  ])("%s is %d bytes", (text, bytes) => {
    expect(parseMemoryBytes(text)).toBe(bytes);
  });

  it("refuses values beyond a safe integer instead of losing precision", () => {
    expect(() => parseMemoryBytes("8Ei")).toThrow(/too large/);
    expect(() => parseMemoryBytes("1E")).toThrow(/too large/);
  });

  it("reads the memory and cpu of the same quantity consistently", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.constantFrom("", "k", "M", "Ki", "Mi"),
        (n, suffix) => {
          const factor = { "": 1, k: 1e3, M: 1e6, Ki: 1024, Mi: 1024 ** 2 }[suffix]!;
          expect(parseMemoryBytes(`${n}${suffix}`)).toBe(n * factor);
        },
      ),
    );
  });
});

describe("format", () => {
  it("writes canonical quantities", () => {
    expect(formatCpuMillis(2000)).toBe("2");
    expect(formatCpuMillis(500)).toBe("500m");
    expect(formatMemoryBytes(512 * 1024 ** 2)).toBe("512Mi");
    expect(formatMemoryBytes(1000)).toBe("1000");
    expect(formatMemoryBytes(0)).toBe("0");
  });

  it("round-trips through parse", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), (n) => {
        expect(parseCpuMillis(formatCpuMillis(n))).toBe(n);
        expect(parseMemoryBytes(formatMemoryBytes(n))).toBe(n);
      }),
    );
  });

  it("refuses what is not a count", () => {
    expect(() => formatCpuMillis(1.5)).toThrow(QuantityError);
    expect(() => formatMemoryBytes(-1)).toThrow(QuantityError);
  });
});
