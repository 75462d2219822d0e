// The login form: POST {"token": …} to /api/login, which sets the
// HttpOnly session cookie and answers the session's CSRF token; keep that
// in sessionStorage for the app's mutations, then go to ?next= (a path
// on this server) or the overview.
const form = document.getElementById('login-form');
const err = document.getElementById('login-error');
const submit = document.getElementById('login-submit');

function safeNext(n) {
  if (!n || !n.startsWith('/') || n.startsWith('//') || n.startsWith('/\\') || n.startsWith('/login')) return '/';
  return n;
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  err.hidden = true;
  submit.disabled = true;
  const token = document.getElementById('token').value.trim();
  try {
    const r = await fetch('/api/login', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ token }),
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error((body.error && body.error.message) || `HTTP ${r.status}`);
    sessionStorage.setItem('raygo.csrf', body.csrf || '');
    sessionStorage.setItem('raygo.who', `${body.name} (${body.scope})`);
    location.assign(safeNext(new URLSearchParams(location.search).get('next')));
  } catch (x) {
    err.textContent = `Sign-in failed: ${x.message}`;
    err.hidden = false;
    submit.disabled = false;
  }
});
