/**
 * The device registry as it is now: the registry file (`--registry`) as the initial import, with
 * every change made since through the management API on top (from `<data-dir>/devices.jsonl`).
 * A device the store knows (changed or deleted through the API) is the store's; a device only the
 * file lists is the file's, so editing the file still works for devices never managed by API.
 * The one owner of registry entries: the Authenticator reads them here, the admin service changes
 * them only through commit().
 */
import type { RegistryEntry, RegistryLookup } from '../auth.js';
import type { RegistryStore, StoredDevice } from './store.js';

export class DeviceRegistry implements RegistryLookup {
  private readonly entries = new Map<string, RegistryEntry>();
  /** What the store holds, deletions included: the snapshot each rewrite of the file is made of. */
  private readonly stored: Map<string, StoredDevice>;

  constructor(
    fromFile: ReadonlyMap<string, RegistryEntry>,
    private readonly store: RegistryStore,
  ) {
    this.stored = store.load();
    for (const [id, e] of fromFile) if (!this.stored.has(id)) this.entries.set(id, e);
    for (const r of this.stored.values()) if (!r.deleted) this.entries.set(r.id, entryOf(r));
    store.open(() => this.stored.values());
  }

  get(id: string): RegistryEntry | undefined {
    return this.entries.get(id);
  }

  values(): IterableIterator<RegistryEntry> {
    return this.entries.values();
  }

  /** The revision a new change of `id` gets: now, or later than its last change. */
  nextRev(id: string): number {
    return Math.max(Date.now(), (this.stored.get(id)?.rev ?? 0) + 1);
  }

  /** The last stored change of a device (for cluster sync), deletions included. */
  storedChange(id: string): StoredDevice | undefined {
    return this.stored.get(id);
  }

  /**
   * Makes a change durable, then applies it. Throws FileWriteError (nothing changed) when the disk
   * refuses it. Returns the entry as it now is (undefined after a deletion).
   */
  commit(change: StoredDevice): RegistryEntry | undefined {
    this.store.persist(change);
    this.stored.set(change.id, change);
    let entry: RegistryEntry | undefined;
    if (change.deleted) this.entries.delete(change.id);
    else this.entries.set(change.id, (entry = entryOf(change)));
    this.store.compactIfLarge();
    return entry;
  }

  /** A change from another instance: applied (and stored) when newer than what is known here. */
  isNewer(change: StoredDevice): boolean {
    return change.rev > (this.stored.get(change.id)?.rev ?? 0);
  }
}

function entryOf(r: StoredDevice): RegistryEntry {
  const { rev: _rev, deleted: _deleted, ...entry } = r;
  return entry;
}
