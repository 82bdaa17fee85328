// Fencing: which requests a server admits, given the highest epoch it has seen.

/** The highest epoch a server has seen, and the head process that holds it ("" = none yet). */
export interface EpochState {
  readonly epoch: number;
  readonly holder: string;
}

export type Admission =
  /** Same epoch, same head: serve it. */
  | { readonly kind: "admit" }
  /** A newer epoch (or an unclaimed current one): persist it first, then serve. */
  | { readonly kind: "raise"; readonly next: EpochState }
  /** Older epoch, or this epoch already belongs to another head process. */
  | { readonly kind: "refuse"; readonly reason: string };

/**
 * An epoch belongs to one head process: a request with the current epoch from a
 * different head id is refused too, because two heads numbering writes (epoch, n)
 * from the same epoch would produce different records with equal sequences.
 */
export function admit(current: EpochState, epoch: number, head: string): Admission {
  if (epoch < current.epoch) {
    return { kind: "refuse", reason: `epoch ${epoch} is older than this server's epoch ${current.epoch}` };
  }
  if (epoch > current.epoch || current.holder === "") {
    return { kind: "raise", next: { epoch, holder: head } };
  }
  if (current.holder === head) return { kind: "admit" };
  return { kind: "refuse", reason: `epoch ${epoch} already belongs to another head (${current.holder})` };
}

/** Epoch learned from a peer during anti-entropy: only ever moves forward. */
export function mergePeerEpoch(current: EpochState, peer: EpochState): EpochState {
  if (peer.epoch > current.epoch) return peer;
  if (peer.epoch === current.epoch && current.holder === "" && peer.holder !== "") return peer;
  return current;
}
