/**
 * The device upgrade reads its id and token without building a URLSearchParams or a regex match
 * (gateway/uws.ts queryParam, gateway/auth.ts bearerToken): every case here must give exactly what
 * the full parse gives.
 */
import { describe, expect, it } from 'vitest';
import { bearerToken } from '../../gateway/auth.js';
import { queryParam } from '../../gateway/uws.js';

const QUERIES = [
  '',
  'id=dev-1',
  'id=dev-1&token=abc',
  'token=abc&id=dev-1',
  'id=first&id=second',
  'id',
  'id=',
  'id=&token=x',
  '&&id=dev-1&',
  'idx=1&id=2',
  'xid=1&id=2',
  'i=1&id=2',
  '=x&id=y',
  'id=a=b',
  'id=dev%2D1',
  'id=dev+1',
  '%69d=encoded-key',
  'id=%zz',
  'id=%E2%82%AC',
  'ID=upper',
  'token=abc&',
  'id=dev-1#frag',
  'id=d\u00e9v',
];

describe('queryParam', () => {
  it.each(QUERIES)('%j: the same as URLSearchParams.get for id, token and a name that is absent', (q) => {
    for (const name of ['id', 'token', 'nope', 'i']) expect(queryParam(q, name)).toBe(new URLSearchParams(q).get(name));
  });
});

describe('bearerToken', () => {
  const byRegex = (authorization: string, query: URLSearchParams): string => /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1] ?? query.get('token') ?? '';
  const HEADERS = ['', 'Bearer abc', 'Bearer  abc', 'Bearer abc ', 'Bearer a b', 'bearer abc', 'BEARER abc', 'Bearer ', 'Bearer', 'Basic abc', 'Bearer\tabc', 'Bearer abc\u00a0', 'Bearer ab\u2003c', 'Bearerabc'];
  it.each(HEADERS)('%j: the same token as the full pattern, with a query token to fall back to or none', (h) => {
    for (const q of ['', 'token=fromquery']) {
      const query = new URLSearchParams(q);
      expect(bearerToken(h, query)).toBe(byRegex(h, query));
      expect(bearerToken(h, { param: (name: string) => queryParam(q, name) })).toBe(byRegex(h, query));
    }
  });
});
