// Single flight by key: while the work for a key is under way, everyone who asks for that
// key shares its promise instead of starting it again (a layer's index, its download, a
// registry token). The key is forgotten when the work settles, so a failure is not
// remembered: the next caller starts afresh.

export class SingleFlight<K, V> {
  readonly #flights = new Map<K, Promise<V>>();

  /** The work under way for `key`, or `work()` started now and shared until it settles. */
  run(key: K, work: () => Promise<V>): Promise<V> {
    const running = this.#flights.get(key);
    if (running !== undefined) return running;
    let started: Promise<V>;
    try {
      started = work();
    } catch (err) {
      started = Promise.reject(err);
    }
    return this.share(key, started);
  }

  /** Share `promise` as the flight for `key` until it settles (work started elsewhere). */
  share(key: K, promise: Promise<V>): Promise<V> {
    this.#flights.set(key, promise);
    const forget = () => {
      if (this.#flights.get(key) === promise) this.#flights.delete(key);
    };
    promise.then(forget, forget);
    return promise;
  }

  /** The work under way for `key`, if any. */
  get(key: K): Promise<V> | undefined {
    return this.#flights.get(key);
  }

  has(key: K): boolean {
    return this.#flights.has(key);
  }

  /** Keys with work under way. */
  get size(): number {
    return this.#flights.size;
  }
}
