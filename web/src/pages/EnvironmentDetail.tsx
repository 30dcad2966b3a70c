import { useEffect, useRef, useState, type FormEvent } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { environments, type Environment, type MemberRole, type Workloads as WorkloadList } from '../api/environments';
import { ApiError } from '../api/errors';
import { useAuth } from '../auth';
import { LogViewer } from '../components/LogViewer';
import { Connect } from '../components/Connect';
import { EditEnvironment } from '../components/EditEnvironment';
import { Countdown, Empty, ErrorNotice, Loading, PhaseBadge, UsageBar } from '../components/ui';
import { MetricsPanel, QuotaBanner } from '../components/MetricsPanel';
import { formatDate, TTL_CHOICES } from '../lib/time';
import { usagePercent } from '../lib/quantity';
import { usePageTitle, useResource, type Resource } from '../lib/useResource';
import { useLive } from '../lib/useLive';
import { conditionClass } from '../lib/conditions';

const POLL_MS = 3000;

export function EnvironmentDetailPage() {
  const { name = '' } = useParams();
  const navigate = useNavigate();
  usePageTitle(name);
  // The first answer comes from GET; the live view keeps it current from then on.
  const env = useResource((signal) => environments.get(name, signal), `env-${name}`);
  const live = useLive(environments.watchUrl(name), env.reload);
  const { snapshot } = live;
  useEffect(() => {
    if (env.data) snapshot([env.data]);
    // `snapshot` only dispatches; the merge must run once per answer.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [env.data]);
  const [lastSeen, setLastSeen] = useState<Environment | undefined>();
  const shown = live.state.items.get(name) ?? (live.state.gone.has(name) ? undefined : env.data);
  if (shown && shown !== lastSeen) setLastSeen(shown);
  const notFound = env.error instanceof ApiError && env.error.status === 404;
  // Out of sight while shown (the live view's `deleted`, or a 404 after it was seen).
  const outOfSight = live.state.gone.has(name) || (notFound && env.data !== undefined);
  // Deleted: back to the list, saying so, rather than staying on stale data.
  const deleted = outOfSight && lastSeen?.status?.phase === 'Deleting';
  useEffect(() => {
    if (deleted) navigate('/', { state: { flash: `“${name}” was deleted.` } });
  }, [deleted, name, navigate]);
  // No longer a member (it was not being deleted): the page stays, marked as
  // no longer current, so that panels can say what became of their streams.
  const current = shown ?? (outOfSight && !deleted ? lastSeen : undefined);

  if (env.loading && !env.data) return <Loading what={name} />;
  if (notFound && !current) {
    return <Empty title={`No environment “${name}”`} action={{ to: '/', label: 'Back to your environments' }}><p>It may have been deleted, or you are not one of its members.</p></Empty>;
  }
  if (!current) return <ErrorNotice error={env.error} retry={env.reload} />;
  // The same element whether or not it is still in sight, so that its panels keep their state.
  return (
    <Detail
      env={current}
      error={notFound ? null : env.error}
      reload={env.reload}
      reconnecting={live.reconnecting && !outOfSight}
      outOfSight={outOfSight}
    />
  );
}

function Detail({
  env,
  error,
  reload,
  reconnecting,
  outOfSight,
}: {
  env: Environment;
  error: unknown;
  reload: () => void;
  reconnecting: boolean;
  /** The caller may no longer see it (removed from its members): shown as it last was, marked so. */
  outOfSight: boolean;
}) {
  const { user } = useAuth();
  const status = env.status;
  const isOwner = env.role === 'owner';
  const canDelete = isOwner || user?.role === 'admin';
  const deleting = status.phase === 'Deleting';
  const canEdit = env.role !== 'viewer' && !deleting && !outOfSight;
  const [editing, setEditing] = useState(false);
  const [saved, setSaved] = useState('');
  const savedRef = useRef<HTMLParagraphElement>(null);
  const editButton = useRef<HTMLButtonElement>(null);
  const workloads = useResource((signal) => environments.workloads(env.name, signal), `wl-${env.name}`, POLL_MS * 2);
  const finishEdit = (message: string) => {
    setEditing(false);
    setSaved(message);
    // After a save, focus goes to what it said; after a cancel, back to the button that opened the form.
    requestAnimationFrame(() => (message ? savedRef.current : editButton.current)?.focus());
    if (message) reload();
  };
  return (
    <section className="detail">
      {outOfSight && (
        <div className="notice error" role="alert">
          <p>
            You no longer have access to “{env.name}” (you were removed from its members, or it was deleted): what is shown below is
            no longer updated.
          </p>
          <p>
            <Link to="/">Back to your environments</Link>
          </p>
        </div>
      )}
      <div className="page-head">
        <div>
          <h1>
            {env.name} <PhaseBadge phase={status.phase} />
          </h1>
          {env.description && <p className="lead">{env.description}</p>}
          <p className="muted">
            Namespace <code>{env.namespace}</code> · owner {env.owner} · you are {env.role} · created {formatDate(env.createdAt)} · <Countdown expiresAt={status.expiresAt} />
          </p>
        </div>
        <div className="actions">
          {canEdit && !editing && (
            <button type="button" className="secondary" ref={editButton} onClick={() => setEditing(true)}>
              Change apps, members or settings
            </button>
          )}
          <a className="button" href={environments.kubeconfigUrl(env.name)} download={`${env.name}-kubeconfig.yaml`}>
            Download kubeconfig
          </a>
        </div>
      </div>
      {saved && (
        <p className="notice success" role="status" tabIndex={-1} ref={savedRef}>
          {saved}
        </p>
      )}
      {editing && canEdit && (
        <section className="card">
          <EditEnvironment env={env} onDone={finishEdit} />
        </section>
      )}
      <ErrorNotice error={error} />
      {reconnecting && (
        <p className="muted small" role="status">
          Live updates interrupted; reconnecting…
        </p>
      )}
      <QuotaBanner hard={status.quota?.hard} used={status.quota?.used} />

      <div className="columns">
        <section className="card">
          <h2>Conditions</h2>
          {deleting && status.conditions.length > 0 && (
            <p className="muted small">As last reported before deletion started; the namespace is being removed.</p>
          )}
          {status.conditions.length === 0 ? (
            <p className="muted">
              {deleting
                ? 'No conditions: the environment is being deleted.'
                : 'No conditions reported yet: the controller reports them as it works on this environment.'}
            </p>
          ) : (
            <table className={deleting ? 'stack stale' : 'stack'}>
              <thead>
                <tr>
                  <th scope="col">Type</th>
                  <th scope="col">Status</th>
                  <th scope="col">Reason</th>
                  <th scope="col">Since</th>
                </tr>
              </thead>
              <tbody>
                {status.conditions.map((c) => (
                  <tr key={c.type}>
                    <td data-label="Type">{c.type}</td>
                    <td data-label="Status" className={conditionClass(c.type, c.status)}>
                      {c.status}
                    </td>
                    <td data-label="Reason">
                      {c.reason}
                      {c.message && <div className="muted small">{c.message}</div>}
                    </td>
                    <td data-label="Since">{formatDate(c.lastTransitionTime)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
        <section className="card">
          <h2>Quota</h2>
          <QuotaBars hard={status.quota?.hard} used={status.quota?.used} />
        </section>
      </div>

      <Connect env={env} workloads={workloads.data} />
      <MetricsPanel name={env.name} createdAt={env.createdAt ?? undefined} hard={status.quota?.hard} />
      <Workloads workloads={workloads} canEdit={canEdit} onAddApp={() => setEditing(true)} />
      <LogViewer environment={env.name} />
      <Events name={env.name} />
      <Members env={env} canEdit={isOwner} onChange={reload} />
      {canDelete && <Lifecycle env={env} onChange={reload} />}
    </section>
  );
}

function QuotaBars({ hard, used }: { hard: Record<string, string | number> | undefined; used: Record<string, string | number> | undefined }) {
  const keys = Object.keys(hard ?? {}).filter((k) => !k.startsWith('services.'));
  if (!hard || keys.length === 0) return <p className="muted">Quota usage appears once the namespace exists.</p>;
  return (
    <div className="usages">
      {keys.map((key) => {
        const h = hard[key] ?? 0;
        const u = used?.[key] ?? 0;
        return <UsageBar key={key} label={key} used={String(u)} hard={String(h)} percent={usagePercent(u, h)} />;
      })}
    </div>
  );
}

function Workloads({ workloads: w, canEdit, onAddApp }: { workloads: Resource<WorkloadList>; canEdit: boolean; onAddApp: () => void }) {
  const data = w.data;
  const empty = data && !data.deployments?.length && !data.pods?.length && !data.services?.length && !data.ingresses?.length;
  return (
    <section className="card">
      <h2>Workloads</h2>
      {w.loading && !data ? (
        <Loading what="workloads" />
      ) : w.error && !data ? (
        <ErrorNotice error={w.error} retry={w.reload} />
      ) : empty ? (
        <div className="empty small">
          <p>Nothing runs here yet. Deploy with kubectl (see Connect above), or add an app for Berth to run.</p>
          {canEdit && (
            <button type="button" className="secondary" onClick={onAddApp}>
              Add an app
            </button>
          )}
        </div>
      ) : (
        <div className="columns">
          {data?.deployments?.length ? (
            <div>
              <h3>Deployments</h3>
              <ul className="plain">
                {data.deployments.map((d) => (
                  <li key={d.name}>
                    {d.name} <span className="muted">{d.readyReplicas ?? 0}/{d.replicas ?? 0} ready</span>
                  </li>
                ))}
              </ul>
            </div>
          ) : null}
          {data?.pods?.length ? (
            <div>
              <h3>Pods</h3>
              <ul className="plain">
                {data.pods.map((p) => (
                  <li key={p.name}>
                    {p.name} <span className="muted">{p.phase} · {p.restarts ?? 0} restarts</span>
                  </li>
                ))}
              </ul>
            </div>
          ) : null}
          {data?.services?.length ? (
            <div>
              <h3>Services</h3>
              <ul className="plain">
                {data.services.map((s) => (
                  <li key={s.name}>
                    {s.name} <span className="muted">{s.type}</span>
                  </li>
                ))}
              </ul>
            </div>
          ) : null}
          {data?.ingresses?.length ? (
            <div>
              <h3>Ingresses</h3>
              <ul className="plain">
                {data.ingresses.map((i) => (
                  <li key={i.name}>
                    {i.name} <span className="muted">{i.hosts.join(', ')}</span>
                  </li>
                ))}
              </ul>
            </div>
          ) : null}
        </div>
      )}
    </section>
  );
}

function Events({ name }: { name: string }) {
  const ev = useResource((signal) => environments.events(name, signal), `ev-${name}`, POLL_MS * 2);
  return (
    <section className="card">
      <h2>Events</h2>
      {ev.loading && !ev.data ? (
        <Loading what="events" />
      ) : ev.error && !ev.data ? (
        <ErrorNotice error={ev.error} retry={ev.reload} />
      ) : !ev.data?.length ? (
        <p className="muted">No events in the last hour. Events appear here as Kubernetes schedules, pulls and starts your pods.</p>
      ) : (
        <table className="stack">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Type</th>
              <th scope="col">Object</th>
              <th scope="col">Message</th>
            </tr>
          </thead>
          <tbody>
            {ev.data.slice(0, 50).map((e, i) => (
              <tr key={`${e.lastSeen ?? ''}-${i}`}>
                <td data-label="When">{formatDate(e.lastSeen)}</td>
                <td data-label="Type" className={e.type === 'Warning' ? 'bad' : undefined}>
                  {e.type}
                </td>
                <td data-label="Object">{e.object}</td>
                <td data-label="Message">
                  <strong>{e.reason}</strong> {e.message}
                  {e.count > 1 ? <span className="muted"> ×{e.count}</span> : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Members({ env, canEdit, onChange }: { env: Environment; canEdit: boolean; onChange: () => void }) {
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<MemberRole>('editor');
  const [error, setError] = useState<unknown>(null);
  const members = env.spec.members ?? [];
  // The last owner cannot be removed (409): no link offers it.
  const owners = members.filter((m) => m.role === 'owner').length;

  const act = async (action: () => Promise<unknown>) => {
    setError(null);
    try {
      await action();
      onChange();
    } catch (err) {
      setError(err);
    }
  };
  const add = (e: FormEvent) => {
    e.preventDefault();
    void act(() => environments.setMember(env.name, email.trim(), role)).then(() => setEmail(''));
  };

  return (
    <section className="card">
      <h2>Members</h2>
      <ul className="plain">
        {members.map((m) => (
          <li key={m.email}>
            {m.email} <span className="muted">{m.email === env.owner ? `${m.role} (creator)` : m.role}</span>
            {canEdit && !(m.role === 'owner' && owners <= 1) && (
              <button type="button" className="link" onClick={() => void act(() => environments.removeMember(env.name, m.email))} aria-label={`Remove ${m.email}`}>
                Remove
              </button>
            )}
          </li>
        ))}
      </ul>
      <ErrorNotice error={error} />
      {canEdit && (
        <form className="inline-form" onSubmit={add}>
          <label htmlFor="member-email">Email</label>
          <input id="member-email" type="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
          <label htmlFor="member-role">Role</label>
          <select id="member-role" value={role} onChange={(e) => setRole(e.target.value as MemberRole)}>
            <option value="viewer">viewer</option>
            <option value="editor">editor</option>
            <option value="owner">owner</option>
          </select>
          <button type="submit" className="secondary">
            Add or change member
          </button>
        </form>
      )}
    </section>
  );
}

function Lifecycle({ env, onChange }: { env: Environment; onChange: () => void }) {
  const [ttl, setTtl] = useState('72h');
  const [confirming, setConfirming] = useState(false);
  const [typed, setTyped] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState('');
  const deleting = env.status.phase === 'Deleting';

  const renew = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      await environments.renew(env.name, ttl);
      setNotice(`Renewed: it now expires in ${TTL_CHOICES.find((c) => c.value === ttl)?.label ?? ttl}.`);
      onChange();
    } catch (err) {
      setError(err);
    }
  };
  const remove = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      await environments.remove(env.name);
      setConfirming(false);
      setNotice('Deleting: the namespace and everything in it are being removed.');
      onChange();
    } catch (err) {
      setError(err);
    }
  };

  return (
    <section className="card">
      <h2>Lifetime</h2>
      {notice && (
        <p className="notice success" role="status">
          {notice}
        </p>
      )}
      <ErrorNotice error={error} />
      <form className="inline-form" onSubmit={(e) => void renew(e)}>
        <label htmlFor="renew-ttl">Keep for another</label>
        <select id="renew-ttl" value={ttl} onChange={(e) => setTtl(e.target.value)}>
          {TTL_CHOICES.map((c) => (
            <option key={c.value} value={c.value}>
              {c.label}
            </option>
          ))}
        </select>
        <button type="submit" className="secondary" disabled={deleting}>
          Renew
        </button>
      </form>
      {!confirming ? (
        <button type="button" className="danger" disabled={deleting} onClick={() => setConfirming(true)}>
          {deleting ? 'Deleting…' : 'Delete environment'}
        </button>
      ) : (
        <form className="confirm" onSubmit={(e) => void remove(e)}>
          <p>
            This deletes the namespace <code>{env.namespace}</code> and everything in it. It cannot be undone.
          </p>
          <label htmlFor="confirm-name">Type {env.name} to confirm</label>
          <input id="confirm-name" autoComplete="off" value={typed} onChange={(e) => setTyped(e.target.value)} autoFocus />
          <button type="submit" className="danger" disabled={typed !== env.name}>
            Delete {env.name}
          </button>
          <button type="button" className="secondary" onClick={() => setConfirming(false)}>
            Keep it
          </button>
        </form>
      )}
      <p className="muted small">
        <Link to="/">All environments</Link>
      </p>
    </section>
  );
}
