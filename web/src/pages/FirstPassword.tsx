import { useState } from 'react';
import { api, unwrap } from '../api/client';
import { useAuth } from '../auth';
import { ErrorNotice } from '../components/ui';
import { usePageTitle } from '../lib/useResource';
import { ChangePasswordForm } from './Identity';

/**
 * Shown instead of any signed-in page while the account's password must be
 * changed (the first admin's generated one): Berth refuses every other call
 * until then. It stays at the address the person asked for, so once the
 * password is changed that page opens.
 */
export function FirstPasswordPage() {
  usePageTitle('Change your password');
  const { setUser } = useAuth();
  const [error, setError] = useState<unknown>(null);

  // Asks Berth again rather than assuming: the page opens once it says so.
  const changed = () => {
    setError(null);
    unwrap(api.GET('/api/v1/me')).then(setUser, setError);
  };

  return (
    <section>
      <h1>Change your password</h1>
      <p role="status" className="notice" data-testid="must-change-password">
        Your password was generated when Berth was set up and must be changed before you go on. Enter it as the current password and choose a new one.
      </p>
      <ErrorNotice error={error} />
      <ChangePasswordForm onChanged={changed} />
    </section>
  );
}
