import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { api, unwrap } from './api/client';
import type { User } from './api/environments';
import { ApiError } from './api/errors';
import { announceLogout, onSessionEnded } from './lib/session';

/** What the login page says to someone whose session ended while a page was open. */
export const SESSION_ENDED = 'Your session ended; log in again.';

interface Auth {
  /** undefined while the first /me is in flight, null when logged out. */
  user: User | null | undefined;
  /** Set when Berth could not say who is logged in (not a plain 401). */
  error: unknown;
  retry: () => void;
  setUser: (user: User | null) => void;
  logout: () => Promise<void>;
  /** Why the person is on the login page, when Berth sent them there. */
  notice: string | null;
}

const AuthContext = createContext<Auth | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [attempt, setAttempt] = useState(0);
  const [notice, setNotice] = useState<string | null>(null);

  // Only a signed-in page is sent to login: a 401 while logged out ends nothing.
  useEffect(
    () =>
      onSessionEnded(() =>
        setUser((current) => {
          if (current) setNotice(SESSION_ENDED);
          return current === undefined ? current : null;
        }),
      ),
    [],
  );

  const signIn = useCallback((next: User | null) => {
    if (next) setNotice(null);
    setUser(next);
  }, []);

  useEffect(() => {
    unwrap(api.GET('/api/v1/me'))
      .then((me) => {
        setUser(me);
        setError(null);
      })
      .catch((err: unknown) => {
        // Only "not logged in" means logged out; anything else would bounce a
        // logged-in person to the login page on a transient failure.
        if (err instanceof ApiError && err.status === 401) setUser(null);
        else setError(err);
      });
  }, [attempt]);

  const retry = useCallback(() => {
    setError(null);
    setAttempt((a) => a + 1);
  }, []);

  const logout = useCallback(async () => {
    try {
      await unwrap(api.POST('/api/v1/auth/logout'));
    } finally {
      announceLogout();
      setUser(null);
    }
  }, []);

  const value = useMemo(
    () => ({ user, error, retry, setUser: signIn, logout, notice }),
    [user, error, retry, signIn, logout, notice],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): Auth {
  const auth = useContext(AuthContext);
  if (!auth) throw new Error('useAuth outside AuthProvider');
  return auth;
}
