/**
 * The query of `GET /api/devices`: `online=true|false`, `label=key=value` (repeatable: all must
 * match), and pages of `limit` devices in id order,
 * the next one after `cursor` (the `nextCursor` of the page before). Anything else is a 400
 * BAD_QUERY naming the parameter: a filter the gateway would silently ignore answers a question
 * the caller did not ask.
 */
import type { DeviceList, DeviceSummary } from '../devices/api/json.js';
import { DEVICE_ID_PATTERN } from '../devices/device-id.js';
import { ApiError } from './errors.js';
import { onlyParams } from './query-params.js';
import { LabelError, parseLabelFilter } from './registry/labels.js';

export const MAX_DEVICE_PAGE = 10_000;

export interface DeviceListQuery {
  online: boolean | undefined;
  /** key=value pairs a device's labels must all have. */
  labels: [string, string][];
  /** Devices per page; undefined = all (the dashboard's request). */
  limit: number | undefined;
  /** Start after this id. */
  cursor: string | undefined;
}

export function parseDeviceListQuery(q: URLSearchParams): DeviceListQuery {
  onlyParams(q, ['online', 'label', 'limit', 'cursor'], 'GET /api/devices takes online, label, limit and cursor');
  const online = q.get('online');
  if (online !== null && online !== 'true' && online !== 'false') throw new ApiError(400, 'BAD_QUERY', `online must be true or false, got "${online}"`);
  const limitRaw = q.get('limit');
  let limit: number | undefined;
  if (limitRaw !== null) {
    limit = /^\d+$/.test(limitRaw) ? Number(limitRaw) : NaN;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_DEVICE_PAGE) throw new ApiError(400, 'BAD_QUERY', `limit must be a whole number from 1 to ${MAX_DEVICE_PAGE}, got "${limitRaw}"`);
  }
  const cursor = q.get('cursor') ?? undefined;
  if (cursor !== undefined && !DEVICE_ID_PATTERN.test(cursor)) throw new ApiError(400, 'BAD_QUERY', 'cursor must be the nextCursor of the previous page (a device id)');
  const labels: [string, string][] = [];
  for (const raw of q.getAll('label')) {
    try {
      labels.push(parseLabelFilter(raw));
    } catch (err) {
      if (err instanceof LabelError) throw new ApiError(400, 'BAD_QUERY', err.message);
      throw err;
    }
  }
  return { online: online === null ? undefined : online === 'true', labels, limit, cursor };
}

/** One page of `sorted` (id order) as the query asks: `nextCursor` is set when more follow. */
export function devicePage(sorted: DeviceSummary[], query: DeviceListQuery): DeviceList {
  if (query.limit === undefined && query.cursor === undefined) return { devices: sorted };
  let from = 0;
  if (query.cursor !== undefined) {
    const cursor = query.cursor;
    // First id after the cursor (binary search: the list is sorted by id).
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]!.id <= cursor) lo = mid + 1;
      else hi = mid;
    }
    from = lo;
  }
  const to = query.limit === undefined ? sorted.length : Math.min(sorted.length, from + query.limit);
  const devices = sorted.slice(from, to);
  return { devices, total: sorted.length, nextCursor: to < sorted.length ? devices[devices.length - 1]!.id : null };
}
