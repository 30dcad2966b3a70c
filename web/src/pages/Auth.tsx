import { useState, type FormEvent } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { api, unwrap } from '../api/client';
import { ApiError } from '../api/errors';
import { useAuth } from '../auth';
import { describedBy, ErrorNotice, Field } from '../components/ui';
import { SingleSignOn, ssoErrorMessage, useAuthProviders } from '../components/SingleSignOn';
import { usePageTitle } from '../lib/useResource';

/** Where to go after logging in: only a path on this site, never another origin. */
export function safeNext(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

function useFieldErrors() {
  const [errors, setErrors] = useState<Record<string, string[]>>({});
  const [formError, setFormError] = useState<unknown>(null);
  const report = (err: unknown) => {
    if (err instanceof ApiError && err.details.length > 0) {
      const byField: Record<string, string[]> = {};
      for (const d of err.details) byField[d.field] = [...(byField[d.field] ?? []), d.message];
      setErrors(byField);
      setFormError(null);
    } else {
      setErrors({});
      setFormError(err);
    }
  };
  const clear = () => {
    setErrors({});
    setFormError(null);
  };
  return { errors, formError, report, clear };
}

export function LoginPage() {
  usePageTitle('Log in');
  const { setUser, notice } = useAuth();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const { errors, formError, report, clear } = useFieldErrors();
  const providers = useAuthProviders();
  const ssoError = ssoErrorMessage(params.get('ssoError'));
  const localLogin = providers?.localLogin !== false;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    clear();
    try {
      const user = await unwrap(api.POST('/api/v1/auth/login', { body: { email, password } }));
      setUser(user);
      navigate(safeNext(params.get('next')), { replace: true });
    } catch (err) {
      report(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="auth card">
      <h1>Log in to Berth</h1>
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      {ssoError && (
        <div className="notice error" role="alert">
          <p>{ssoError}</p>
        </div>
      )}
      {providers?.oidc && <SingleSignOn provider={providers.oidc} next={safeNext(params.get('next'))} />}
      {localLogin && (
        <form onSubmit={(e) => void submit(e)} noValidate>
          <Field id="login-email" label="Email" errors={errors.email}>
            <input id="login-email" type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} aria-describedby={describedBy('login-email', false, errors.email)} />
          </Field>
          <Field id="login-password" label="Password" errors={errors.password}>
            <input id="login-password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} aria-describedby={describedBy('login-password', false, errors.password)} />
          </Field>
          <ErrorNotice error={formError} />
          <button type="submit" disabled={busy}>
            {busy ? 'Logging in…' : 'Log in'}
          </button>
        </form>
      )}
      {localLogin && (
        <p>
          New here? <Link to="/register">Create an account</Link> · <Link to="/forgot-password">Forgot your password?</Link>
        </p>
      )}
    </section>
  );
}

export function RegisterPage() {
  usePageTitle('Create an account');
  const { setUser } = useAuth();
  const navigate = useNavigate();
  const [email, setEmail] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const { errors, formError, report, clear } = useFieldErrors();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    clear();
    try {
      const body = displayName.trim() ? { email, password, displayName: displayName.trim() } : { email, password };
      const user = await unwrap(api.POST('/api/v1/auth/register', { body }));
      setUser(user);
      navigate('/', { replace: true });
    } catch (err) {
      report(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="auth card">
      <h1>Create your Berth account</h1>
      <form onSubmit={(e) => void submit(e)} noValidate>
        <Field id="register-email" label="Email" errors={errors.email}>
          <input id="register-email" type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} aria-invalid={errors.email ? true : undefined} aria-describedby={describedBy('register-email', false, errors.email)} />
        </Field>
        <Field id="register-name" label="Display name (optional)" errors={errors.displayName}>
          <input id="register-name" autoComplete="name" value={displayName} onChange={(e) => setDisplayName(e.target.value)} aria-invalid={errors.displayName ? true : undefined} aria-describedby={describedBy('register-name', false, errors.displayName)} />
        </Field>
        <Field id="register-password" label="Password" hint="At least 10 characters. A few words you will remember work well." errors={errors.password}>
          <input id="register-password" type="password" autoComplete="new-password" required value={password} onChange={(e) => setPassword(e.target.value)} aria-invalid={errors.password ? true : undefined} aria-describedby={describedBy('register-password', true, errors.password)} />
        </Field>
        <ErrorNotice error={formError} />
        <button type="submit" disabled={busy}>
          {busy ? 'Creating…' : 'Create account'}
        </button>
      </form>
      <p>
        Already have an account? <Link to="/login">Log in</Link>
      </p>
    </section>
  );
}
