import { useState, type FormEvent } from 'react';
import { NavLink, Navigate, Route, Routes, useLocation } from 'react-router';
import { api, unwrap } from '../../api/client';
import { admin, templates as templatesApi, type ApprovalRequest, type Policy, type RequestState, type Template } from '../../api/environments';
import { ApiError } from '../../api/errors';
import { useAuth } from '../../auth';
import { describedBy, Empty, ErrorNotice, Field, Loading } from '../../components/ui';
import { wholeNumber } from '../../lib/form';
import { formatDate } from '../../lib/time';
import { usePageTitle, useResource } from '../../lib/useResource';

/** A 404 from an endpoint that has not landed on this server yet, told apart from a real failure. */
function Unavailable({ error, retry, what }: { error: unknown; retry: () => void; what: string }) {
  if (error instanceof ApiError && error.status === 404) {
    return (
      <Empty title={`${what} are not available on this server yet`}>
        <p>This Berth does not serve them. They appear here once the server is upgraded.</p>
      </Empty>
    );
  }
  return <ErrorNotice error={error} retry={retry} />;
}

const ADMIN_TABS: Record<string, string> = { users: 'Users', requests: 'Requests', policy: 'Policy', templates: 'Templates', audit: 'Audit log' };

export default function AdminPage() {
  const tab = useLocation().pathname.split('/')[2] ?? '';
  usePageTitle(ADMIN_TABS[tab] ? `${ADMIN_TABS[tab]} · Administration` : 'Administration');
  return (
    <section>
      <h1>Administration</h1>
      <nav className="tabs" aria-label="Administration">
        <NavLink to="/admin/users">Users</NavLink>
        <NavLink to="/admin/requests">Requests</NavLink>
        <NavLink to="/admin/policy">Policy</NavLink>
        <NavLink to="/admin/templates">Templates</NavLink>
        <NavLink to="/admin/audit">Audit log</NavLink>
      </nav>
      <Routes>
        <Route index element={<Navigate to="users" replace />} />
        <Route path="users" element={<Users />} />
        <Route path="requests" element={<Requests />} />
        <Route path="policy" element={<PolicyPage />} />
        <Route path="templates" element={<Templates />} />
        <Route path="audit" element={<Audit />} />
      </Routes>
    </section>
  );
}

function Users() {
  const { user: me } = useAuth();
  const users = useResource(() => unwrap(api.GET('/api/v1/admin/users')), 'users');
  const [error, setError] = useState<unknown>(null);

  const update = async (id: string, body: { role?: 'admin' | 'member'; disabled?: boolean; emailVerified?: boolean }) => {
    setError(null);
    try {
      await unwrap(api.PATCH('/api/v1/admin/users/{id}', { params: { path: { id } }, body }));
      users.reload();
    } catch (err) {
      setError(err);
    }
  };

  if (users.loading && !users.data) return <Loading what="users" />;
  if (!users.data) return <ErrorNotice error={users.error} retry={users.reload} />;
  return (
    <>
      <h2>Users</h2>
      {!users.data.emailVerification && (
        <p className="notice" role="status">
          Email verification is off (no mail server is configured, <code>BERTH_SMTP_URL</code>): every account counts as verified.
        </p>
      )}
      <ErrorNotice error={error} />
      <table className="stack" data-testid="users-table">
        <thead>
          <tr>
            <th scope="col">Email</th>
            <th scope="col">Name</th>
            <th scope="col">Role</th>
            <th scope="col">Access</th>
            <th scope="col">Email verified</th>
            <th scope="col">Joined</th>
          </tr>
        </thead>
        <tbody>
          {users.data.items.map((u) => {
            const self = u.id === me?.id;
            return (
              <tr key={u.id} className={u.disabled ? 'disabled' : undefined}>
                <td data-label="Email">{u.email}</td>
                <td data-label="Name">{u.displayName}</td>
                <td data-label="Role">
                  <select aria-label={`Role of ${u.email}`} value={u.role} disabled={self} title={self ? 'You cannot change your own role' : undefined} onChange={(e) => void update(u.id, { role: e.target.value as 'admin' | 'member' })}>
                    <option value="member">member</option>
                    <option value="admin">admin</option>
                  </select>
                </td>
                <td data-label="Access">
                  <label className="check">
                    <input type="checkbox" checked={u.disabled} disabled={self} onChange={(e) => void update(u.id, { disabled: e.target.checked })} /> Disabled
                  </label>
                </td>
                <td data-label="Email verified">
                  {u.emailVerified ? (
                    'yes'
                  ) : (
                    <button type="button" onClick={() => void update(u.id, { emailVerified: true })}>
                      Mark {u.email} verified
                    </button>
                  )}
                </td>
                <td data-label="Joined">{formatDate(u.createdAt)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </>
  );
}

function Requests() {
  const [state, setState] = useState<RequestState>('pending');
  const list = useResource((signal) => admin.requests(state, signal), `requests-${state}`, 5000);
  const [error, setError] = useState<unknown>(null);
  const [rejecting, setRejecting] = useState<string | null>(null);
  const [reason, setReason] = useState('');

  const act = async (action: () => Promise<unknown>) => {
    setError(null);
    try {
      await action();
      setRejecting(null);
      setReason('');
      list.reload();
    } catch (err) {
      setError(err);
    }
  };

  return (
    <>
      <h2>Requests</h2>
      <label htmlFor="request-state">Show</label>{' '}
      <select id="request-state" value={state} onChange={(e) => setState(e.target.value as RequestState)}>
        <option value="pending">pending</option>
        <option value="approved">approved</option>
        <option value="rejected">rejected</option>
      </select>
      <ErrorNotice error={error} />
      {list.loading && !list.data ? (
        <Loading what="requests" />
      ) : !list.data ? (
        <Unavailable error={list.error} retry={list.reload} what="Requests" />
      ) : list.data.length === 0 ? (
        <Empty title={`No ${state} requests`}>
          <p>{state === 'pending' ? 'Requests over the policy land here for you to approve or reject.' : 'Nothing here yet.'}</p>
        </Empty>
      ) : (
        <ul className="cards">
          {list.data.map((r: ApprovalRequest) => (
            <li key={r.id} className="card" data-request={r.id}>
              <h3>{r.environment ?? r.spec?.name ?? r.id}</h3>
              <p className="muted">
                by {r.requester ?? 'unknown'} · {formatDate(r.createdAt)}
              </p>
              {r.reasons?.length ? (
                <ul>
                  {r.reasons.map((why) => (
                    <li key={why}>{why}</li>
                  ))}
                </ul>
              ) : null}
              {r.reason && <p>Reason: {r.reason}</p>}
              <details>
                <summary>Requested spec</summary>
                <pre className="yaml">{JSON.stringify(r.spec ?? {}, null, 2)}</pre>
              </details>
              {state === 'pending' &&
                (rejecting === r.id ? (
                  <form className="inline-form" onSubmit={(e) => { e.preventDefault(); void act(() => admin.reject(r.id, reason)); }}>
                    <label htmlFor={`reason-${r.id}`}>Reason (shown to the requester)</label>
                    <input id={`reason-${r.id}`} required value={reason} onChange={(e) => setReason(e.target.value)} autoFocus />
                    <button type="submit" className="danger">
                      Reject
                    </button>
                    <button type="button" className="secondary" onClick={() => setRejecting(null)}>
                      Cancel
                    </button>
                  </form>
                ) : (
                  <div className="actions">
                    <button type="button" onClick={() => void act(() => admin.approve(r.id))}>
                      Approve
                    </button>
                    <button type="button" className="secondary" onClick={() => setRejecting(r.id)}>
                      Reject…
                    </button>
                  </div>
                ))}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

function PolicyPage() {
  const policy = useResource((signal) => admin.policy(signal), 'policy');
  if (policy.loading && !policy.data) return <Loading what="policy" />;
  if (!policy.data) return <Unavailable error={policy.error} retry={policy.reload} what="Policy settings" />;
  return <PolicyForm initial={policy.data} onSaved={policy.reload} />;
}

function PolicyForm({ initial, onSaved }: { initial: Policy; onSaved: () => void }) {
  const [p, setP] = useState<Policy>(initial);
  const [errors, setErrors] = useState<Record<string, string[]>>({});
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  const set = <K extends keyof Policy>(k: K, v: Policy[K]) => {
    setSaved(false);
    setP({ ...p, [k]: v });
  };
  const setMax = (k: 'cpu' | 'memory' | 'storage', v: string) => set('maxQuota', { ...p.maxQuota, [k]: v });
  // Number inputs keep what was typed: an emptied field is an error to show,
  // never a 0 saved silently (0 environments per user would stop everyone).
  const [envsText, setEnvsText] = useState(String(initial.maxEnvironmentsPerUser));
  const [podsText, setPodsText] = useState(initial.maxQuota.pods === undefined ? '' : String(initial.maxQuota.pods));

  const save = async (e: FormEvent) => {
    e.preventDefault();
    setErrors({});
    setError(null);
    const envs = wholeNumber(envsText);
    const pods = wholeNumber(podsText);
    const local: Record<string, string[]> = {};
    if (typeof envs === 'string') local.maxEnvironmentsPerUser = [envs];
    if (typeof pods === 'string') local['maxQuota.pods'] = [pods];
    if (typeof envs === 'string' || typeof pods === 'string') {
      setErrors(local);
      return;
    }
    try {
      await admin.putPolicy({ ...p, maxEnvironmentsPerUser: envs, maxQuota: { ...p.maxQuota, pods } });
      setSaved(true);
      onSaved();
    } catch (err) {
      if (err instanceof ApiError && err.details.length > 0) {
        const by: Record<string, string[]> = {};
        for (const d of err.details) by[d.field] = [...(by[d.field] ?? []), d.message];
        setErrors(by);
      } else setError(err);
    }
  };

  return (
    <form className="card" onSubmit={(e) => void save(e)} noValidate>
      <h2>Policy</h2>
      <div className="grid">
        <Field id="policy-registration" label="Registration" errors={errors.registration}>
          <select id="policy-registration" value={p.registration} onChange={(e) => set('registration', e.target.value as Policy['registration'])}>
            <option value="open">Open: anyone may register</option>
            <option value="closed">Closed: admins add people</option>
          </select>
        </Field>
        <Field id="policy-approval" label="Approval" errors={errors.approval}>
          <select id="policy-approval" value={p.approval} onChange={(e) => set('approval', e.target.value as Policy['approval'])}>
            <option value="never">Never needed</option>
            <option value="overLimit">Only over the limits below</option>
            <option value="always">Always</option>
          </select>
        </Field>
        <Field id="policy-max-envs" label="Environments per user" errors={errors.maxEnvironmentsPerUser}>
          <input id="policy-max-envs" type="number" min={0} required value={envsText} aria-invalid={errors.maxEnvironmentsPerUser ? true : undefined} aria-describedby={describedBy('policy-max-envs', false, errors.maxEnvironmentsPerUser)} onChange={(e) => { setSaved(false); setEnvsText(e.target.value); }} />
        </Field>
        <Field id="policy-default-ttl" label="Default lifetime" hint="A duration such as 72h." errors={errors.defaultTtl}>
          <input id="policy-default-ttl" value={p.defaultTtl} onChange={(e) => set('defaultTtl', e.target.value)} />
        </Field>
        <Field id="policy-max-ttl" label="Longest lifetime" errors={errors.maxTtl}>
          <input id="policy-max-ttl" value={p.maxTtl} onChange={(e) => set('maxTtl', e.target.value)} />
        </Field>
        <Field id="policy-max-cpu" label="Most CPU per environment" hint="A quantity such as 4 or 500m." errors={errors['maxQuota.cpu']}>
          <input id="policy-max-cpu" value={p.maxQuota.cpu ?? ''} onChange={(e) => setMax('cpu', e.target.value)} />
        </Field>
        <Field id="policy-max-memory" label="Most memory" hint="Such as 8Gi." errors={errors['maxQuota.memory']}>
          <input id="policy-max-memory" value={p.maxQuota.memory ?? ''} onChange={(e) => setMax('memory', e.target.value)} />
        </Field>
        <Field id="policy-max-storage" label="Most storage" errors={errors['maxQuota.storage']}>
          <input id="policy-max-storage" value={p.maxQuota.storage ?? ''} onChange={(e) => setMax('storage', e.target.value)} />
        </Field>
        <Field id="policy-max-pods" label="Most pods" errors={errors['maxQuota.pods']}>
          <input id="policy-max-pods" type="number" min={1} required value={podsText} aria-invalid={errors['maxQuota.pods'] ? true : undefined} aria-describedby={describedBy('policy-max-pods', false, errors['maxQuota.pods'])} onChange={(e) => { setSaved(false); setPodsText(e.target.value); }} />
        </Field>
      </div>
      <ErrorNotice error={error} />
      {saved && (
        <p className="notice success" role="status">
          Saved. New requests follow this policy from now on.
        </p>
      )}
      <button type="submit">Save policy</button>
    </form>
  );
}

function Templates() {
  const list = useResource((signal) => templatesApi.list(signal), 'admin-templates');
  const [editing, setEditing] = useState<Template | null>(null);
  const [error, setError] = useState<unknown>(null);

  const remove = async (name: string) => {
    if (!window.confirm(`Delete template "${name}"? Existing environments keep their settings.`)) return;
    setError(null);
    try {
      await templatesApi.remove(name);
      list.reload();
    } catch (err) {
      setError(err);
    }
  };

  if (list.loading && !list.data) return <Loading what="templates" />;
  if (!list.data) return <Unavailable error={list.error} retry={list.reload} what="Templates" />;
  return (
    <>
      <h2>Templates</h2>
      <ErrorNotice error={error} />
      <ul className="cards">
        {list.data.map((t) => (
          <li key={t.name} className="card">
            <h3>{t.name}</h3>
            <p>{t.description}</p>
            <div className="actions">
              <button type="button" className="secondary" onClick={() => setEditing(t)}>
                Edit
              </button>
              <button type="button" className="danger" onClick={() => void remove(t.name)}>
                Delete
              </button>
            </div>
          </li>
        ))}
      </ul>
      <button type="button" onClick={() => setEditing({ name: '', description: '', spec: {} })}>
        New template
      </button>
      {editing && (
        <TemplateEditor
          key={editing.name || 'new'}
          initial={editing}
          onDone={() => {
            setEditing(null);
            list.reload();
          }}
        />
      )}
    </>
  );
}

function TemplateEditor({ initial, onDone }: { initial: Template; onDone: () => void }) {
  const [name, setName] = useState(initial.name);
  const [description, setDescription] = useState(initial.description);
  const [specText, setSpecText] = useState(JSON.stringify(initial.spec, null, 2));
  const [errors, setErrors] = useState<Record<string, string[]>>({});
  const [error, setError] = useState<unknown>(null);

  const save = async (e: FormEvent) => {
    e.preventDefault();
    setErrors({});
    setError(null);
    let spec: Template['spec'];
    try {
      spec = JSON.parse(specText) as Template['spec'];
    } catch {
      setErrors({ spec: ['This is not valid JSON: check the quotes and commas.'] });
      return;
    }
    try {
      await templatesApi.put(name.trim(), { description, spec });
      onDone();
    } catch (err) {
      if (err instanceof ApiError && err.details.length > 0) {
        const by: Record<string, string[]> = {};
        for (const d of err.details) {
          const key = d.field.startsWith('spec') ? 'spec' : d.field;
          by[key] = [...(by[key] ?? []), `${d.field}: ${d.message}`];
        }
        setErrors(by);
      } else setError(err);
    }
  };

  return (
    <form className="card" onSubmit={(e) => void save(e)} noValidate>
      <h3>{initial.name ? `Edit ${initial.name}` : 'New template'}</h3>
      <Field id="template-name" label="Name" errors={errors.name}>
        <input id="template-name" value={name} readOnly={Boolean(initial.name)} onChange={(e) => setName(e.target.value)} />
      </Field>
      <Field id="template-description" label="Description" errors={errors.description}>
        <input id="template-description" value={description} onChange={(e) => setDescription(e.target.value)} />
      </Field>
      <Field id="template-spec" label="Spec (JSON, fields of an EnvironmentSpec)" errors={errors.spec}>
        <textarea id="template-spec" rows={12} spellCheck={false} value={specText} onChange={(e) => setSpecText(e.target.value)} />
      </Field>
      <ErrorNotice error={error} />
      <div className="actions">
        <button type="submit">Save template</button>
        <button type="button" className="secondary" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function Audit() {
  const [draft, setDraft] = useState({ actor: '', environment: '', since: '' });
  const [filters, setFilters] = useState(draft);
  const entries = useResource((signal) => admin.audit(filters.since ? { ...filters, since: new Date(filters.since).toISOString() } : filters, signal), JSON.stringify(filters));

  return (
    <>
      <h2>Audit log</h2>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters(draft);
        }}
      >
        <label htmlFor="audit-actor">Actor</label>
        <input id="audit-actor" value={draft.actor} placeholder="email" onChange={(e) => setDraft({ ...draft, actor: e.target.value })} />
        <label htmlFor="audit-environment">Environment</label>
        <input id="audit-environment" value={draft.environment} onChange={(e) => setDraft({ ...draft, environment: e.target.value })} />
        <label htmlFor="audit-since">Since</label>
        <input id="audit-since" type="datetime-local" value={draft.since} onChange={(e) => setDraft({ ...draft, since: e.target.value })} />
        <button type="submit" className="secondary">
          Filter
        </button>
      </form>
      {entries.loading && !entries.data ? (
        <Loading what="audit entries" />
      ) : !entries.data ? (
        <Unavailable error={entries.error} retry={entries.reload} what="Audit entries" />
      ) : entries.data.length === 0 ? (
        <Empty title="No audit entries match">
          <p>Widen the filters, or clear them to see everything.</p>
        </Empty>
      ) : (
        <table className="stack">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Actor</th>
              <th scope="col">Action</th>
              <th scope="col">Target</th>
              <th scope="col">Outcome</th>
            </tr>
          </thead>
          <tbody>
            {entries.data.map((a, i) => (
              <tr key={`${a.at}-${i}`}>
                <td data-label="When">{formatDate(a.at)}</td>
                <td data-label="Actor">{a.actor}</td>
                <td data-label="Action">{a.action}</td>
                <td data-label="Target">{a.target}</td>
                <td data-label="Outcome" className={a.outcome === 'success' || a.outcome === 'ok' ? 'ok' : 'bad'}>{a.outcome}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
