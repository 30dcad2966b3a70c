import { useEffect, useState, type FormEvent } from 'react';
import { Link, useSearchParams } from 'react-router';
import { api, ApiError, unwrap } from '../api/client';
import { useAuth } from '../auth';
import { describedBy, ErrorNotice, Field } from '../components/ui';
import { usePageTitle } from '../lib/useResource';

/** Field errors of an ApiError by field; anything else as the form's error. */
function useErrors() {
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

/**
 * `/verify?token=`: opened from the mailed link; verifies at once, in the
 * session of the account the link is for (the route asks to log in first), so
 * that the owner of an address someone else registered never verifies the
 * other's account by opening the link.
 */
export function VerifyPage() {
  usePageTitle('Verify your email');
  const [params] = useSearchParams();
  const token = params.get('token') ?? '';
  const { user, setUser } = useAuth();
  const [state, setState] = useState<'working' | 'done' | unknown>('working');

  useEffect(() => {
    let live = true;
    unwrap(api.POST('/api/v1/auth/verify', { body: { token } }))
      .then(() => live && setState('done'))
      .catch((err: unknown) => live && setState(err));
    return () => {
      live = false;
    };
  }, [token]);

  // The signed-in account may be the one just verified: show it as such.
  useEffect(() => {
    if (state === 'done' && user && !user.emailVerified) setUser({ ...user, emailVerified: true });
  }, [state, user, setUser]);

  return (
    <section className="auth card">
      <h1>Verify your email</h1>
      {state === 'working' && <p role="status">Verifying…</p>}
      {state === 'done' && (
        <p role="status">
          Your email is verified: environments you were added to are yours now. <Link to="/">Go to your environments</Link>
        </p>
      )}
      {state !== 'working' && state !== 'done' && (
        <>
          <p role="alert">This link has expired, was used already, or is for another account than the one you are logged in with.</p>
          <p>
            Ask for a new link from the banner at the top of the page. If you did not create this account, someone else used
            your address: <Link to="/forgot-password">reset its password</Link> from a logged-out browser to take it over.
          </p>
        </>
      )}
    </section>
  );
}

/** Shown to a signed-in account whose email is not verified yet. */
export function VerifyBanner() {
  const { user } = useAuth();
  const [sent, setSent] = useState<'idle' | 'sending' | 'sent' | unknown>('idle');
  if (!user || user.emailVerified !== false) return null;
  const resend = async () => {
    setSent('sending');
    try {
      await unwrap(api.POST('/api/v1/auth/verify/resend'));
      setSent('sent');
    } catch (err) {
      setSent(err);
    }
  };
  return (
    <div className="notice verify-banner" role="status">
      <p>
        Verify your email address: open the link Berth mailed to <strong>{user.email}</strong>. Until then you are a member of no
        environment and cannot create one.
      </p>
      {sent === 'sent' ? (
        <p>A new link is on its way.</p>
      ) : (
        <button type="button" onClick={() => void resend()} disabled={sent === 'sending'}>
          {sent === 'sending' ? 'Sending…' : 'Send the link again'}
        </button>
      )}
      {sent !== 'idle' && sent !== 'sending' && sent !== 'sent' && <ErrorNotice error={sent} />}
    </div>
  );
}

/** `/forgot-password`: asks for a reset link; says the same whatever the address. */
export function ForgotPasswordPage() {
  usePageTitle('Forgot your password');
  const [email, setEmail] = useState('');
  const [busy, setBusy] = useState(false);
  const [sent, setSent] = useState(false);
  const { errors, formError, report, clear } = useErrors();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    clear();
    try {
      await unwrap(api.POST('/api/v1/auth/password-reset', { body: { email } }));
      setSent(true);
    } catch (err) {
      report(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="auth card">
      <h1>Reset your password</h1>
      {sent ? (
        <p role="status">If {email} has a Berth account, a link to choose a new password is on its way. It works once, for 30 minutes.</p>
      ) : (
        <form onSubmit={(e) => void submit(e)} noValidate>
          <Field id="forgot-email" label="Email" errors={errors.email}>
            <input id="forgot-email" type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} aria-invalid={errors.email ? true : undefined} aria-describedby={describedBy('forgot-email', false, errors.email)} />
          </Field>
          <ErrorNotice error={formError} />
          <button type="submit" disabled={busy}>
            {busy ? 'Sending…' : 'Mail me a link'}
          </button>
        </form>
      )}
      <p>
        <Link to="/login">Back to log in</Link>
      </p>
    </section>
  );
}

/** `/reset-password?token=`: opened from the mailed link; sets a new password. */
export function ResetPasswordPage() {
  usePageTitle('Choose a new password');
  const [params] = useSearchParams();
  const token = params.get('token') ?? '';
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);
  const { errors, formError, report, clear } = useErrors();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    clear();
    try {
      await unwrap(api.POST('/api/v1/auth/password-reset/confirm', { body: { token, newPassword: password } }));
      setDone(true);
    } catch (err) {
      report(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="auth card">
      <h1>Choose a new password</h1>
      {done ? (
        <p role="status">
          Your password is set, and every session, token and kubeconfig of your account has ended. <Link to="/login">Log in</Link>
        </p>
      ) : (
        <form onSubmit={(e) => void submit(e)} noValidate>
          {errors.token && (
            <p role="alert">
              This link has expired or was used already. <Link to="/forgot-password">Ask for a new one</Link>
            </p>
          )}
          <Field id="reset-password" label="New password" hint="At least 10 characters, and not a common password." errors={errors.newPassword}>
            <input id="reset-password" type="password" autoComplete="new-password" required value={password} onChange={(e) => setPassword(e.target.value)} aria-invalid={errors.newPassword ? true : undefined} aria-describedby={describedBy('reset-password', true, errors.newPassword)} />
          </Field>
          <ErrorNotice error={formError} />
          <button type="submit" disabled={busy}>
            {busy ? 'Saving…' : 'Set password'}
          </button>
        </form>
      )}
    </section>
  );
}

/** Changing one's password, on the account page. */
/** The change-password form; `onChanged` runs once the password is changed. */
export function ChangePasswordForm({ onChanged }: { onChanged?: () => void } = {}) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [revoke, setRevoke] = useState(true);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);
  const { errors, formError, report, clear } = useErrors();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setDone(false);
    clear();
    try {
      await unwrap(api.PUT('/api/v1/me/password', { body: { currentPassword: current, newPassword: next, revokeOtherSessions: revoke } }));
      setDone(true);
      setCurrent('');
      setNext('');
      onChanged?.();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        report(new ApiError(400, 'validation_failed', err.message, [{ field: 'currentPassword', message: 'is not your password' }]));
      } else {
        report(err);
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card">
      <h2>Change password</h2>
      <form onSubmit={(e) => void submit(e)} noValidate>
        <Field id="current-password" label="Current password" errors={errors.currentPassword}>
          <input id="current-password" type="password" autoComplete="current-password" required value={current} onChange={(e) => setCurrent(e.target.value)} aria-invalid={errors.currentPassword ? true : undefined} aria-describedby={describedBy('current-password', false, errors.currentPassword)} />
        </Field>
        <Field id="new-password" label="New password" hint="At least 10 characters, and not a common password." errors={errors.newPassword}>
          <input id="new-password" type="password" autoComplete="new-password" required value={next} onChange={(e) => setNext(e.target.value)} aria-invalid={errors.newPassword ? true : undefined} aria-describedby={describedBy('new-password', true, errors.newPassword)} />
        </Field>
        <label>
          <input type="checkbox" checked={revoke} onChange={(e) => setRevoke(e.target.checked)} /> Sign out everywhere else (other sessions, tokens and kubeconfigs end)
        </label>
        <ErrorNotice error={formError} />
        <button type="submit" disabled={busy}>
          {busy ? 'Saving…' : 'Change password'}
        </button>
        {done && <p role="status">Your password is changed.</p>}
      </form>
    </section>
  );
}
