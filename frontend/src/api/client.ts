import type {
  Assignment,
  Comparison,
  LabelsSaveResponse,
  MissingGradesError,
  MissingItem,
  Read,
  ReadersComparison,
  ReadUpdateRequest,
  StaleVersionError,
} from './types';

/** An HTTP or network failure, with a message a person can act on. */
export class ApiError extends Error {
  readonly status: number;
  readonly body: unknown;

  /** status 0 means the request never got an HTTP answer. */
  constructor(status: number, message: string, body: unknown = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }

  get isStaleVersion(): boolean {
    return this.status === 412 && isStaleVersionBody(this.body);
  }

  get staleCurrent(): Read | null {
    return isStaleVersionBody(this.body) ? this.body.current : null;
  }

  /** Missing answers of a refused submit, as "<level>/<condition or measurement>" keys. */
  get missing(): string[] {
    return isMissingBody(this.body) ? this.body.missing.map(missingKey).filter((k): k is string => k !== null) : [];
  }

  /** current_version of a 412 on a labels save; null otherwise. */
  get currentLabelsVersion(): number | null {
    if (this.status !== 412 || !isRecord(this.body)) return null;
    const v = this.body.current_version;
    return typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : null;
  }
}

/** "<level>/<key>" for one entry of a submit's `missing` list; null for an unreadable entry. */
export function missingKey(item: MissingItem | string | unknown): string | null {
  if (typeof item === 'string') return item;
  if (!isRecord(item) || typeof item.level !== 'string') return null;
  const key = typeof item.condition === 'string' ? item.condition : typeof item.measurement === 'string' ? item.measurement : null;
  return key === null ? null : `${item.level}/${key}`;
}

/** A labels buffer with the version named by its ETag. */
export interface LabelsDownload {
  labels: Uint8Array;
  version: number;
}

/** The version number in an ETag like `"4"` or `W/"4"`; null when it is not a whole number. */
export function parseEtagVersion(etag: string | null): number | null {
  if (!etag) return null;
  const m = /^(?:W\/)?"?(\d+)"?$/.exec(etag.trim());
  return m ? Number(m[1]) : null;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isReadBody(value: unknown): value is Read {
  return (
    isRecord(value) &&
    typeof value.version === 'number' &&
    typeof value.submitted === 'boolean' &&
    Array.isArray(value.grades)
  );
}

function isStaleVersionBody(value: unknown): value is StaleVersionError {
  return isRecord(value) && isReadBody(value.current);
}

function isMissingBody(value: unknown): value is MissingGradesError {
  return isRecord(value) && Array.isArray(value.missing);
}

/** Reads a cookie by name from a `document.cookie`-style string. */
export function readCookie(cookieString: string, name: string): string | null {
  for (const part of cookieString.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      return decodeURIComponent(part.slice(eq + 1).trim());
    }
  }
  return null;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'The server rejected the request',
  401: 'You are not logged in (your session may have expired); reload the page to log in again',
  403: 'You are not allowed to do this (or your session expired); reload the page',
  404: 'Not found',
  409: 'Conflict',
  412: 'Someone saved a newer version',
  500: 'Server error',
  502: 'The server is unreachable (bad gateway)',
  503: 'The server is temporarily unavailable',
};

/** Builds the readable message for an HTTP error from its JSON body, if any. */
export function errorMessage(status: number, body: unknown): string {
  const base = STATUS_TEXT[status] ?? 'Request failed';
  let detail: string | null = null;
  if (isRecord(body) && typeof body.detail === 'string' && body.detail.trim() !== '') {
    detail = body.detail.trim();
  }
  return detail ? `${detail} (HTTP ${status})` : `${base} (HTTP ${status})`;
}

export interface ApiClientOptions {
  apiBase: string;
  /** Returns the CSRF token for unsafe requests. */
  csrfToken: () => string | null;
  fetchImpl?: typeof fetch;
}

/** Typed client for the SpineReview REST API (same-origin session auth). */
export class ApiClient {
  private readonly apiBase: string;
  private readonly csrfToken: () => string | null;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ApiClientOptions) {
    this.apiBase = options.apiBase.replace(/\/+$/, '');
    this.csrfToken = options.csrfToken;
    this.fetchImpl = options.fetchImpl ?? ((input, init) => fetch(input, init));
  }

  getAssignment(assignmentId: string): Promise<Assignment> {
    return this.json<Assignment>('GET', `${this.apiBase}/assignments/${encodeURIComponent(assignmentId)}/`);
  }

  putRead(assignmentId: string, body: ReadUpdateRequest): Promise<Read> {
    return this.json<Read>('PUT', `${this.assignmentUrl(assignmentId)}read/`, body);
  }

  getComparison(assignmentId: string): Promise<Comparison> {
    return this.json<Comparison>('GET', `${this.assignmentUrl(assignmentId)}compare/`);
  }

  /** Two readers' submitted reads and newest masks of a case (adjudicators and leads only). */
  getReadersComparison(caseId: string, readerA: string, readerB: string): Promise<ReadersComparison> {
    const query = new URLSearchParams({ a: readerA, b: readerB });
    return this.json<ReadersComparison>('GET', `${this.apiBase}/cases/${encodeURIComponent(caseId)}/compare-readers/?${query.toString()}`);
  }

  /** A reader's newest mask of a series of the case, uint8 (z, y, x) (adjudicators and leads only). */
  async getReaderMask(caseId: string, reader: string, seriesUid: string): Promise<Uint8Array> {
    const url = `${this.apiBase}/cases/${encodeURIComponent(caseId)}/readers/${encodeURIComponent(reader)}/segmentations/${encodeURIComponent(seriesUid)}/labels`;
    return new Uint8Array(await this.binary(url));
  }

  private assignmentUrl(assignmentId: string): string {
    return `${this.apiBase}/assignments/${encodeURIComponent(assignmentId)}/`;
  }

  private labelsUrl(assignmentId: string, seriesUid: string): string {
    return `${this.assignmentUrl(assignmentId)}segmentations/${encodeURIComponent(seriesUid)}/labels`;
  }

  /** The reader's own labels of a series; null when there are none yet (404). */
  async getReaderLabels(assignmentId: string, seriesUid: string): Promise<LabelsDownload | null> {
    const response = await this.send(this.labelsUrl(assignmentId, seriesUid), {
      method: 'GET',
      headers: { Accept: 'application/octet-stream' },
    });
    if (response.status === 404) return null;
    if (!response.ok) {
      const body = await safeJson(response);
      throw new ApiError(response.status, errorMessage(response.status, body), body);
    }
    const version = parseEtagVersion(response.headers.get('ETag'));
    if (version === null) throw new ApiError(response.status, 'The labels answer has no version (ETag header)');
    return { labels: new Uint8Array(await response.arrayBuffer()), version };
  }

  /** Saves the reader's labels as a new version on top of `baseVersion` (If-Match; 0 for the first save). */
  async putReaderLabels(
    assignmentId: string,
    seriesUid: string,
    baseVersion: number,
    labels: Uint8Array,
  ): Promise<LabelsSaveResponse> {
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'Content-Type': 'application/octet-stream',
      'If-Match': `"${baseVersion}"`,
    };
    const token = this.csrfToken();
    if (token) headers['X-CSRFToken'] = token;
    const response = await this.send(this.labelsUrl(assignmentId, seriesUid), {
      method: 'PUT',
      headers,
      body: labels as unknown as BodyInit,
    });
    const parsed = await safeJson(response);
    if (!response.ok) throw new ApiError(response.status, errorMessage(response.status, parsed), parsed);
    if (parsed === undefined) throw new ApiError(response.status, `The server sent an unreadable answer (HTTP ${response.status})`);
    return parsed as LabelsSaveResponse;
  }

  /** Copies the AI mask into a new version of the reader's labels. */
  labelsFromAi(assignmentId: string, seriesUid: string, baseVersion: number): Promise<LabelsSaveResponse> {
    return this.json<LabelsSaveResponse>(
      'POST',
      `${this.assignmentUrl(assignmentId)}segmentations/${encodeURIComponent(seriesUid)}/from-ai`,
      { base_version: baseVersion },
    );
  }

  submitRead(assignmentId: string, baseVersion: number): Promise<Read> {
    return this.json<Read>(
      'POST',
      `${this.apiBase}/assignments/${encodeURIComponent(assignmentId)}/read/submit/`,
      { base_version: baseVersion },
    );
  }

  /** Fetches a binary resource (the AI labels buffer). */
  async binary(url: string): Promise<ArrayBuffer> {
    const response = await this.send(url, { method: 'GET', headers: { Accept: 'application/octet-stream' } });
    if (!response.ok) {
      throw new ApiError(response.status, errorMessage(response.status, await safeJson(response)));
    }
    return response.arrayBuffer();
  }

  private async json<T>(method: string, url: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    const init: RequestInit = { method, headers };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (method !== 'GET' && method !== 'HEAD') {
      const token = this.csrfToken();
      if (token) headers['X-CSRFToken'] = token;
    }
    const response = await this.send(url, init);
    const parsed = await safeJson(response);
    if (!response.ok) {
      throw new ApiError(response.status, errorMessage(response.status, parsed), parsed);
    }
    if (parsed === undefined) {
      throw new ApiError(response.status, `The server sent an unreadable answer (HTTP ${response.status})`);
    }
    return parsed as T;
  }

  private async send(url: string, init: RequestInit): Promise<Response> {
    try {
      return await this.fetchImpl(url, { ...init, credentials: 'same-origin' });
    } catch (err) {
      const why = err instanceof Error && err.message ? `: ${err.message}` : '';
      throw new ApiError(0, `Network error: could not reach the server${why}`);
    }
  }
}

/** The parsed JSON body, or undefined when there is none or it is not JSON. */
async function safeJson(response: Response): Promise<unknown> {
  const type = response.headers.get('Content-Type') ?? '';
  if (!type.includes('json')) return undefined;
  try {
    return (await response.json()) as unknown;
  } catch {
    return undefined;
  }
}
