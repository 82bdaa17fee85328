// A new spec.head.image is rolled out as a planned switchover: a new head of the next epoch starts
// with the new image on a pool slot, takes the routing once Ready and fences the old one, as a
// switchover does, so no acknowledged write is lost. Pure.

/** Why a rollout's run started, in status.failover.reason and the metrics' reason label. */
export const IMAGE_ROLLOUT_REASON = "ImageRollout";

export interface HeadImageObserved {
  /** The image the serving head pod runs; undefined when no head pod is seen. */
  running: string | undefined;
  /** spec.head.image. */
  wanted: string;
  /** The head is healthy (a failed head is failed over, which starts the new image anyway). */
  healthy: boolean;
  /** Automatic failover is paused: a rollout, being automatic, waits too. */
  paused: boolean;
}

/** The image to roll out now, or undefined. */
export function headImageRollout(observed: HeadImageObserved): string | undefined {
  if (!observed.healthy || observed.paused || observed.running === undefined) return undefined;
  return observed.running === observed.wanted ? undefined : observed.wanted;
}
