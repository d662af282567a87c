/**
 * A read that may still store a value into L1 (a flight, a route's response
 * being produced, a lease wait). It stays registered until its last L1 write
 * (after its flight has answered, if a soft timeout answered early): an
 * invalidation of its key or tags marks it, and then it stores nothing, so
 * a value produced before an invalidation never lands in L1 after it.
 */
export interface Fill {
  key: string
  tags: string[]
  /** an invalidation of the key or one of its tags arrived while it ran: do not store */
  poisoned: boolean
}

/** Every read that may still write L1, by key: what an invalidation marks. */
export class Fills {
  readonly #byKey = new Map<string, Set<Fill>>()

  track (fill: Fill): void {
    const fills = this.#byKey.get(fill.key)
    if (fills) fills.add(fill)
    else this.#byKey.set(fill.key, new Set([fill]))
  }

  untrack (fill: Fill): void {
    const fills = this.#byKey.get(fill.key)
    if (fills?.delete(fill) === true && fills.size === 0) this.#byKey.delete(fill.key)
  }

  poisonKeys (keys: string[]): void {
    for (const key of keys) {
      const fills = this.#byKey.get(key)
      if (fills) for (const fill of fills) fill.poisoned = true
    }
  }

  poisonTags (tags: string[]): void {
    for (const fills of this.#byKey.values()) {
      for (const fill of fills) if (fill.tags.some((tag) => tags.includes(tag))) fill.poisoned = true
    }
  }

  poisonAll (): void {
    for (const fills of this.#byKey.values()) for (const fill of fills) fill.poisoned = true
  }
}
