/**
 * A signal from a part built earlier to one built later (the media cache exists before the agent
 * that re-plans when a clip is verified): the later part subscribes in its constructor, so no
 * callback is assigned after construction and no variable is bound late.
 */
export class Listeners<A extends unknown[] = []> {
  private readonly fns: Array<(...a: A) => void> = [];

  on(fn: (...a: A) => void): void {
    this.fns.push(fn);
  }

  emit(...a: A): void {
    for (const f of this.fns) f(...a);
  }
}

/** What a subscriber is handed: it may listen, not emit. */
export type Subscribe<A extends unknown[] = []> = Pick<Listeners<A>, 'on'>;
