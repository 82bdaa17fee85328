import { describe, expect, it } from "vitest";
import { headImageRollout } from "../../../src/decisions/head-image-rollout.ts";

describe("headImageRollout", () => {
  const base = { running: "img:1", wanted: "img:2", healthy: true, paused: false };
  it("rolls out a new spec.head.image while the head serves", () => {
    expect(headImageRollout(base)).toBe("img:2");
    expect(headImageRollout({ ...base, wanted: "img:1" })).toBeUndefined();
  });
  it("leaves a failed head to failover, and waits while paused or with no head seen", () => {
    expect(headImageRollout({ ...base, healthy: false })).toBeUndefined();
    expect(headImageRollout({ ...base, paused: true })).toBeUndefined();
    expect(headImageRollout({ ...base, running: undefined })).toBeUndefined();
  });
});
