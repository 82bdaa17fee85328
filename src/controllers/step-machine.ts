// The loop every step machine runs within one reconcile (failover, failback): observe and decide one
// action, check once that the object it was decided on is current, apply it, and decide again, until
// the decision stops or the limit of actions is reached. The record in the object's status is the
// whole state; the loop keeps nothing between reconciles.

/** What deciding on the current object gave: stop with an outcome, or an action to apply. */
export type StepDecision<Action, Outcome> =
  | { kind: "stop"; outcome: Outcome }
  /** `crashPoint`: the name the operator's crash point is called with before the action (a step recorded). */
  | { kind: "act"; action: Action; crashPoint?: string };

/** What applying one action gave. */
export type StepApplied<Subject> =
  /** Decide again on the same object. */
  | { kind: "continue" }
  /** The action wrote the object: decide again on what the API server returned. */
  | { kind: "written"; subject: Subject }
  /** A lost race or a stale view: stop and look again after `afterMs`. */
  | { kind: "requeue"; afterMs: number }
  /** The object is gone: stop. */
  | { kind: "gone" };

export interface StepMachine<Subject extends Versioned, Action, Outcome> {
  /** Actions applied in one reconcile before handing back to the queue (which looks again at once). */
  maxActions: number;
  decide(subject: Subject): Promise<StepDecision<Action, Outcome>>;
  /**
   * The object current as far as this controller's own writes go (the API server's, or the
   * cache's when it shows the controller's last write); undefined when it is gone.
   */
  readFresh(subject: Subject): Promise<Subject | undefined>;
  apply(subject: Subject, action: Action): Promise<StepApplied<Subject>>;
  crashPoint(name: string): void;
  /** The outcome of a run that stops for the queue: look again after `requeueAfterMs`, or on the next event. */
  done(requeueAfterMs?: number): Outcome;
}

export interface Versioned {
  metadata: { resourceVersion?: string };
}

export async function runStepMachine<Subject extends Versioned, Action, Outcome>(
  machine: StepMachine<Subject, Action, Outcome>,
  initial: Subject,
): Promise<Outcome> {
  let subject = initial;
  let verified = false;
  for (let i = 0; i < machine.maxActions; i++) {
    const decision = await machine.decide(subject);
    if (decision.kind === "stop") return decision.outcome;

    // Act only on a current view: the cache may lag behind our own last writes. Once per run is
    // enough, as every later write returns the object it made.
    if (!verified) {
      verified = true;
      const fresh = await machine.readFresh(subject);
      if (!fresh) return machine.done();
      if (fresh.metadata.resourceVersion !== subject.metadata.resourceVersion) {
        subject = fresh;
        continue;
      }
    }
    if (decision.crashPoint !== undefined) machine.crashPoint(decision.crashPoint);

    const applied = await machine.apply(subject, decision.action);
    if (applied.kind === "requeue") return machine.done(applied.afterMs);
    if (applied.kind === "gone") return machine.done();
    if (applied.kind === "written") subject = applied.subject;
  }
  return machine.done(0);
}
