import { describe, expect, it } from 'vitest';
import { ApiClient, ApiError, errorMessage, missingKey, parseEtagVersion, readCookie } from './client';

function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

describe('readCookie', () => {
  it('finds a cookie among others and decodes it', () => {
    expect(readCookie('sessionid=abc; csrftoken=t%3Dk; other=1', 'csrftoken')).toBe('t=k');
    expect(readCookie('xcsrftoken=no', 'csrftoken')).toBeNull();
    expect(readCookie('', 'csrftoken')).toBeNull();
  });
});

describe('errorMessage', () => {
  it('prefers the server detail and always names the status', () => {
    expect(errorMessage(409, { detail: 'Read already submitted.' })).toBe('Read already submitted. (HTTP 409)');
    expect(errorMessage(500, undefined)).toBe('Server error (HTTP 500)');
    expect(errorMessage(418, null)).toBe('Request failed (HTTP 418)');
  });
});

describe('ApiClient', () => {
  it('sends PUT with CSRF header, same-origin credentials and the contract body', async () => {
    const calls: Array<{ url: string; init: RequestInit }> = [];
    const client = new ApiClient({
      apiBase: '/api/v1/',
      csrfToken: () => 'tok',
      fetchImpl: async (url, init) => {
        calls.push({ url: String(url), init: init ?? {} });
        return jsonResponse(200, { version: 4, submitted: false, grades: [] });
      },
    });
    const read = await client.putRead('a-1', {
      base_version: 3,
      grades: [{ level: 'L1-L2', condition: 'cc', value: '1' }],
      measurements: [],
      elapsed_s: 42,
    });
    expect(read.version).toBe(4);
    expect(calls).toHaveLength(1);
    const { url, init } = calls[0]!;
    expect(url).toBe('/api/v1/assignments/a-1/read/');
    expect(init.method).toBe('PUT');
    expect(init.credentials).toBe('same-origin');
    expect((init.headers as Record<string, string>)['X-CSRFToken']).toBe('tok');
    expect(JSON.parse(String(init.body))).toEqual({
      base_version: 3,
      grades: [{ level: 'L1-L2', condition: 'cc', value: '1' }],
      measurements: [],
      elapsed_s: 42,
    });
  });

  it('turns 412 into an ApiError carrying the current read', async () => {
    const current = { version: 7, submitted: false, grades: [] };
    const client = new ApiClient({
      apiBase: '/api/v1',
      csrfToken: () => null,
      fetchImpl: async () => jsonResponse(412, { detail: 'Stale version.', current }),
    });
    const err = await client.putRead('a', { base_version: 3, grades: [], measurements: [], elapsed_s: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    const apiErr = err as ApiError;
    expect(apiErr.status).toBe(412);
    expect(apiErr.isStaleVersion).toBe(true);
    expect(apiErr.staleCurrent).toEqual(current);
    expect(apiErr.message).toBe('Stale version. (HTTP 412)');
  });

  it('exposes the missing list of a refused submit, and network failures as status 0', async () => {
    const refusing = new ApiClient({
      apiBase: '/api/v1',
      csrfToken: () => 't',
      fetchImpl: async () =>
        jsonResponse(400, {
          detail: 'Answers missing.',
          missing: [{ level: 'L3-L4', condition: 'central_canal' }, { level: 'L4-L5', measurement: 'dsca' }, { bogus: 1 }],
        }),
    });
    const err = (await refusing.submitRead('a', 2).catch((e: unknown) => e)) as ApiError;
    expect(err.missing).toEqual(['L3-L4/central_canal', 'L4-L5/dsca']);

    const offline = new ApiClient({
      apiBase: '/api/v1',
      csrfToken: () => 't',
      fetchImpl: async () => {
        throw new TypeError('Failed to fetch');
      },
    });
    const netErr = (await offline.getAssignment('a').catch((e: unknown) => e)) as ApiError;
    expect(netErr.status).toBe(0);
    expect(netErr.message).toBe('Network error: could not reach the server: Failed to fetch');
  });

  it('reports an HTML error page by its status', async () => {
    const client = new ApiClient({
      apiBase: '/api/v1',
      csrfToken: () => 't',
      fetchImpl: async () => new Response('<h1>Server Error</h1>', { status: 500, headers: { 'Content-Type': 'text/html' } }),
    });
    const err = (await client.getAssignment('a').catch((e: unknown) => e)) as ApiError;
    expect(err.message).toBe('Server error (HTTP 500)');
  });
});

describe('missingKey and parseEtagVersion', () => {
  it('key both kinds of missing entries and refuse unreadable ones', () => {
    expect(missingKey({ level: 'L1-L2', condition: 'foraminal_left' })).toBe('L1-L2/foraminal_left');
    expect(missingKey({ level: 'L1-L2', measurement: 'ap_diameter' })).toBe('L1-L2/ap_diameter');
    expect(missingKey('L5-S1/central_canal')).toBe('L5-S1/central_canal');
    expect(missingKey({ condition: 'x' })).toBeNull();
    expect(missingKey(null)).toBeNull();
  });
  it('read strong, weak and bare ETags; reject others', () => {
    expect(parseEtagVersion('"4"')).toBe(4);
    expect(parseEtagVersion('W/"12"')).toBe(12);
    expect(parseEtagVersion('7')).toBe(7);
    expect(parseEtagVersion('"abc"')).toBeNull();
    expect(parseEtagVersion(null)).toBeNull();
  });
});

describe('reader labels', () => {
  it('GET returns bytes and the ETag version; 404 means none yet', async () => {
    const client = new ApiClient({
      apiBase: '/api/v1',
      csrfToken: () => 't',
      fetchImpl: async (url) =>
        String(url).includes('none')
          ? jsonResponse(404, { detail: 'No labels.' })
          : new Response(new Uint8Array([0, 2, 4]), { status: 200, headers: { ETag: '"3"', 'Content-Type': 'application/octet-stream' } }),
    });
    const got = await client.getReaderLabels('a', '1.2.3');
    expect(got?.version).toBe(3);
    expect([...(got?.labels ?? [])]).toEqual([0, 2, 4]);
    expect(await client.getReaderLabels('a', 'none')).toBeNull();
  });

  it('PUT sends raw bytes with If-Match and CSRF; 412 carries the current version', async () => {
    const calls: Array<{ url: string; init: RequestInit }> = [];
    const client = new ApiClient({
      apiBase: '/api/v1',
      csrfToken: () => 'tok',
      fetchImpl: async (url, init) => {
        calls.push({ url: String(url), init: init ?? {} });
        return jsonResponse(412, { detail: 'Stale.', current_version: 5 });
      },
    });
    const err = (await client.putReaderLabels('a-1', '1.2.3', 4, new Uint8Array([1, 1])).catch((e: unknown) => e)) as ApiError;
    expect(err.status).toBe(412);
    expect(err.currentLabelsVersion).toBe(5);
    const { url, init } = calls[0]!;
    expect(url).toBe('/api/v1/assignments/a-1/segmentations/1.2.3/labels');
    const headers = init.headers as Record<string, string>;
    expect(headers['If-Match']).toBe('"4"');
    expect(headers['X-CSRFToken']).toBe('tok');
    expect(headers['Content-Type']).toBe('application/octet-stream');
    expect([...(init.body as Uint8Array)]).toEqual([1, 1]);
  });
});
