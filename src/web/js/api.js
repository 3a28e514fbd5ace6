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

export const session = () => store.getValue('session');

async function send(path, { method = 'GET', body, token, lang, headers = {} } = {}) {
  const all = { ...headers };
  if (token) all.authorization = `Bearer ${token}`;
  if (body !== undefined) all['content-type'] = 'application/json';
  if (lang) all['accept-language'] = lang;
  let response;
  try {
    response = await fetch(path, { method, headers: all, body, cache: 'no-store' });
  } catch {
    throw new Offline();
  }
  if (response.status === 204 || response.status === 304) return { status: response.status, body: null, response };
  let parsed = null;
  try {
    parsed = await response.json();
  } catch {
    if (response.status >= 500 || response.status === 0) throw new Offline();
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return { status: response.status, body: parsed, response };
}

function remember(grant, user) {
  return {
    username: user.username,
    display_name: user.display_name,
    role: user.role,
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

/** Spends the refresh token for a new pair. A lost answer is retried with the same token: the server's grace period gives the same pair again. */
async function refresh(current) {
  refreshing ??= (async () => {
    try {
      const { body } = await send('/api/v1/auth/refresh', { method: 'POST', body: JSON.stringify({ refresh_token: current.refresh_token }) });
      const next = { ...remember(body, body.user ?? current), username: current.username, display_name: current.display_name, role: current.role };
      await store.setValue('session', next);
      return next;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        await store.setValue('session', { ...current, expired: true });
        throw new NeedsSignIn();
      }
      throw error;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

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
}

/** The server's message catalogue in `lang`, needing no token. */
export async function messages(lang) {
  return (await send(`/api/v1/messages?lang=${encodeURIComponent(lang)}`)).body;
}
