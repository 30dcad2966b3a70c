import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../api/client';
import { ApiError } from '../api/errors';
import type { components } from '../api/schema';
import { describedBy, Empty, ErrorNotice, Field, Loading } from '../components/ui';
import { formatDate } from '../lib/time';
import { usePageTitle, useResource } from '../lib/useResource';
import { ChangePasswordForm } from './Identity';

type CreatedToken = components['schemas']['CreatedToken'];

export function TokensPage() {
  usePageTitle('Tokens');
  const tokens = useResource(() => unwrap(api.GET('/api/v1/tokens')).then((r) => r.items), 'tokens');
  const [name, setName] = useState('');
  const [days, setDays] = useState('90');
  const [created, setCreated] = useState<CreatedToken | null>(null);
  const [errors, setErrors] = useState<Record<string, string[]>>({});
  const [actionError, setActionError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [copied, setCopied] = useState(false);

  const create = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    setActionError(null);
    setCopied(false);
    try {
      const expiresInDays = days ? Number(days) : undefined;
      const token = await unwrap(api.POST('/api/v1/tokens', { body: { name: name.trim(), expiresInDays } }));
      setCreated(token);
      setName('');
      tokens.reload();
    } catch (err) {
      if (err instanceof ApiError && err.details.length > 0) {
        const byField: Record<string, string[]> = {};
        for (const d of err.details) byField[d.field] = [...(byField[d.field] ?? []), d.message];
        setErrors(byField);
      } else setActionError(err);
    } finally {
      setBusy(false);
    }
  };

  const revoke = async (id: string, tokenName: string) => {
    if (!window.confirm(`Revoke "${tokenName}"? Anything using it stops working at once.`)) return;
    setActionError(null);
    try {
      await unwrap(api.DELETE('/api/v1/tokens/{id}', { params: { path: { id } } }));
      if (created?.id === id) setCreated(null);
      tokens.reload();
    } catch (err) {
      setActionError(err);
    }
  };

  return (
    <section>
      <h1>Personal access tokens</h1>
      <p className="lead">Tokens let scripts and the CLI call Berth as you: send one as <code>Authorization: Bearer …</code>.</p>

      <form className="card inline-form" onSubmit={(e) => void create(e)} noValidate>
        <h2>New token</h2>
        <Field id="token-name" label="Name" hint="Say where it will be used, such as “laptop” or “CI”." errors={errors.name}>
          <input id="token-name" value={name} required onChange={(e) => setName(e.target.value)} aria-describedby={describedBy('token-name', true, errors.name)} />
        </Field>
        <Field id="token-days" label="Expires after" errors={errors.expiresInDays}>
          <select id="token-days" value={days} onChange={(e) => setDays(e.target.value)}>
            <option value="7">7 days</option>
            <option value="30">30 days</option>
            <option value="90">90 days</option>
            <option value="365">1 year</option>
          </select>
        </Field>
        <button type="submit" disabled={busy}>
          {busy ? 'Creating…' : 'Create token'}
        </button>
      </form>

      {created && (
        <div className="notice success secret" role="status" data-testid="token-secret-box">
          <p>
            <strong>Copy your new token “{created.name}” now.</strong> Berth stores only its hash, so it will not be shown again.
          </p>
          <div className="secret-row">
            <code data-testid="token-secret">{created.token}</code>
            <button
              type="button"
              className="secondary"
              onClick={() => {
                void navigator.clipboard?.writeText(created.token).then(() => setCopied(true));
              }}
            >
              {copied ? 'Copied' : 'Copy'}
            </button>
            <button type="button" className="secondary" onClick={() => setCreated(null)}>
              Done
            </button>
          </div>
        </div>
      )}

      <ErrorNotice error={actionError} />

      <h2>Your tokens</h2>
      {tokens.loading && !tokens.data ? (
        <Loading what="tokens" />
      ) : tokens.error && !tokens.data ? (
        <ErrorNotice error={tokens.error} retry={tokens.reload} />
      ) : tokens.data && tokens.data.length === 0 ? (
        <Empty title="No tokens yet">
          <p>Create one above when a script or the CLI needs to call Berth.</p>
        </Empty>
      ) : (
        <table className="stack">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Created</th>
              <th scope="col">Expires</th>
              <th scope="col">Last used</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {tokens.data?.map((t) => (
              <tr key={t.id}>
                <td data-label="Name">{t.name}</td>
                <td data-label="Created">{formatDate(t.createdAt)}</td>
                <td data-label="Expires">{t.expiresAt ? formatDate(t.expiresAt) : 'never'}</td>
                <td data-label="Last used">{t.lastUsedAt ? formatDate(t.lastUsedAt) : 'never'}</td>
                <td data-label="Actions">
                  <button type="button" className="danger small" onClick={() => void revoke(t.id, t.name)} aria-label={`Revoke ${t.name}`}>
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <ChangePasswordForm />
    </section>
  );
}
