// The boot path's event write on SQLite as two native statements and their parameters: shared by the
// inline writer (the store's own connection) and the writer thread (its own connection), so both
// write exactly the same rows.
import type { BootEventWriteOptions, NewBootEvent } from '../../core/ports.js';
import { bootEventEffects } from '../kysely-store.js';

export const INSERT_BOOT_EVENT = 'insert into boot_events (machine_id, at, kind, detail) values (?, ?, ?, ?)';

/**
 * One statement per machine that writes only when the state changes or last seen is stale: a
 * repeated boot request then costs an index probe instead of a row and index rewrite (24 against 37 µs).
 */
export const TOUCH_MACHINE =
  'update machines set last_seen_at = case when last_seen_at is not null and last_seen_at > ? then last_seen_at else ? end, state = coalesce(?, state) ' +
  'where id = ? and (last_seen_at is null or last_seen_at < ? or state <> coalesce(?, state))';

export type InsertParams = [machineId: string, at: string, kind: string, detail: string];
export type TouchParams = [at: string, at: string, state: string | null, id: string, staleBefore: string, state: string | null];

/** The parameters of one batch: an insert per event, then a touch per machine. Plain arrays, so they cross to a thread as they are. */
export function bootEventParams(events: readonly NewBootEvent[], opts: BootEventWriteOptions): { inserts: InsertParams[]; touches: TouchParams[] } {
  const inserts = events.map((e): InsertParams => [e.machineId, e.at, e.kind, JSON.stringify(e.detail)]);
  const touches: TouchParams[] = [];
  if (events.length === 0) return { inserts, touches };
  const { at, staleBefore, byState } = bootEventEffects(events, opts);
  for (const [state, ids] of byState) for (const id of ids) touches.push([at, at, state, id, staleBefore, state]);
  return { inserts, touches };
}
