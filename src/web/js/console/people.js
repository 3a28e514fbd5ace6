// The county's accounts (admin): who they are, their role and townships; create, change, disable.

import { html, useState, useEffect } from '../../vendor/htm-preact-standalone.js';
import * as api from '../api.js';
import { placeField } from '../schema/walk.js';

const ROLES = ['field_worker', 'supervisor', 'analyst', 'admin'];

/** Every place of the forms' scope fields (`x-scope`): what a scope may hold. */
function placesOf(formList) {
  const places = new Set();
  for (const form of formList) {
    const schema = form.schemas?.[form.version];
    for (const place of placeField(schema).places) places.add(place);
  }
  return [...places];
}

function UserForm({ c, user, places, onSaved }) {
  const editing = !!user;
  const [error, setError] = useState('');

  const submit = async (event) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    const scope = data.getAll('scope').map(String);
    const wanted = {
      display_name: String(data.get('display_name')).trim(),
      role: String(data.get('role')),
      // Places no form lists (kept from before) stay; unticking a listed one removes it.
      scope: [...(user?.scope ?? []).filter((p) => !places.includes(p)), ...scope],
    };
    if (wanted.scope.length === 0) wanted.scope = null;
    const same = (a, b) => JSON.stringify([...(a ?? [])].sort()) === JSON.stringify([...(b ?? [])].sort()) && (a === null) === (b === null);
    // An edit sends only what changed: renaming someone must not end their login.
    const body = editing
      ? Object.fromEntries(Object.entries(wanted).filter(([name, value]) =>
        (name === 'scope' ? !same(value, user.scope ?? null) : value !== user[name])))
      : wanted;
    const password = String(data.get('password') ?? '');
    if (password) body.password = password;
    setError('');
    try {
      if (editing) {
        await api.call(`/api/v1/users/${encodeURIComponent(user.username)}`, { method: 'PATCH', body: JSON.stringify(body) });
        onSaved(c.saved_user(user.username));
      } else {
        const username = String(data.get('username')).trim();
        await api.call('/api/v1/users', { method: 'POST', body: JSON.stringify({ ...body, username, password }) });
        event.currentTarget?.reset?.();
        onSaved(c.created_user(username));
      }
    } catch (e) {
      setError([e.message, ...(e.details ?? []).map((d) => d.message)].join(' '));
    }
  };

  const id = (name) => `${editing ? 'edit' : 'new'}-${name}`;
  return html`
    <form class="card user-form" onSubmit=${submit} key=${user?.username ?? 'new'}>
      <h3>${editing ? c.edit_user(user.username) : c.new_user}</h3>
      ${!editing && html`
        <label for=${id('username')}>${c.username}</label>
        <input id=${id('username')} name="username" required minlength="2" maxlength="32" pattern="[a-z0-9._\\-]+" autocomplete="off" />`}
      <label for=${id('display_name')}>${c.display_name}</label>
      <input id=${id('display_name')} name="display_name" required maxlength="100" value=${user?.display_name ?? ''} />
      <label for=${id('password')}>${editing ? c.new_password : c.password}</label>
      <input id=${id('password')} name="password" type="password" autocomplete="new-password" minlength="8" maxlength="256" required=${!editing} />
      <label for=${id('role')}>${c.role}</label>
      <select id=${id('role')} name="role">
        ${ROLES.map((r) => html`<option value=${r} selected=${(user?.role ?? 'field_worker') === r}>${c.roles[r]}</option>`)}
      </select>
      <fieldset class="places">
        <legend>${c.scope}</legend>
        <p class="detail">${c.scope_hint}</p>
        ${places.map((p) => html`
          <label class="check"><input type="checkbox" name="scope" value=${p} checked=${user?.scope?.includes(p) ?? false} />${p}</label>`)}
      </fieldset>
      ${error && html`<p class="warning" role="alert">${error}</p>`}
      <button type="submit" class="primary">${editing ? c.save : c.create}</button>
    </form>`;
}

export function People({ c, w, formList }) {
  const [users, setUsers] = useState(null);
  const [editing, setEditing] = useState(null);
  const [message, setMessage] = useState('');
  const [error, setError] = useState('');
  const places = placesOf(formList);

  const load = () => api.call('/api/v1/users')
    .then(({ body }) => setUsers(body.users))
    .catch((e) => setError(e instanceof api.Offline ? w.network_needed : e.message));
  useEffect(() => { load(); }, []);

  const saved = (text) => {
    setMessage(text);
    setEditing(null);
    load();
  };

  const toggle = async (user) => {
    try {
      await api.call(`/api/v1/users/${encodeURIComponent(user.username)}`, { method: 'PATCH', body: JSON.stringify({ active: !user.active }) });
      saved(c.saved_user(user.username));
    } catch (e) {
      setError(e.message);
    }
  };

  return html`
    <h2>${c.people}</h2>
    ${error && html`<p class="warning" role="alert">${error}</p>`}
    <p class="note" aria-live="polite">${message}</p>
    <div class="columns">
      <div class="main-column wide">
        ${!users ? html`<p class="loading">${w.loading}</p>` : html`
          <table class="dense">
            <thead><tr>
              <th scope="col">${c.username}</th><th scope="col">${c.display_name}</th><th scope="col">${c.role}</th>
              <th scope="col">${c.scope}</th><th scope="col">${c.active}</th><th scope="col">${c.actions}</th>
            </tr></thead>
            <tbody>${users.map((u) => html`
              <tr key=${u.username}>
                <td>${u.username}</td><td>${u.display_name}</td><td>${c.roles[u.role] ?? u.role}</td>
                <td>${u.scope ? u.scope.join('、') : c.everywhere}</td>
                <td>${u.active ? c.is_active : c.is_disabled}</td>
                <td class="row-actions">
                  <button type="button" aria-label=${`${c.change} ${u.username}`} onClick=${() => setEditing(u)}>${c.change}</button>
                  <button type="button" class="quiet" aria-label=${`${u.active ? c.disable : c.enable} ${u.username}`} onClick=${() => toggle(u)}>${u.active ? c.disable : c.enable}</button>
                </td>
              </tr>`)}
            </tbody>
          </table>`}
      </div>
      <aside class="side-column">
        ${editing
          ? html`<${UserForm} c=${c} user=${editing} places=${places} onSaved=${saved} />
              <button type="button" class="quiet" onClick=${() => setEditing(null)}>${c.cancel}</button>`
          : html`<${UserForm} c=${c} places=${places} onSaved=${saved} />`}
      </aside>
    </div>`;
}
