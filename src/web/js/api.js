// Every call to `/api/v1`: the session's tokens, refreshing them, and errors as values.
// An expired access token never blocks work: calls fail with `needs_sign_in` and the outbox waits.

import * as store from './store.js';

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code ?? 'http_error';
    this.details = body?.error?.details ?? [];
  }
}

/** The network could not be reached (or the answer was lost): safe to retry. */
export class Offline extends Error {}

/** No usable session: the worker must sign in again (their drafts and outbox stay). */
export class NeedsSignIn extends Error {}

let refreshing = null;

/** How long a request may take, answer included: a 25-household batch at 2G speed fits. */
const TIMEOUT_MS = 120_000;

export const session = () => store.getValue('session');

async function send(path, { method = 'GET', body, token, headers = {} } = {}) {
  // The server's messages (refusals, validation) in the worker's language.
  const all = { 'accept-language': localStorage.getItem('lang') ?? 'zh-CN', ...headers };
  if (token) all.authorization = `Bearer ${token}`;
  if (body !== undefined) all['content-type'] ??= 'application/json';
  let response;
  // A link that dies mid-answer would otherwise hold the sync (and its lock) for many minutes.
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  try {
    response = await fetch(path, { method, headers: all, body, cache: 'no-store', signal: abort.signal });
  } catch {
    clearTimeout(timer);
    throw new Offline();
  }
  if (response.status === 204 || response.status === 304) return { status: response.status, body: null, response };
  let parsed = null;
  try {
    parsed = await response.json();
  } catch (error) {
    if (error?.name === 'AbortError' || response.status >= 500 || response.status === 0) throw new Offline();
  } finally {
    clearTimeout(timer);
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return { status: response.status, body: parsed, response };
}

function remember(grant, user) {
  return {
    username: user.username,
    display_name: user.display_name,
    role: user.role,
    // The places the worker may survey (null: everywhere), to check on the phone what the server would refuse.
    scope: user.scope ?? null,
    access_token: grant.access_token,
    refresh_token: grant.refresh_token,
    // Ten seconds early, for the clock and the trip.
    access_until: Date.now() + (grant.expires_in - 10) * 1000,
  };
}

export async function signIn(username, password) {
  const { body } = await send('/api/v1/auth/login', { method: 'POST', body: JSON.stringify({ username, password }) });
  const next = remember(body, body.user);
  await store.setValue('session', next);
  return next;
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Spends the refresh token for a new pair. An answer lost on the way is asked for again at once,
 * with the same token: within the server's grace period (60 s) that gives the same pair again.
 * After that the token is spent, and the worker signs in again (nothing on the phone is lost).
 */
async function refresh(current) {
  refreshing ??= (async () => {
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const { body } = await send('/api/v1/auth/refresh', { method: 'POST', body: JSON.stringify({ refresh_token: current.refresh_token }) });
          const next = remember(body, body.user);
          await store.setValue('session', next);
          return next;
        } catch (error) {
          if (!(error instanceof Offline) || attempt === 2) throw error;
          await pause(1000 * (attempt + 1));
        }
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        // Unless the worker signed in again meanwhile: that session is not the one that ended.
        const now = await session();
        if (now?.refresh_token === current.refresh_token) {
          await store.setValue('session', { ...now, expired: true });
          // The screens learn of it: the console asks to sign in again where it is.
          dispatchEvent(new Event('survey-session'));
        }
        throw new NeedsSignIn();
      }
      throw error;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** An access token that has not run out (refreshed if it has), for requests made elsewhere (uploads). */
export async function accessToken() {
  let current = await session();
  if (!current || current.expired) throw new NeedsSignIn();
  if (Date.now() >= current.access_until) current = await refresh(current);
  return current.access_token;
}

/** A file from the API: `{blob, disposition}` (its `Content-Disposition`, which names it for saving). */
export async function file(path) {
  const get = async (token) => {
    let response;
    try {
      response = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
    } catch {
      throw new Offline();
    }
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    return { blob: await response.blob(), disposition: response.headers.get('content-disposition') };
  };
  try {
    return await get(await accessToken());
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    return get((await refresh(await session())).access_token);
  }
}

/** A file from the API, as a Blob: for showing a photo or playing a recording. */
export const blob = async (path) => (await file(path)).blob;

/** A call with the session's token, refreshed first when it has run out and once more on a 401. */
export async function call(path, options = {}) {
  let current = await session();
  if (!current || current.expired) throw new NeedsSignIn();
  if (Date.now() >= current.access_until) current = await refresh(current);
  try {
    return await send(path, { ...options, token: current.access_token });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    current = await refresh(current);
    return send(path, { ...options, token: current.access_token });
  }
}

/** Ends the session on the server when it can be reached; the phone forgets it either way. */
export async function signOut() {
  const current = await session();
  if (current && !current.expired) {
    await call('/api/v1/auth/logout', { method: 'POST', body: JSON.stringify({ refresh_token: current.refresh_token }) }).catch(() => {});
  }
  await store.setValue('session', undefined);
  await store.clearRosters();
}

/** The server's message catalogue in `lang`, needing no token. */
export async function messages(lang) {
  return (await send(`/api/v1/messages?lang=${encodeURIComponent(lang)}`)).body;
}
