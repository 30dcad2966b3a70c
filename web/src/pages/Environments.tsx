import { useEffect, useState } from 'react';
import { Link, useLocation } from 'react-router';
import { environments } from '../api/environments';
import { ApiError } from '../api/errors';
import { useAuth } from '../auth';
import { Countdown, Empty, ErrorNotice, Loading, PhaseBadge } from '../components/ui';
import { formatDate } from '../lib/time';
import { usePageTitle, useResource } from '../lib/useResource';
import { useLive } from '../lib/useLive';

export function EnvironmentsPage() {
  const { user } = useAuth();
  const location = useLocation();
  const [all, setAll] = useState(false);
  usePageTitle('Environments');
  // The first answer comes from GET; the live view keeps it current from then on.
  const list = useResource((signal) => environments.list(all, signal), `envs-${all}`);
  const live = useLive(environments.watchUrl(undefined, all), list.reload);
  const { snapshot } = live;
  useEffect(() => {
    if (list.data) snapshot(list.data);
    // `snapshot` only dispatches; the merge must run once per answer.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [list.data]);
  const items = list.data ? [...live.state.items.values()] : undefined;
  const flash = (location.state as { flash?: string } | null)?.flash;
  // Until the environment endpoints land, the server answers 404: say so plainly.
  const notAvailable = list.error instanceof ApiError && list.error.status === 404;

  return (
    <section>
      <div className="page-head">
        <h1>Your environments</h1>
        <Link className="button" to="/environments/new">
          New environment
        </Link>
      </div>
      {flash && (
        <p className="notice success" role="status">
          {flash}
        </p>
      )}
      {user?.role === 'admin' && (
        <label className="check">
          <input type="checkbox" checked={all} onChange={(e) => setAll(e.target.checked)} /> Show everyone’s environments
        </label>
      )}
      {list.loading && !list.data ? (
        <Loading what="environments" />
      ) : notAvailable ? (
        <Empty title="Environments are not available on this server yet">
          <p>This Berth does not serve environments. Ask your platform team to upgrade it.</p>
        </Empty>
      ) : list.error && !list.data ? (
        <ErrorNotice error={list.error} retry={list.reload} />
      ) : items && items.length === 0 ? (
        <Empty title="No environments yet" action={{ to: '/environments/new', label: 'Create your first environment' }}>
          <p>An environment is your own namespace with its quota, ready in about a minute.</p>
        </Empty>
      ) : (
        <>
          {list.error ? <ErrorNotice error={list.error} /> : null}
          {live.reconnecting && (
            <p className="muted small" role="status">
              Live updates interrupted; reconnecting…
            </p>
          )}
          <table className="stack environments">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Phase</th>
                <th scope="col">Expires</th>
                <th scope="col">Your role</th>
                {all && <th scope="col">Owner</th>}
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody aria-live="polite">
              {items?.map((env) => (
                <tr key={env.name} data-environment={env.name}>
                  <td data-label="Name">
                    <Link to={`/environments/${encodeURIComponent(env.name)}`}>{env.name}</Link>
                    {env.description && <div className="muted small">{env.description}</div>}
                  </td>
                  <td data-label="Phase">
                    <PhaseBadge phase={env.status?.phase} />
                  </td>
                  <td data-label="Expires">
                    <Countdown expiresAt={env.status?.expiresAt} />
                  </td>
                  <td data-label="Your role">{env.role}</td>
                  {all && <td data-label="Owner">{env.owner}</td>}
                  <td data-label="Created">{formatDate(env.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
