import 'uplot/dist/uPlot.min.css';
import './style.css';
import { type ComponentType, render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, session } from './api';
import { currentLang, type Lang, setLang, t } from './i18n';

/**
 * The console shell: login, navigation by location hash (#/gateway), language switch. Each page is
 * its own chunk, loaded when first opened.
 */

const PAGES: Record<string, () => Promise<{ default: ComponentType }>> = {
  overview: () => import('./pages/overview'),
  gateway: () => import('./pages/gateway'),
  inference: () => import('./pages/inference'),
  edge: () => import('./pages/edge'),
  v2x: () => import('./pages/v2x'),
  devices: () => import('./pages/devices'),
  jobs: () => import('./pages/jobs'),
  audit: () => import('./pages/audit'),
};

const pageOf = () => {
  const p = location.hash.replace(/^#\/?/, '').split('?')[0] ?? '';
  return p in PAGES ? p : 'overview';
};

function Login() {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      await api('POST', '/console/api/login', { token });
      location.reload(); // the page comes back with the session (and its CSRF token) in it
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <div class="login">
      <form onSubmit={submit}>
        <h1>Kapok</h1>
        <p class="muted">{t('log in with a token of admin.tokens')}</p>
        <label>
          {t('admin token')}
          <input
            type="password"
            autocomplete="current-password"
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
          />
        </label>
        <button type="submit">{t('login')}</button>
        {error ? <p class="problem">{error}</p> : null}
        <LangSwitch onChange={() => setError(null)} />
      </form>
    </div>
  );
}

function LangSwitch(p: { onChange: () => void }) {
  const change = (l: Lang) => {
    // Read by the server to pick the page's language; not a secret, so a script may set it.
    // biome-ignore lint/suspicious/noDocumentCookie: Cookie Store API is not in every browser a console runs in
    document.cookie = `kapok_lang=${l}; Path=/console; SameSite=Strict; Max-Age=31536000`;
    setLang(l);
    p.onChange();
  };
  return (
    <fieldset class="lang" aria-label={t('language')}>
      <button type="button" class={currentLang() === 'en' ? 'on' : ''} onClick={() => change('en')}>
        EN
      </button>
      <button type="button" class={currentLang() === 'zh-CN' ? 'on' : ''} onClick={() => change('zh-CN')}>
        中文
      </button>
    </fieldset>
  );
}

function Shell() {
  const [page, setPage] = useState(pageOf());
  const [Comp, setComp] = useState<ComponentType | null>(null);
  const [, redraw] = useState(0);
  useEffect(() => {
    const on = () => setPage(pageOf());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  useEffect(() => {
    let stale = false;
    setComp(null);
    void PAGES[page]?.().then((m) => {
      if (!stale) setComp(() => m.default);
    });
    document.title = `Kapok · ${t(page)}`;
    return () => {
      stale = true;
    };
  }, [page]);
  const logout = async () => {
    await api('POST', '/console/api/logout').catch(() => undefined);
    location.reload();
  };
  return (
    <div class="shell">
      <nav>
        <div class="brand">
          Kapok <span class="region">{session.region}</span>
        </div>
        {Object.keys(PAGES).map((p) => (
          <a key={p} href={`#/${p}`} class={p === page ? 'on' : ''} data-page={p}>
            {t(p)}
          </a>
        ))}
        <div class="foot">
          <LangSwitch onChange={() => redraw((n) => n + 1)} />
          {session.name ? (
            <div class="who">
              {t('signed in as')} <b>{session.name}</b> ({session.role})
              <button type="button" class="link" onClick={logout}>
                {t('logout')}
              </button>
            </div>
          ) : null}
        </div>
      </nav>
      <main key={`${page}-${currentLang()}`}>
        <h1>{t(page)}</h1>
        {Comp ? <Comp /> : <p class="muted">…</p>}
      </main>
    </div>
  );
}

setLang(document.documentElement.lang === 'zh-CN' ? 'zh-CN' : 'en');
const app = document.getElementById('app') as HTMLElement;
render(session.authenticated || !session.loginRequired ? <Shell /> : <Login />, app);
