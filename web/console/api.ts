/** Calls to Kapok's admin APIs: the session cookie authorises them, mutations carry the CSRF token. */

export interface SessionInfo {
  authenticated: boolean;
  loginRequired: boolean;
  name: string | null;
  role: string | null;
  csrf: string | null;
  region: string;
  profile: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Read once from the page (server-rendered into a meta tag as text: no extra request per page). */
export const session: SessionInfo = (() => {
  const raw = document.querySelector('meta[name="kapok-session"]')?.getAttribute('content') ?? '{}';
  try {
    return JSON.parse(raw) as SessionInfo;
  } catch {
    return { authenticated: false, loginRequired: true } as SessionInfo;
  }
})();

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && session.csrf) headers['x-kapok-csrf'] = session.csrf;
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const e = (json as { error?: { code?: string; message?: string } | string } | null)?.error;
    const code = typeof e === 'object' && e?.code ? e.code : `HTTP_${res.status}`;
    const message = typeof e === 'object' ? (e?.message ?? res.statusText) : (e ?? res.statusText);
    throw new ApiError(res.status, code, message);
  }
  return json as T;
}

export const get = <T>(path: string) => api<T>('GET', path);

/** A WebSocket to one of Kapok's push streams, reconnecting with backoff; returns a closer. */
export function live(path: string, onMessage: (msg: unknown) => void, onState?: (up: boolean) => void) {
  let ws: WebSocket | null = null;
  let closed = false;
  let delay = 500;
  const open = () => {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    ws = new WebSocket(`${proto}//${location.host}${path}`);
    ws.onopen = () => {
      delay = 500;
      onState?.(true);
    };
    ws.onmessage = (ev) => {
      try {
        onMessage(JSON.parse(String(ev.data)));
      } catch {
        // not JSON: ignored
      }
    };
    ws.onclose = () => {
      onState?.(false);
      if (closed) return;
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 10_000);
    };
  };
  open();
  return () => {
    closed = true;
    ws?.close();
  };
}
