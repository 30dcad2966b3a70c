import { useEffect, useState } from 'react';

/** How people can sign in here, as GET /api/v1/auth/providers says. */
export interface AuthProviders {
  localLogin: boolean;
  oidc: { name: string; loginUrl: string } | null;
}

/** The ways to sign in; null while they load (or when they could not be read: the password form stays). */
export function useAuthProviders(): AuthProviders | null {
  const [providers, setProviders] = useState<AuthProviders | null>(null);
  useEffect(() => {
    const abort = new AbortController();
    // Public and read-only: a plain fetch, no session or CSRF header involved.
    fetch('/api/v1/auth/providers', { headers: { Accept: 'application/json' }, signal: abort.signal })
      .then((response) => (response.ok ? (response.json() as Promise<AuthProviders>) : null))
      .then((providers) => {
        if (providers) setProviders(providers);
      })
      .catch(() => undefined);
    return () => abort.abort();
  }, []);
  return providers;
}

/** Why a single sign-on did not complete, by the code the callback sends (/login?ssoError=<code>). */
const SSO_ERRORS: Record<string, string> = {
  state: 'The sign-in expired or was started in another browser. Sign in again.',
  token: "The identity provider's answer could not be verified. Sign in again.",
  provider: 'The identity provider did not sign you in.',
  no_email: 'The identity provider did not share your email address with Berth.',
  unverified_email: 'The identity provider has not verified your email address, so Berth cannot match it to an account.',
  sign_up_closed: 'No Berth account matches your identity, and new accounts cannot be created by single sign-on.',
  disabled: 'Your Berth account is disabled. Ask an administrator.',
};

export function ssoErrorMessage(code: string | null): string | null {
  if (!code) return null;
  return SSO_ERRORS[code] ?? 'Single sign-on did not complete. Sign in again.';
}

/** "Sign in with <provider>": a plain link, as the sign-in leaves the portal for the provider. */
export function SingleSignOn({ provider, next }: { provider: { name: string; loginUrl: string }; next: string }) {
  const href = next === '/' ? provider.loginUrl : `${provider.loginUrl}?next=${encodeURIComponent(next)}`;
  return (
    <p>
      <a className="button" href={href}>
        Sign in with {provider.name}
      </a>
    </p>
  );
}
