// Signing in: needs the network once; afterwards the phone works offline with what it keeps.

import { html, useState } from '../../vendor/htm-preact-standalone.js';
import * as api from '../api.js';

export function Login({ w, session, onSignedIn }) {
  const [username, setUsername] = useState(session?.username ?? '');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError('');
    try {
      await api.signIn(username.trim(), password);
      await onSignedIn();
    } catch (e) {
      if (e instanceof api.Offline) setError(w.sign_in_needs_network);
      else if (e.code === 'too_many_attempts') setError(w.too_many);
      else if (e.code === 'invalid_credentials' || e.code === 'request_invalid') setError(w.wrong_login);
      else setError(e.message);
    } finally {
      setBusy(false);
    }
  };

  return html`
    <form class="card login" onSubmit=${submit}>
      <h2>${w.sign_in}</h2>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <label for="username">${w.username}</label>
      <input id="username" name="username" autocomplete="username" autocapitalize="off" spellcheck="false"
        required value=${username} onInput=${(e) => setUsername(e.currentTarget.value)} />
      <label for="password">${w.password}</label>
      <input id="password" name="password" type="password" autocomplete="current-password" required
        value=${password} onInput=${(e) => setPassword(e.currentTarget.value)} />
      <button type="submit" class="primary" disabled=${busy}>${w.sign_in}</button>
    </form>`;
}
