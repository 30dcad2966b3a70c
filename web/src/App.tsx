import { lazy, Suspense, useEffect, useRef, type ReactNode } from 'react';
import { api, unwrap } from './api/client';
import { Link, Navigate, NavLink, Route, Routes, useLocation, useNavigate } from 'react-router';
import { useAuth } from './auth';
import { ErrorNotice, Loading } from './components/ui';
import { usePageTitle, useResource } from './lib/useResource';
import { applyTheme, useTheme, type Theme } from './lib/theme';
import { RequestsPage } from './pages/Requests';
import { CreateEnvironmentPage } from './pages/CreateEnvironment';
import { EnvironmentDetailPage } from './pages/EnvironmentDetail';
import { EnvironmentsPage } from './pages/Environments';
import { LoginPage, RegisterPage, safeNext } from './pages/Auth';
import { TokensPage } from './pages/Tokens';
import { FirstPasswordPage } from './pages/FirstPassword';
import { ForgotPasswordPage, ResetPasswordPage, VerifyBanner, VerifyPage } from './pages/Identity';

// Admin pages are their own chunk: most people never load them.
const AdminPage = lazy(() => import('./pages/admin/Admin'));

export function App() {
  const { user, error, retry } = useAuth();
  const location = useLocation();
  const mainRef = useRef<HTMLElement>(null);
  const firstPath = useRef(location.pathname);

  // Moves focus to the new page's content on navigation, as a full page load
  // would; the first page keeps the browser's own start, so Tab reaches the skip link.
  useEffect(() => {
    if (location.pathname !== firstPath.current) {
      firstPath.current = '';
      mainRef.current?.focus();
    }
  }, [location.pathname]);

  if (user === undefined) {
    return (
      <main className="center">
        {error ? <ErrorNotice error={error} retry={retry} /> : <Loading what="Berth" />}
      </main>
    );
  }

  // Signed in on a login page: on to where the login was asked for. The login
  // form navigates there too; whichever runs last, both lead to the same page.
  const anonymous = (page: ReactNode) =>
    user ? <Navigate to={safeNext(new URLSearchParams(location.search).get('next'))} replace /> : page;
  // A password that must be changed comes first, at the address asked for:
  // once changed, that page opens.
  const signedIn = (page: ReactNode) =>
    user ? (
      user.mustChangePassword ? (
        <FirstPasswordPage />
      ) : (
        page
      )
    ) : (
      <Navigate to={`/login?next=${encodeURIComponent(location.pathname + location.search)}`} replace />
    );

  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      {user && <Header />}
      <main id="main" ref={mainRef} tabIndex={-1} className={user ? 'page' : 'center'}>
        <VerifyBanner />
        <Routes>
          <Route path="/login" element={anonymous(<LoginPage />)} />
          <Route path="/register" element={anonymous(<RegisterPage />)} />
          <Route path="/verify" element={signedIn(<VerifyPage />)} />
          <Route path="/forgot-password" element={anonymous(<ForgotPasswordPage />)} />
          <Route path="/reset-password" element={<ResetPasswordPage />} />
          <Route path="/" element={signedIn(<EnvironmentsPage />)} />
          <Route path="/environments/new" element={signedIn(<CreateEnvironmentPage />)} />
          <Route path="/environments/:name" element={signedIn(<EnvironmentDetailPage />)} />
          <Route path="/tokens" element={signedIn(<TokensPage />)} />
          <Route path="/requests" element={signedIn(<RequestsPage />)} />
          <Route
            path="/admin/*"
            element={signedIn(
              user?.role === 'admin' ? (
                <Suspense fallback={<Loading what="administration" />}>
                  <AdminPage />
                </Suspense>
              ) : (
                <NotFound />
              ),
            )}
          />
          <Route path="*" element={<NotFound />} />
        </Routes>
      </main>
    </>
  );
}

function Header() {
  const { user, logout } = useAuth();
  const navigate = useNavigate();
  return (
    <header className="top">
      <Link to="/" className="brand">
        <img src="/favicon.svg" alt="" width={24} height={24} />
        Berth
      </Link>
      <nav aria-label="Main">
        <NavLink to="/" end>
          Environments
        </NavLink>
        <NavLink to="/requests">My requests</NavLink>
        <NavLink to="/tokens">Tokens</NavLink>
        {user?.role === 'admin' && <NavLink to="/admin">Admin</NavLink>}
        {user?.role === 'admin' && !user.mustChangePassword && <PendingCount />}
      </nav>
      <div className="who">
        <ThemeSwitch />
        <span data-testid="current-user" title={user?.email}>
          {user?.displayName || user?.email}
        </span>
        <button
          type="button"
          className="secondary"
          onClick={() => {
            void logout().then(() => navigate('/login'));
          }}
        >
          Log out
        </button>
      </div>
    </header>
  );
}

/** Light, dark or the system's theme; remembered in this browser. */
function ThemeSwitch() {
  const theme = useTheme();
  return (
    <div className="theme-switch">
      <label htmlFor="theme">Theme</label>
      <select id="theme" value={theme} onChange={(e) => applyTheme(e.target.value as Theme)}>
        <option value="system">System</option>
        <option value="light">Light</option>
        <option value="dark">Dark</option>
      </select>
    </div>
  );
}

/** How often an admin's navigation asks how many requests wait (no live view exists for requests). */
const PENDING_POLL_MS = 30_000;

/** For admins: the requests waiting for a decision, linked to them; nothing when none wait. */
function PendingCount() {
  const { pathname } = useLocation();
  // Asked again on every navigation too, so a decision just taken shows at once.
  const pending = useResource(
    (signal) => unwrap(api.GET('/api/v1/admin/requests', { params: { query: { state: 'pending' } }, signal })).then((r) => r.items.length),
    `pending-${pathname}`,
    PENDING_POLL_MS,
  );
  if (!pending.data) return null;
  return (
    <NavLink to="/admin/requests" className="pending" data-testid="pending-requests">
      {pending.data} pending
    </NavLink>
  );
}

function NotFound() {
  usePageTitle('Page not found');
  return (
    <section className="empty">
      <h1>Page not found</h1>
      <p>Nothing lives at this address. It may have been deleted, or you may not have access.</p>
      <Link className="button" to="/">
        Back to your environments
      </Link>
    </section>
  );
}
