// One holder at a time for work that awaits in the middle (a registration's tree changes,
// a GC pass): callers queue in order.

export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();

  /** Run `work` once every earlier holder is done; its result or error is the caller's. */
  run<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(work);
    this.#tail = result.catch(() => {});
    return result;
  }
}
