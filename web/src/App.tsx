import { lazy, Suspense, useEffect, useRef, type ReactNode } from 'react';
import { Link, Navigate, NavLink, Route, Routes, useLocation, useNavigate } from 'react-router';
import { useAuth } from './auth';
import { ErrorNotice, Loading } from './components/ui';
import { usePageTitle } from './lib/useResource';
import { CreateEnvironmentPage } from './pages/CreateEnvironment';
import { EnvironmentDetailPage } from './pages/EnvironmentDetail';
import { EnvironmentsPage } from './pages/Environments';
import { LoginPage, RegisterPage } from './pages/Auth';
import { TokensPage } from './pages/Tokens';

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

  const anonymous = (page: ReactNode) => (user ? <Navigate to="/" replace /> : page);
  const signedIn = (page: ReactNode) =>
    user ? page : <Navigate to={`/login?next=${encodeURIComponent(location.pathname + location.search)}`} replace />;

  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      {user && <Header />}
      <main id="main" ref={mainRef} tabIndex={-1} className={user ? 'page' : 'center'}>
        <Routes>
          <Route path="/login" element={anonymous(<LoginPage />)} />
          <Route path="/register" element={anonymous(<RegisterPage />)} />
          <Route path="/" element={signedIn(<EnvironmentsPage />)} />
          <Route path="/environments/new" element={signedIn(<CreateEnvironmentPage />)} />
          <Route path="/environments/:name" element={signedIn(<EnvironmentDetailPage />)} />
          <Route path="/tokens" element={signedIn(<TokensPage />)} />
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
        <NavLink to="/tokens">Tokens</NavLink>
        {user?.role === 'admin' && <NavLink to="/admin">Admin</NavLink>}
      </nav>
      <div className="who">
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
