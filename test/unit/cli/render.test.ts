import { stripVTControlCharacters } from "node:util";
import { describe, expect, it } from "vitest";
import {
  statusReport,
  summarizeClaim,
  summarizePool,
  summarizeService,
  type SlotSummary,
} from "../../../src/cli/model.ts";
import {
  renderClaims,
  renderFailover,
  renderPoolDetail,
  renderPools,
  renderServices,
  renderStatus,
  type RenderContext,
} from "../../../src/cli/render.ts";
import { makeStyle, wantsColor } from "../../../src/cli/style.ts";
import { renderTable } from "../../../src/cli/table.ts";
import { NOW, claims, failingOver, newPool, pool, service } from "./fixtures.ts";

const plain: RenderContext = { style: makeStyle(false), now: NOW };
const colour: RenderContext = { style: makeStyle(true), now: NOW };

/** The rows of a kubectl-style table as header -> cell maps (cells never hold two spaces in a row). */
function table(text: string): Record<string, string>[] {
  const [header, ...lines] = text.trimEnd().split("\n");
  const names = header!.split(/\s{2,}/);
  return lines.map((line) => {
    const cells = line.split(/\s{2,}/);
    expect(cells).toHaveLength(names.length);
    return Object.fromEntries(names.map((n, i) => [n, cells[i]!]));
  });
}

const report = statusReport({ services: [service, failingOver], pools: [pool, newPool], claims });

describe("tables", () => {
  it("align columns under upper-case headers and show absent values as -", () => {
    const text = renderTable(
      ["name", "zone"],
      [
        ["a-long-name", undefined],
        ["b", "zone-b"],
      ],
      plain.style,
    );
    expect(text).toBe("NAME          ZONE\na-long-name   -\nb             zone-b\n");
  });

  it("carry no escape codes without colour, and the same text with colour once codes are stripped", () => {
    const text = renderStatus(report, plain);
    expect(text).not.toContain("\x1b[");
    const coloured = renderStatus(report, colour);
    expect(coloured).toContain("\x1b[");
    expect(stripVTControlCharacters(coloured)).toBe(text);
  });

  it("colour phases by what they mean", () => {
    const rows = renderClaims(report.claims, colour);
    expect(rows).toContain("\x1b[32mBound\x1b[39m");
    expect(rows).toContain("\x1b[31mRevoked\x1b[39m");
    expect(rows).toContain("\x1b[33mPending\x1b[39m");
  });
});

describe("services", () => {
  it("show phase, epoch, head, servers ready and the last failover in one line each", () => {
    const [cache, kv] = table(renderServices(report.services, plain));
    expect(kv).toEqual({
      NAMESPACE: "storage",
      NAME: "kv",
      PHASE: "Ready",
      EPOCH: "4",
      HEAD: "kv-head-4",
      ZONE: "zone-a",
      NODE: "node-a-1",
      SERVERS: "2/3",
      FAILOVERS: "3",
      "LAST FAILOVER": "NodeNotReady, zone-b→zone-a, 1.24s, revoked tenants/batch-low, 9m58s ago",
      AGE: "2d",
    });
    expect(cache).toMatchObject({
      PHASE: "FailingOver (Revoked)",
      EPOCH: "7",
      SERVERS: "-",
      "LAST FAILOVER": "-",
    });
  });

  it("say so when there are none", () => {
    expect(renderServices([], plain)).toBe("No storage services found.\n");
  });
});

describe("pools", () => {
  it("show slots placed of desired, counts by state and readiness", () => {
    const [contingency, fresh] = table(renderPools(report.pools, plain));
    expect(contingency).toEqual({
      NAME: "contingency",
      "SLOT SIZE": "500m/512Mi",
      SLOTS: "5/5",
      FREE: "1",
      LEASED: "2",
      RESERVED: "1",
      PENDING: "1",
      ZONES: "zone-a,zone-b,zone-c",
      READY: "False (PlaceholdersPending)",
      AGE: "3h",
    });
    expect(fresh).toMatchObject({ SLOTS: "0/3", READY: "-", AGE: "-" });
  });

  it("show one pool's zones and every slot with its holder", () => {
    const slots: SlotSummary[] = [
      {
        lease: "slot-contingency-zone-b-1",
        pool: "contingency",
        zone: "zone-b",
        node: "node-b-1",
        holder: "free",
      },
      {
        lease: "slot-contingency-zone-a-0",
        pool: "contingency",
        zone: "zone-a",
        node: "node-a-1",
        holder: "service:storage/kv",
      },
    ];
    const text = renderPoolDetail(summarizePool(pool), slots, plain);
    expect(text).toMatch(/^Slots: +5 of 5 \(1 free, 2 leased, 1 reserved, 1 pending\)$/m);
    expect(text).toMatch(/^Message: +1 slots not yet holding capacity$/m);
    expect(text).toMatch(/^Tenants from: +tenants$/m);
    const [, zonesPart, slotsPart] = text.split(/\n(?:Zones|Slots)\n/);
    expect(table(zonesPart!).map((z) => [z.ZONE, z.SLOTS, z.FREE, z.PENDING])).toEqual([
      ["zone-a", "2/2", "0", "0"],
      ["zone-b", "2/2", "1", "0"],
      ["zone-c", "1/1", "0", "1"],
    ]);
    expect(table(slotsPart!)).toEqual([
      { SLOT: "slot-contingency-zone-a-0", ZONE: "zone-a", NODE: "node-a-1", HOLDER: "service:storage/kv" },
      { SLOT: "slot-contingency-zone-b-1", ZONE: "zone-b", NODE: "node-b-1", HOLDER: "free" },
    ]);
  });

  it("say whether a failover would find a slot now, when the operator has estimated it", () => {
    const estimated = {
      ...pool,
      status: {
        ...pool.status,
        failoverCapacity: { services: 6, singleFailure: 1, zoneOutage: 0.5, worstZone: "zone-a" },
      },
    };
    expect(renderPoolDetail(summarizePool(estimated), undefined, plain)).toMatch(
      /^Failover capacity: +100% of 6 heads would find a slot alone, 50% if zone-a failed$/m,
    );
    expect(renderPoolDetail(summarizePool(pool), undefined, plain)).toMatch(/^Failover capacity: +-$/m);
  });

  it("leave the slots out when they could not be read", () => {
    expect(renderPoolDetail(summarizePool(newPool), undefined, plain)).not.toContain("\nSlots\n");
  });
});

describe("claims", () => {
  it("show the asked-for zone in brackets until a slot is granted, and drop the namespace column in one namespace", () => {
    const rows = table(renderClaims(claims.map(summarizeClaim), plain, { namespaceColumn: false }));
    expect(Object.keys(rows[0]!)).not.toContain("NAMESPACE");
    expect(rows.map((r) => [r.NAME, r.PHASE, r.ZONE, r.BID, r.REASON])).toEqual([
      ["batch-low", "Revoked", "zone-a", "10", "Failover"],
      ["batch-high", "Bound", "zone-b", "100", "-"],
      ["waiting", "Pending", "(zone-c)", "0", "-"],
    ]);
  });
});

describe("failover timelines", () => {
  it("list each step with its time since detection", () => {
    const text = renderFailover(summarizeService(service).lastFailover!, plain);
    expect(text).toMatch(/^From: +kv-head-3, zone zone-b, epoch 3$/m);
    expect(text).toMatch(/^To: +kv-head-4, zone zone-a, epoch 4$/m);
    expect(text).toMatch(/^Duration: +1.24s$/m);
    const steps = table(text.split("\nTimeline\n")[1]!);
    expect(steps.map((s) => [s.STEP, s["SINCE DETECTION"]])).toEqual([
      ["Detected", "+0ms"],
      ["SlotChosen", "+12ms"],
      ["Revoked", "+40ms"],
      ["HeadStarted", "+850ms"],
      ["RoutingSwitched", "+1.10s"],
      ["Done", "+1.24s"],
    ]);
  });

  it("mark a failover still running", () => {
    expect(renderFailover(summarizeService(failingOver).failingOver!, plain)).toMatch(
      /^Finished: +in progress \(Revoked\)$/m,
    );
  });

  it("appear in the status overview for services that have one", () => {
    const text = renderStatus(report, plain);
    expect(text).toContain("Failover in progress: storage/cache");
    expect(text).toContain("Last failover: storage/kv");
    for (const title of ["Storage services", "Contingency pools", "Slots by zone", "Pool claims"])
      expect(text).toMatch(new RegExp(`^${title}$`, "m"));
  });
});

describe("colour choice", () => {
  it("is on only for a terminal that has colours", () => {
    expect(wantsColor({ isTTY: true, hasColors: () => true })).toBe(true);
    expect(wantsColor({ isTTY: true, hasColors: () => false })).toBe(false);
    expect(wantsColor({ isTTY: false })).toBe(false);
    expect(wantsColor({})).toBe(false);
  });
});
