// The console: one bar of screens by role, then the screen the URL names (`/console/...`).

import { html, useState, useEffect } from '../../vendor/htm-preact-standalone.js';
import * as forms from '../forms.js';
import * as store from '../store.js';
import { consoleWords } from './words.js';
import { Submissions } from './submissions.js';
import { SubmissionDetail } from './submission.js';
import { People } from './people.js';
import { Downloads } from './downloads.js';
import { ProgressScreen } from './progress.js';
import { AuditLog } from './audit.js';
import { Forms } from './forms.js';

/** The console's screens, who sees each, and where. */
const SCREENS = [
  { path: '/console/submissions', word: 'submissions', roles: ['supervisor', 'analyst', 'admin'] },
  { path: '/console/submissions?status=received%2Cedited', word: 'review_queue', roles: ['supervisor', 'admin'] },
  { path: '/console/progress', word: 'progress', roles: ['supervisor', 'analyst', 'admin'] },
  { path: '/console/downloads', word: 'downloads', roles: ['analyst', 'admin'] },
  { path: '/console/people', word: 'people', roles: ['admin'] },
  { path: '/console/forms', word: 'forms', roles: ['admin'] },
  { path: '/console/audit', word: 'audit', roles: ['admin'] },
  { path: '/collect', word: 'collect', roles: ['supervisor', 'admin'] },
];

export function Console(props) {
  const { lang, session, go, route } = props;
  const c = consoleWords(lang);
  const [formList, setFormList] = useState([]);

  useEffect(() => {
    store.forms().then(setFormList);
    forms.refresh().then(setFormList).catch(() => {});
  }, [session.username]);

  const path = route.split('?')[0];
  // The form a screen shows (`?form=`, else the first) and the query it was opened with.
  const params = new URLSearchParams(route.split('?')[1] ?? '');
  const form = formList.find((f) => f.id === params.get('form')) ?? formList[0];
  const shownProps = { ...props, c, formList, params, form, schema: form?.schemas?.[form.version] };
  let screen;
  if (path.startsWith('/console/submissions/')) {
    screen = html`<${SubmissionDetail} ...${shownProps} id=${decodeURIComponent(path.slice('/console/submissions/'.length))} />`;
  } else if (path === '/console/progress') {
    screen = html`<${ProgressScreen} ...${shownProps} />`;
  } else if (path === '/console/downloads' && ['analyst', 'admin'].includes(session.role)) {
    screen = html`<${Downloads} ...${shownProps} />`;
  } else if (path === '/console/forms' && session.role === 'admin') {
    screen = html`<${Forms} ...${shownProps} />`;
  } else if (path === '/console/audit' && session.role === 'admin') {
    screen = html`<${AuditLog} ...${shownProps} />`;
  } else if (path === '/console/people' && session.role === 'admin') {
    screen = html`<${People} ...${shownProps} />`;
  } else if (path === '/console/submissions' || path === '/console') {
    screen = html`<${Submissions} ...${shownProps} />`;
  } else {
    // A screen this role does not have: say so, rather than show another.
    screen = html`<p class="warning" role="alert">${c.forbidden}</p>`;
  }
  return html`
    <nav class="console-nav" aria-label=${c.nav}>
      <ul>${SCREENS.filter((s) => s.roles.includes(session.role)).map((s) => html`
        <li><a href=${s.path} aria-current=${route === s.path || (path === s.path.split('?')[0] && !s.path.includes('?') && !route.includes('status=received')) ? 'page' : undefined}
          onClick=${(e) => { e.preventDefault(); go(s.path); }}>${c[s.word]}</a></li>`)}
      </ul>
    </nav>
    <div class="console">${screen}</div>`;
}
